"""Process: a command to talk to, on a LocalNode and on the real sshd."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess

import pytest
from test_ssh_core import Recorder, node

from apssh import LocalNode, Process, SshNode
from apssh.node import Node
from apssh.process import ExpectEndError, ExpectTimeoutError

_marks = itertools.count(1)

INTERACTIVE = "sh -c 'echo ready; read x; echo got $x'"


def mark() -> str:
    """A word that names the processes of one test (for pgrep)."""
    return f"apssh-process-{os.getpid()}-{next(_marks)}"


async def nothing_left(word: str, deadline: float = 5.0) -> bool:
    """True once no process has ``word`` in its command line (polled, bounded)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        found = subprocess.run(["pgrep", "-f", word], capture_output=True, check=False)
        if found.returncode != 0:
            return True
        if loop.time() > end:
            return False
        await asyncio.sleep(0.05)  # polling the process table, bounded by the deadline


@pytest.fixture(params=["local", "ssh"])
async def make_node(request):
    """Makes a node of each kind (the sshd one starts the daemon), closed after the
    test, in the test's loop."""
    made = []

    def make(formatter=None):
        if request.param == "local":
            made.append(LocalNode(formatter=formatter or Recorder()))
        else:
            made.append(node(request.getfixturevalue("lab"), formatter=formatter or Recorder()))
        return made[-1]
    yield make
    for each in made:
        await each.close()


def test_both_kinds_are_nodes():
    assert isinstance(LocalNode(), Node)
    assert isinstance(SshNode("127.0.0.1", known_hosts=None, ssh_config=None), Node)


async def test_banner_then_write_and_read(make_node):
    recorder = Recorder()
    target = make_node(recorder)
    async with target.process(INTERACTIVE) as proc:
        assert proc.running
        assert (await proc.expect(r"^ready$", timeout=10)).group(0) == "ready"
        await proc.write("hello\n")
        found = await proc.expect(r"got (?P<word>\w+)", timeout=10)
        assert found["word"] == "hello"
        assert await proc.wait(timeout=10) == 0
    assert proc.stdout == b"ready\ngot hello\n"
    assert proc.stdout_text == "ready\ngot hello\n"
    assert proc.stderr == b""
    assert proc.started_at is not None and proc.ended_at is not None
    assert proc.started_at <= proc.ended_at
    # lines went to the formatter too, as run()'s do
    assert [line for _, line in recorder.out] == ["ready\n", "got hello\n"]


async def test_close_gives_end_of_file(make_node):
    proc = await Process(make_node(), "cat; echo done >&2").start()
    await proc.write(b"one\ntwo")
    await proc.close()
    assert await proc.wait(timeout=10) == 0
    assert proc.stdout == b"one\ntwo"
    assert proc.stderr == b"done\n"


async def test_expect_timeout_names_the_pattern(make_node):
    async with make_node().process("echo nope; sleep 30") as proc:
        with pytest.raises(ExpectTimeoutError, match="never-seen") as info:
            await proc.expect("never-seen", timeout=0.3)
        assert isinstance(info.value, TimeoutError)
        assert proc.running  # the process goes on


async def test_expect_on_stderr_and_end(make_node):
    proc = await make_node().process("echo 'Password: ' | tr -d '\\n' >&2").start()
    await proc.expect(r"Password:\s*$", timeout=10, stream="stderr")
    with pytest.raises(ExpectEndError, match="more"):
        await proc.expect("more", timeout=10, stream="stderr")
    assert await proc.wait() == 0


async def test_kill_leaves_nothing_running(make_node):
    seconds = 100000 + next(_marks) * 1000 + os.getpid() % 1000  # names its sleeps
    proc = await make_node().process(
        f"sleep {seconds} & sleep {seconds + 1}; echo not reached").start()
    assert not await nothing_left(f"sleep {seconds + 1}", 0)  # it runs
    assert await proc.kill() in ("KILL", "TERM", None)
    assert not proc.running
    assert await nothing_left(f"sleep {seconds}")  # the background one too
    assert await nothing_left(f"sleep {seconds + 1}")
    assert b"not reached" not in proc.stdout


async def test_async_with_kills_on_exit(make_node):
    word = mark()
    async with make_node().process(f"sh -c 'echo started; sleep 300' {word}") as proc:
        await proc.expect("started", timeout=10)
        assert not await nothing_left(word, 0)
    assert not proc.running
    assert await nothing_left(word)


async def test_exit_status_and_signal(make_node):
    target = make_node()
    assert await (await target.process("exit 3").start()).wait(timeout=10) == 3
    signalled = await target.process("kill -TERM $$").start()
    assert await signalled.wait(timeout=10) == "TERM"


async def test_wait_timeout_leaves_it_running(make_node):
    async with make_node().process("sleep 30") as proc:
        with pytest.raises(TimeoutError, match="still running"):
            await proc.wait(timeout=0.2)
        assert proc.running


async def test_bytes_unchanged(make_node):
    payload = bytes(range(256)) * 4 + b"no newline at the end \xff"
    proc = await make_node().process("cat", show=False).start()
    await proc.write(payload)
    await proc.close()
    assert await proc.wait(timeout=10) == 0
    assert proc.stdout == payload
    assert await proc.expect(rb"\xff$", timeout=1)


# ----- one shot: run(), run_sync()
async def test_run_writes_input_and_waits(make_node):
    proc = await make_node().process("cat; exit 5", show=False).run(timeout=10, input="in\n")
    assert (proc.exit_status, proc.stdout) == (5, b"in\n")
    assert proc.started_at is not None and proc.ended_at is not None


async def test_run_timeout_kills_it(make_node):
    word = mark()
    proc = make_node().process(f"sh -c 'sleep 300' {word}", show=False)
    with pytest.raises(TimeoutError, match=r"still running after 0\.5s"):
        await proc.run(timeout=0.5)
    assert not proc.running
    assert await nothing_left(word)


@pytest.mark.parametrize("kind", ["local", "ssh"])
def test_run_sync(kind, request):
    recorder = Recorder()
    target = (LocalNode(formatter=recorder) if kind == "local"
              else node(request.getfixturevalue("lab"), formatter=recorder))
    proc = target.process("read x; echo got $x; echo oops >&2").run_sync(timeout=10,
                                                                        input=b"it\n")
    assert (proc.exit_status, proc.stdout, proc.stderr) == (0, b"got it\n", b"oops\n")
    assert [line for _, line in recorder.out] == ["got it\n"]
    if kind == "ssh":  # its connection was closed in the run's own loop
        assert not target.is_connected()
        assert [event for event, _ in recorder.events] == ["connect", "closed"]
    assert target.process("exit 2").run_sync(timeout=10).exit_status == 2  # and again


async def test_run_sync_inside_a_running_loop_is_refused():
    proc = LocalNode(formatter=Recorder()).process("true")
    with pytest.raises(RuntimeError, match=r"running event loop.*await process\.run\(\)"):
        proc.run_sync()
    assert not proc.running and proc.started_at is None
