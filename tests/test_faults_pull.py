"""A failed Pull removes what it wrote, and only that: other jobs' files in the same
directory stay. Against the real sshd; most failures are remote (a file the ssh user
cannot read), so no root is needed on the client side (the plain user is); a full
or read-only disk is a small tmpfs (root), a stuck server a dedicated daemon frozen."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from sshd import daemons_fixture, freeze_sftp, small_mount_fixture  # noqa: F401  (fixtures)
from test_ssh_core import Recorder, close_nodes, node  # noqa: F401  (closes what node() opened)

from apssh import CopyError, Pull, SshJob
from apssh._asyncssh import asyncssh
from apssh.partial import writing
from apssh.sftpfiles import _local_files, _sftp_channel
from asynciojobs import Scheduler

DROPPED = ("stderr", "a cancelled copy got no answer within 1.0s: SFTP session dropped\n")


@pytest.fixture
def remote(lab):
    """A tree the plain user can read, but for ``b/secret``: ``a/results/{1,2}.txt``,
    ``b/results/{3.txt,sub/4.txt}``, ``b/secret`` (mode 000)."""
    if lab.plain_user is None:
        pytest.skip("no plain user (not root)")
    top = Path(tempfile.mkdtemp(prefix="nepi-ng-pull-"))
    top.chmod(0o755)
    for path, text in [("a/results/1.txt", "one\n"), ("a/results/2.txt", "two\n"),
                       ("b/results/3.txt", "three\n"), ("b/results/sub/4.txt", "four\n"),
                       ("b/secret", "secret\n")]:
        (top / path).parent.mkdir(parents=True, exist_ok=True)
        (top / path).write_text(text)
    for directory in [top, *(p for p in top.rglob("*") if p.is_dir())]:
        directory.chmod(0o755)
    for file in (p for p in top.rglob("*") if p.is_file()):
        file.chmod(0o644)
    (top / "b" / "secret").chmod(0o000)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def failing_pull(remote: Path, into: Path, **kwds) -> Pull:
    """Copies ``b/results`` into ``into``, then fails on ``b/secret``."""
    return Pull([str(remote / "b" / "results"), str(remote / "b" / "secret")], str(into),
                recurse=True, **kwds)


def contents(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def test_a_failed_pull_keeps_what_others_wrote_meanwhile(lab, remote, tmp_path):
    """While the failing Pull runs (after its snapshot), another job writes into the
    same directory: its files, and its directory, stay."""
    into = tmp_path / "into"
    into.mkdir()

    def another_job_writes(src, dst, copied, total) -> None:
        other = into / "results" / "other"
        if not other.exists():
            other.mkdir(parents=True)
            (other / "x.txt").write_text("not mine\n")
            (into / "results" / "y.txt").write_text("not mine\n")

    job = SshJob(node(lab, username=lab.plain_user),
                 command=failing_pull(remote, into, progress_handler=another_job_writes),
                 critical=False)
    Scheduler(job, timeout=30).run()
    exc = job.raised_exception()
    assert isinstance(exc, CopyError), exc
    message = str(exc)
    assert f": {remote / 'b' / 'secret'}: Permission denied" in message, message
    for mine in ("results/3.txt", "results/sub/4.txt", "results/sub"):
        assert str(into / mine) in message  # named as removed
    assert contents(into) == ["results", "results/other", "results/other/x.txt",
                              "results/y.txt"]


def test_appull_like_two_hosts_one_failing(lab, remote, tmp_path):
    """``appull -t a,b @:results/ ./``: one host fails, the other's files stay."""
    into = tmp_path / "into"
    into.mkdir()
    good = SshJob(node(lab, "127.0.0.2", username=lab.plain_user),
                  command=Pull(str(remote / "a" / "results"), str(into), recurse=True))
    bad = SshJob(node(lab, "127.0.0.3", username=lab.plain_user),
                 command=failing_pull(remote, into), critical=False)
    Scheduler(good, bad, timeout=30).run()
    assert good.result() == 0
    assert isinstance(bad.raised_exception(), CopyError)
    # the failed copy's directory ``results/sub`` stays, emptied, if the other copy was
    # still writing around it when it failed (it might have been writing there)
    assert contents(into) in (["results", "results/1.txt", "results/2.txt"],
                              ["results", "results/1.txt", "results/2.txt", "results/sub"])


def test_a_failed_pull_keeps_a_directory_another_copy_writes_into(lab, remote, tmp_path):
    """The race behind ``appull -t a,b``: the failing Pull made ``into/results`` (it
    did not exist when the copy started), but another copy of this process writes
    into ``into`` meanwhile (it may have just made that directory its own, and not
    written its first file yet): the directory stays, only the failed copy's files go."""
    into = tmp_path / "into"
    into.mkdir()
    job = SshJob(node(lab, "127.0.0.3", username=lab.plain_user),
                 command=failing_pull(remote, into), critical=False)
    with writing(into):  # the other copy, still running
        Scheduler(job, timeout=30).run()
    assert isinstance(job.raised_exception(), CopyError)
    assert contents(into) == ["results", "results/sub"]  # emptied, kept
    job = SshJob(node(lab, "127.0.0.3", username=lab.plain_user),
                 command=failing_pull(remote, tmp_path / "alone"), critical=False)
    Scheduler(job, timeout=30).run()  # nobody else writes there: removed as before
    assert not (tmp_path / "alone").exists()


def test_a_failed_pull_into_a_new_directory_leaves_nothing(lab, remote, tmp_path):
    into = tmp_path / "new"
    job = SshJob(node(lab, username=lab.plain_user),
                 command=Pull(str(remote / "b"), str(into), recurse=True), critical=False)
    Scheduler(job, timeout=30).run()
    assert isinstance(job.raised_exception(), CopyError)
    assert not os.path.lexists(into)


