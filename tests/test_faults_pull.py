"""A failed Pull removes what it wrote, and only that: other jobs' files in the same
directory stay. Against the real sshd; the failure is remote (a file the ssh user
cannot read), so no root is needed on the client side (the plain user is)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from test_ssh_core import close_nodes, node  # noqa: F401  (closes what node() opened)

from apssh import CopyError, Pull, SshJob
from asynciojobs import Scheduler


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
    assert contents(into) == ["results", "results/1.txt", "results/2.txt"]


def test_a_failed_pull_into_a_new_directory_leaves_nothing(lab, remote, tmp_path):
    into = tmp_path / "new"
    job = SshJob(node(lab, username=lab.plain_user),
                 command=Pull(str(remote / "b"), str(into), recurse=True), critical=False)
    Scheduler(job, timeout=30).run()
    assert isinstance(job.raised_exception(), CopyError)
    assert not os.path.lexists(into)
