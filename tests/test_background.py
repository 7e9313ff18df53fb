"""A command that leaves a process in the background returns, on a real sshd.

``Run("netcat -l 10000 > f &")``: the shell exits at once, but the background
process still holds the session's output, so the server keeps the session open
until it exits. Once the exit status has come and the output has been silent for
``OUTPUT_GRACE`` seconds, the session is closed: the command returns its status,
keeps its output, and the background process goes on running.

The grace is set per test: large where output must be kept (a loaded machine
cannot make the pauses outlast it), small where the session is to be closed.
The grace's arithmetic is checked without sshd, on a clock the test moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from sshd import Lab

from apssh import Run, SshJob, SshNode, remote
from apssh.formatters import EVENT_MARK, EXTENDED_DATA_STDERR, Formatter, VerboseFormatter
from apssh.remote import LineSession
from asynciojobs import Scheduler
from asynciojobs.loop import run_in_thread_loop

#: a grace no pause between outputs outlasts, even on a loaded machine
LONG_GRACE = 60.0
#: a grace that closes a silent session soon
SHORT_GRACE = 0.2
#: bounds every run here: the grace, plus room for a slow machine
GUARD = 30 + LONG_GRACE


@pytest.fixture
def long_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "OUTPUT_GRACE", LONG_GRACE)


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "OUTPUT_GRACE", SHORT_GRACE)


class Recorder(Formatter):
    """Keeps output lines and the lines meant for stderr; verbose when asked."""

    def __init__(self, *, verbose: bool = False) -> None:
        super().__init__()
        self.verbose = verbose
        self.out: list[str] = []
        self.err: list[str] = []
        self.messages: list[str] = []

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        (self.err if datatype == EXTENDED_DATA_STDERR else self.out).append(line)

    def stderr_line(self, line: str, hostname: str | None, username: str | None = None) -> None:
        self.messages.append(line)

    def session_closed_early(self, hostname: str, command: str, grace: float) -> None:
        if self.verbose:
            self.messages.append(f"Closing the session of {command} after {grace}s")


@pytest.fixture
def make_node(lab: Lab) -> Iterator[Callable[[Formatter], SshNode]]:
    """Nodes of the test sshd, closed after the test."""
    made: list[SshNode] = []

    def make(formatter: Formatter) -> SshNode:
        node = SshNode("127.0.0.1", port=lab.port, keys=[lab.keys.client_key],
                       known_hosts=lab.known_hosts, ssh_config=None, timeout=10,
                       formatter=formatter)
        made.append(node)
        return node

    yield make

    async def close_all() -> None:
        for node in made:
            await node.close()

    run_in_thread_loop(close_all())


def run(node: SshNode, command: str) -> SshJob:
    """Run ``command`` on ``node`` in a scheduler bounded by ``GUARD``; the job."""
    job = SshJob(node, command=Run(command), critical=False)
    assert Scheduler(job, timeout=GUARD).run() is True, "the command did not return"
    return job


def test_background_process_does_not_hold_the_command(make_node, short_grace):
    rec = Recorder()
    node = make_node(rec)
    job = run(node, "sleep 300 & echo started $!")
    assert job.result() == 0
    [line] = rec.out  # the output written before the exit is kept
    word, pid = line.split()
    assert word == "started"
    try:
        # the background process goes on: what a tutorial's `netcat -l ... &` wants
        assert run(node, f"kill -0 {pid}").result() == 0
        # closing the connection leaves it running too
        run_in_thread_loop(node.close())
        assert run(node, f"kill -0 {pid}").result() == 0
    finally:
        run(node, f"kill {pid}")


def test_output_that_keeps_coming_is_kept(make_node, long_grace):
    """Output after the exit, each piece within the grace, all shown; then the
    session ends as usual, once the background process is done."""
    rec = Recorder()
    node = make_node(rec)
    job = run(node, "(for i in 1 2 3; do sleep 0.5; echo tick $i; done) & echo go")
    assert job.result() == 0
    assert rec.out == ["go\n", "tick 1\n", "tick 2\n", "tick 3\n"]
    assert rec.messages == []  # nothing was closed early


def test_verbose_says_the_session_was_closed(make_node, short_grace):
    rec = Recorder(verbose=True)
    node = make_node(rec)
    command = "sleep 300 2>/dev/null & echo $! >&2; exit 3"
    job = run(node, command)
    assert job.result() == 3  # the command's own status
    [pid] = rec.err
    try:
        [message] = [m for m in rec.messages if "Closing the session" in m]
        assert message == f"Closing the session of {command} after {SHORT_GRACE}s"
    finally:
        run(node, f"kill {pid.strip()}")


# ----- the grace, on a clock the test moves (no sshd)
class Clock:
    """The loop's time plus ``offset``, which the test moves; ``read`` is set at
    each reading."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.read = asyncio.Event()

    def __call__(self) -> float:
        self.read.set()
        return asyncio.get_running_loop().time() + self.offset


