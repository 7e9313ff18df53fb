"""Faults on the client side: a LocalNode copy or command cancelled at a bad time,
and the local directories a Pull creates (``Pull(mkdir=True)``, ``appull``)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_cli import H, base, run
from test_ssh_core import Recorder, remote_processes

from apssh import CopyError, LocalNode, Pull, Push
from apssh.cli import Appull


def listing(directory: Path) -> list[str]:
    """What ``directory`` holds, recursively (nothing when it does not exist)."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


async def until(predicate: Callable[[], bool], seconds: float = 10) -> None:
    """Poll ``predicate`` with a deadline."""
    end = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > end:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.01)  # polling, with a deadline: not a stand-in for a signal


async def turns(count: int) -> None:
    """Let the loop run ``count`` rounds of ready callbacks."""
    for _ in range(count):
        await asyncio.sleep(0)


# ----- a cancelled LocalNode copy stops before its caller cleans up
@pytest.mark.parametrize("kind", [Pull, Push])
def test_a_cancelled_local_copy_writes_nothing_after_it_returns(tmp_path, kind):
    source = tmp_path / "source"
    source.mkdir()
    for i in range(200):
        (source / f"{i:03}.bin").write_bytes(b"x" * 1000)
    into = tmp_path / "into"
    reached, release, returned = threading.Event(), threading.Event(), threading.Event()
    calls: list[str] = []
    late: list[str] = []

    def progress(src, dst, copied, total) -> None:  # in the copy's thread
        if returned.is_set():
            late.append(dst)
        calls.append(dst)
        if len(calls) == 20:  # 10 files in: hold the copy while it is cancelled
            reached.set()
            release.wait(10)

    async def scenario() -> list[str]:
        command = kind(str(source), str(into), recurse=True, progress_handler=progress)
        task = asyncio.create_task(command.co_run_local(LocalNode(formatter=Recorder())))
        await until(reached.is_set)
        task.cancel()
        await turns(3)  # the cancellation is delivered, the copy still held
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        returned.set()
        return listing(into)

    at_return = asyncio.run(scenario())
    # asyncio.run has joined the copy's thread, had it gone on
    assert late == []
    assert listing(into) == at_return
    if kind is Pull:  # its cleanup came after the last write: nothing is left
        assert not into.exists()
    else:
        assert 0 < len(at_return) < 200


def test_a_local_copy_still_copies_whole_files(tmp_path):
    source = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk
    source.write_bytes(data)
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "f").write_text("f")
    (tmp_path / "tree" / "sub" / "f").chmod(0o600)
    node = LocalNode(formatter=Recorder())
    sizes: list[tuple[int, int]] = []

    async def scenario() -> None:
        await node.get_file_s(str(source), str(tmp_path / "copy.bin"),
                              progress_handler=lambda s, d, c, t: sizes.append((c, t)))
        await node.put_file_s(str(tmp_path / "tree"), str(tmp_path / "tree2"), recurse=True)

    asyncio.run(scenario())
    assert (tmp_path / "copy.bin").read_bytes() == data
    assert sizes[0] == (0, len(data)) and sizes[-1] == (len(data), len(data))
    copied = tmp_path / "tree2" / "sub" / "f"
    assert copied.read_text() == "f" and copied.stat().st_mode & 0o777 == 0o600


# ----- a command cancelled twice while its shell starts
@pytest.mark.parametrize("first", range(6))
@pytest.mark.parametrize("then", range(1, 4))
async def test_local_run_cancelled_twice_while_starting_leaves_nothing(first, then):
    token = f"29.{os.getpid()}{first}{then}"
    task = asyncio.create_task(LocalNode(formatter=Recorder()).run(f"sleep {token}"))
    await turns(first)
    task.cancel()
    await turns(then)
    task.cancel()
    try:
        with pytest.raises(asyncio.CancelledError):
            await task
        assert remote_processes(f"sleep {token}") == []
    finally:  # whatever was left, by pid
        for line in remote_processes(f"sleep {token}"):
            os.kill(int(line.split()[0]), signal.SIGKILL)


