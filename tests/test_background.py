"""A command that leaves a process in the background returns, on a real sshd.

``Run("netcat -l 10000 > f &")``: the shell exits at once, but the background
process still holds the session's output, so the server keeps the session open
until it exits. Once the exit status has come and the output has been silent for
``OUTPUT_GRACE`` seconds, the session is closed: the command returns its status,
keeps its output, and the background process goes on running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sshd import Lab

from apssh import Run, SshJob, SshNode
from apssh.formatters import EXTENDED_DATA_STDERR, Formatter
from apssh.remote import OUTPUT_GRACE
from asynciojobs import Scheduler
from asynciojobs.loop import run_in_thread_loop

#: bounds every run here: the grace, plus room for a slow machine
GUARD = 30 + OUTPUT_GRACE


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


def test_background_process_does_not_hold_the_command(make_node):
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


def test_output_that_keeps_coming_is_kept(make_node):
    """Output after the exit, each piece within the grace, all shown; then the
    session ends as usual, once the background process is done."""
    rec = Recorder()
    node = make_node(rec)
    job = run(node, "(for i in 1 2 3; do sleep 0.5; echo tick $i; done) & echo go")
    assert job.result() == 0
    assert rec.out == ["go\n", "tick 1\n", "tick 2\n", "tick 3\n"]
    assert rec.messages == []  # nothing was closed early


def test_verbose_says_the_session_was_closed(make_node):
    rec = Recorder(verbose=True)
    node = make_node(rec)
    job = run(node, "sleep 300 2>/dev/null & echo $! >&2; exit 3")
    assert job.result() == 3  # the command's own status
    [pid] = rec.err
    try:
        [message] = [m for m in rec.messages if "Closing the session" in m]
        assert "held by a background process" in message
    finally:
        run(node, f"kill {pid.strip()}")