class SlowFormatter(Recorder):
    """Its writes take ``delay`` seconds of ``clock`` (a paused ``| less``, a slow disk)."""

    def __init__(self, clock: Clock, delay: float) -> None:
        super().__init__()
        self.clock = clock
        self.delay = delay

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        self.clock.offset += self.delay
        super().line(line, datatype, hostname)


class FakeProxy:
    """What a ``LineSession`` uses of its node."""

    hostname = "node"

    def __init__(self, formatter: Formatter) -> None:
        self.formatter = formatter


def exited_session(clock: Clock, formatter: Formatter) -> LineSession:
    """A session on ``clock`` whose command has exited (status 0)."""
    session = LineSession(FakeProxy(formatter), "cmd", formatter)  # type: ignore[arg-type]
    session.clock = clock
    session.exit_status_received(0)
    return session


async def first_reading(clock: Clock, waiting: asyncio.Task[bool]) -> None:
    """Until ``waiting`` has read the clock (then it has returned, or waits)."""
    clock.read.clear()
    await clock.read.wait()
    assert not waiting.done(), "the session was closed while its output was flowing"


def test_a_write_that_blocks_is_not_silence(long_grace):
    """The formatter takes ten graces to write a line that came after the exit:
    the grace starts once it is written, the session is not closed meanwhile, and
    what comes next is shown."""

    async def scenario() -> None:
        clock = Clock()
        rec = SlowFormatter(clock, 10 * LONG_GRACE)
        session = exited_session(clock, rec)
        session.data_received(b"one\n", None)  # the write "blocks" for ten graces
        ending = asyncio.ensure_future(session.ended())
        await first_reading(clock, ending)
        session.data_received(b"two\n", None)
        session.connection_lost(None)
        assert await ending is True  # over as usual, not closed for silence
        assert rec.out == ["one\n", "two\n"]

    asyncio.run(scenario())


def test_a_busy_loop_is_not_silence(monkeypatch):
    """The loop is busy elsewhere for ten graces while a session waits out its
    grace: the timer fires late, and the grace starts again."""
    monkeypatch.setattr(remote, "OUTPUT_GRACE", SHORT_GRACE)

    async def scenario() -> None:
        clock = Clock()
        session = exited_session(clock, Recorder())
        ending = asyncio.ensure_future(session.ended())
        await first_reading(clock, ending)  # it waits for the grace
        clock.offset += 10 * SHORT_GRACE  # the loop is busy elsewhere
        await first_reading(clock, ending)  # the timer fired, late: a new grace
        session.connection_lost(None)
        assert await ending is True

    asyncio.run(scenario())


def test_silence_closes_the_session(short_grace):
    """Without output for the grace after the exit, the session is to be closed."""

    async def scenario() -> None:
        clock = Clock()
        session = exited_session(clock, Recorder())
        assert await session.ended() is False

    asyncio.run(scenario())


class Events(VerboseFormatter):
    """Keeps the lines meant for stderr."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("{linenl}", verbose)
        self.messages: list[str] = []

    def stderr_line(self, line: str, hostname: str | None, username: str | None = None) -> None:
        self.messages.append(line)


def test_the_closing_is_an_event_of_verbose_formatters():
    quiet, verbose = Events(False), Events(True)
    for formatter in (quiet, verbose, Formatter()):
        formatter.session_closed_early("node", "netcat -l 10000 &", 2.0)
    assert quiet.messages == []
    assert verbose.messages == [
        f"{EVENT_MARK}Closing the session of netcat -l 10000 &: it exited, its output "
        "silent for 2.0s (held by a background process)\n"]