# ----- the local directory a Pull makes: when it runs, and undone if it fails
def test_pull_makes_its_directory_when_it_runs(tmp_path):
    source = tmp_path / "f.txt"
    source.write_text("f\n")
    node = LocalNode(formatter=Recorder())
    single = Pull(str(source), str(tmp_path / "a" / "b" / "copy.txt"), mkdir=True)
    several = Pull([str(source), str(source)], str(tmp_path / "c" / "d"), mkdir=True)
    slash = Pull(str(source), f"{tmp_path / 'e'}/", mkdir=True)
    assert not (tmp_path / "a").exists()  # nothing made before it runs

    async def scenario() -> None:
        for command in (single, several, slash):
            assert await command.co_run_local(node) == 0

    asyncio.run(scenario())
    assert (tmp_path / "a" / "b" / "copy.txt").read_text() == "f\n"
    assert (tmp_path / "c" / "d" / "f.txt").read_text() == "f\n"
    assert (tmp_path / "e" / "f.txt").read_text() == "f\n"


def test_a_failed_pull_removes_the_directories_it_made_and_only_those(tmp_path):
    node = LocalNode(formatter=Recorder())
    (tmp_path / "was-there").mkdir()
    missing = str(tmp_path / "no-such-file")

    async def fails(command: Pull) -> None:
        with pytest.raises(CopyError, match="no-such-file"):
            await command.co_run_local(node)

    asyncio.run(fails(Pull(missing, f"{tmp_path / 'new' / 'deeper'}/", mkdir=True)))
    asyncio.run(fails(Pull(missing, f"{tmp_path / 'was-there' / 'new'}/", mkdir=True)))
    assert listing(tmp_path) == ["was-there"]


def test_a_failed_pull_leaves_a_directory_another_pull_copies_into(tmp_path):
    """A Pull makes a new directory, then another one starts copying into it (held
    before it writes anything); the first one fails: the directory stays."""
    (tmp_path / "f.txt").write_text("f\n")
    (tmp_path / "g.txt").write_text("g\n")
    into = f"{tmp_path / 'shared'}/"
    holds = {name: (threading.Event(), threading.Event()) for name in ("f.txt", "g.txt")}

    def hold(src, dst, copied, total) -> None:  # each Pull held in its first file
        reached, release = holds[Path(src).name]
        if not reached.is_set():
            reached.set()
            release.wait(10)

    async def scenario() -> None:
        node = LocalNode(formatter=Recorder())
        failing = asyncio.create_task(Pull(
            [str(tmp_path / "f.txt"), str(tmp_path / "no-such-file")], into, mkdir=True,
            progress_handler=hold).co_run_local(node))
        await until(holds["f.txt"][0].is_set)
        good = asyncio.create_task(Pull(str(tmp_path / "g.txt"), into, mkdir=True,
                                        progress_handler=hold).co_run_local(node))
        await until(holds["g.txt"][0].is_set)
        holds["f.txt"][1].set()
        with pytest.raises(CopyError, match="no-such-file"):
            await failing
        assert listing(tmp_path / "shared") == []  # its f.txt removed, the directory kept
        holds["g.txt"][1].set()
        assert await good == 0

    asyncio.run(scenario())
    assert listing(tmp_path / "shared") == ["g.txt"]


def test_appull_leaves_no_empty_directory_for_a_failed_host(lab, capsys, tmp_path,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, Appull, *base(lab), "-t", f"{H}.1", "@:no-such-file",
                         "out/{host}/")
    assert code == 1, err
    assert not (tmp_path / "out").exists()
    code, out, err = run(capsys, Appull, *base(lab), "-t", f"{H}.1:1", "@:no-such-file",
                         "out/{host}/sub/file")
    assert code == 255, err
    assert not (tmp_path / "out").exists()
    code, out, err = run(capsys, Appull, *base(lab), "-t", f"{H}.1", "@:.profile",
                         "@:no-such-file", "out/{host}")  # several files: a directory
    assert code == 1, err
    assert not (tmp_path / "out").exists()