# ----- 5. a failed Pull leaves nothing partial
@pytest.fixture
def big_remote_file(tmp_path) -> Path:
    """A 3 MB file on the node (the node is this machine)."""
    big = tmp_path / "remote" / "big.bin"
    big.parent.mkdir()
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    return big


@pytest.mark.parametrize("options, why", [("rw", "No space left on device"),
                                          ("ro", "Read-only file system")])
def test_a_failed_pull_names_the_file_and_leaves_nothing(lab, big_remote_file, small_mount,
                                                         options, why):
    into = small_mount(options)
    job = SshJob(node(lab), command=Pull(str(big_remote_file), str(into)), critical=False)
    Scheduler(job, timeout=30).run()
    exc = job.raised_exception()
    assert isinstance(exc, CopyError), exc
    message = str(exc)
    assert "\n" not in message
    assert message.startswith(f"root@127.0.0.1: Pull: {big_remote_file} into {into}: "
                              f"{into / 'big.bin'}: {why}"), message
    if options == "rw":
        assert message.endswith(f"(removed the partial {into / 'big.bin'})")
    assert list(into.iterdir()) == []


def test_a_failed_recursive_pull_removes_only_what_it_created(lab, big_remote_file, small_mount):
    tree = big_remote_file.parent
    (tree / "small.txt").write_text("small\n")
    into = small_mount("rw")
    (into / "remote").mkdir()
    (into / "remote" / "mine.txt").write_text("was here\n")
    job = SshJob(node(lab), command=Pull(str(tree), str(into), recurse=True), critical=False)
    Scheduler(job, timeout=30).run()
    assert isinstance(job.raised_exception(), CopyError)
    assert sorted(p.name for p in into.rglob("*")) == ["mine.txt", "remote"]


def test_a_cancelled_pull_leaves_nothing(lab, daemons, big_remote_file, tmp_path):
    """The scheduler's timeout cancels a Pull stalled mid-way (its SFTP server frozen
    once the first bytes are written): the partial file is removed."""
    daemon, known = daemons("pull", "127.0.2.4")
    into = tmp_path / "into"
    into.mkdir()
    stalled = asyncio.Event()

    def freeze_once(src, dst, copied, total) -> None:
        if not stalled.is_set():
            stalled.set()
            freeze_sftp(daemon)

    pull = Pull(str(big_remote_file), str(into), progress_handler=freeze_once)
    rec = Recorder()
    frozen = node(lab, "127.0.2.4", port=daemon.port, known_hosts=known, timeout=3,
                  formatter=rec)
    job = SshJob(frozen, command=pull, critical=False)
    scheduler = Scheduler(job, timeout=2, critical=False)
    assert scheduler.run() is False and scheduler.failed_time_out()
    assert stalled.is_set()  # it was cancelled mid-way, not before
    assert list(into.iterdir()) == []
    # (whether the SFTP session had to be dropped depends on when the freeze took hold:
    # the next test freezes before the first read, and checks that)
    gc.collect()  # a local file left open by the copy would warn here (ResourceWarning)


def test_a_pull_stuck_on_its_first_read_leaves_nothing(lab, daemons, big_remote_file, tmp_path,
                                                       monkeypatch):
    """The server freezes once asyncssh has created the local file, before the first
    block (so before any progress is reported): the empty file is removed too."""
    daemon, known = daemons("first-read", "127.0.2.5")
    into = tmp_path / "into"
    into.mkdir()
    opened = asyncssh.sftp.LocalFS.open

    async def open_then_freeze(self, path, mode="r", *args, **kwds):
        file = await opened(self, path, mode, *args, **kwds)
        if mode.startswith("w"):
            freeze_sftp(daemon)  # before asyncssh sends its first read
        return file

    monkeypatch.setattr(asyncssh.sftp.LocalFS, "open", open_then_freeze)
    rec = Recorder()
    stuck = node(lab, "127.0.2.5", port=daemon.port, known_hosts=known, timeout=3,
                 formatter=rec)
    job = SshJob(stuck, command=Pull(str(big_remote_file), str(into)), critical=False)
    scheduler = Scheduler(job, timeout=2, critical=False)
    assert scheduler.run() is False and scheduler.failed_time_out()
    assert list(into.iterdir()) == []
    assert DROPPED in rec.events


async def test_the_sftp_internals_we_rely_on_are_still_there(lab, daemons, big_remote_file,
                                                            tmp_path):
    """A canary: asyncssh has no public name for an SFTP client's channel or for the
    local file a copy holds; if an asyncssh release moves them, this fails loudly
    (the code then keeps working, but leaks a session slot and file handles)."""
    daemon, known = daemons("canary", "127.0.2.6")
    n = node(lab, "127.0.2.6", port=daemon.port, known_hosts=known, timeout=3)
    sftp = await n.sftp_connect_lazy()
    assert isinstance(_sftp_channel(sftp), asyncssh.SSHClientChannel)
    into = tmp_path / "into"
    into.mkdir()
    copy = asyncio.ensure_future(sftp.get(str(big_remote_file), str(into),
                                          progress_handler=lambda *_: freeze_sftp(daemon)))
    held: list = []
    end = time.monotonic() + 10
    while not held and not copy.done() and time.monotonic() < end:
        await asyncio.sleep(0.02)
        held = _local_files(copy)
    try:
        assert [os.path.basename(os.fsdecode(file.name)) for file in held] == ["big.bin"]
        assert all(not file.closed for file in held)
    finally:
        copy.cancel()
        n.abort()  # the copy ends with the connection
        await asyncio.wait([copy], timeout=10)
        for file in held:
            file.close()
        if copy.done() and not copy.cancelled():
            copy.exception()  # retrieved: it was abandoned on purpose
