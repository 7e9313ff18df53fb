"""Nothing left running: a command is stopped however early it is cancelled, and
whatever a login shell prints before it, against the real sshd."""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import pytest
from sshd import NOISY_LINE, ensure_noisy_user, small_mount_fixture  # noqa: F401  (a fixture)
from test_ssh_core import Recorder, close_nodes, node, remote_processes  # noqa: F401  (closes what node() opened)

from apssh import CommandTimeoutError, Run, SshJob
from apssh.errors import reason
from apssh.formatters import EXTENDED_DATA_STDERR, SubdirFormatter
from apssh.remote import KILL_TIMEOUT, WORST_STOP, LineSession
from asynciojobs import Scheduler
from asynciojobs.runloop import CANCEL_GRACE

_unique = itertools.count(1)


def token() -> str:
    """A sleep duration no other test uses, to find its process."""
    return f"37.{os.getpid() % 1000}{next(_unique):03d}"


async def gone(pattern: str, deadline: float = 10.0) -> list[str]:
    """Poll until no process matches ``pattern``, at most ``deadline`` seconds;
    returns what is left."""
    end = time.monotonic() + deadline
    while (left := remote_processes(pattern)) and time.monotonic() < end:
        await asyncio.sleep(0.05)
    return left


# ----- the pid line, wherever it comes on stderr
class _Proxy:
    hostname = "h"
    formatter = Recorder()


@pytest.mark.parametrize("packets", [
    [b"bashrc: hello\nAPSSH-PID 1234\noops\n"],
    [b"bashrc: hello\n", b"more\nAPSSH-PID 1234\n", b"oops\n"],
    [b"bashrc: hel", b"lo\nAPSSH-PID 12", b"34\noops\n"],
])
async def test_the_pid_line_may_come_after_other_stderr_lines(packets):
    rec = Recorder()
    session = LineSession(_Proxy(), "cmd", rec)  # type: ignore[arg-type]
    for packet in packets[:-1]:
        session.data_received(packet, EXTENDED_DATA_STDERR)
    assert session.pid is None or session.pid == 1234
    session.data_received(packets[-1], EXTENDED_DATA_STDERR)
    assert session.pid == 1234 and session.pid_known.done()
    session.flush()
    lines = [line for _, line in rec.err]
    assert "APSSH-PID 1234\n" not in lines and lines[-1] == "oops\n"
    assert lines[0].startswith("bashrc: hel")


async def test_pid_known_is_not_set_before_the_pid_line():
    session = LineSession(_Proxy(), "cmd", Recorder())  # type: ignore[arg-type]
    session.data_received(b"bashrc: hello\n", EXTENDED_DATA_STDERR)
    assert session.pid is None and not session.pid_known.done()
    session.connection_lost(None)  # the session ended without it
    assert session.pid_known.done() and session.pid is None


@pytest.fixture(scope="module")
def noisy_user(lab):
    user = ensure_noisy_user()
    if user is None:
        pytest.skip("creating a user needs root")
    return user


def test_a_login_shell_that_prints_first_still_lets_a_timeout_kill(lab, noisy_user):
    pause = token()
    rec = Recorder()
    job = SshJob(node(lab, "127.0.0.14", username=noisy_user, formatter=rec),
                 command=Run(f"sleep {pause}", timeout=1), critical=False)
    Scheduler(job, timeout=30).run()
    assert isinstance(job.raised_exception(), CommandTimeoutError)
    assert asyncio.run(gone(f"sleep {pause}", deadline=0.5)) == []  # killed, not just left
    assert ("127.0.0.14", NOISY_LINE + "\n") in rec.err  # the shell's words still shown
    assert not any("APSSH-PID" in line for _, line in rec.err)


# ----- cancelled while the session opens
class _CancelAtExec(Recorder):
    """Cancels ``task`` when its session opens: asyncssh sends exec right after,
    then waits for the reply; the cancellation lands in that wait."""

    task: asyncio.Task | None = None

    def session_start(self, hostname, command):
        assert self.task is not None
        self.task.cancel()


async def test_cancelled_while_exec_is_answered_leaves_nothing(lab):
    pause = token()
    canceller = _CancelAtExec()
    n = node(lab, "127.0.0.15", formatter=canceller)
    await n.connect_lazy()
    canceller.task = asyncio.create_task(n.run(f"sleep {pause}"))
    with pytest.raises(asyncio.CancelledError):
        await canceller.task
    assert await gone(f"sleep {pause}") == []
    await n.close()


@pytest.mark.parametrize("turns", range(12))
async def test_cancelled_after_a_few_turns_leaves_nothing(lab, turns):
    pause = token()
    n = node(lab, "127.0.0.15")
    await n.connect_lazy()
    task = asyncio.create_task(n.run(f"sleep {pause}"))
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(f"sleep {pause}") == []
    await n.close()


# ----- a formatter that fails stops its command, not the connection
def test_a_formatter_that_fails_stops_its_command_and_keeps_the_connection(lab, small_mount):
    """``apssh -o <full disk>``: each job fails with one line, the commands are
    stopped, and the connections stay up."""
    into = small_mount("rw")
    pause = token()
    formatter = SubdirFormatter(into, verbose=False)
    nodes = [node(lab, f"127.0.0.{i}", formatter=formatter) for i in (1, 2)]
    jobs = [SshJob(n, command=Run(f"head -c 3000000 /dev/zero; sleep {pause}"),
                   critical=False) for n in nodes]
    Scheduler(*jobs, timeout=30).run()
    for n, job in zip(nodes, jobs, strict=True):
        exc = job.raised_exception()
        assert isinstance(exc, OSError), exc
        # one line, naming the file
        assert reason(exc) == f"{into / n.hostname}: No space left on device", reason(exc)
        assert n.is_connected()
    assert asyncio.run(gone(f"sleep {pause}")) == []
    follow = SshJob(nodes[0], command=Run("echo again"), critical=False)
    nodes[0].formatter = Recorder()
    assert Scheduler(follow, timeout=30).run() is True and follow.result() == 0


# ----- cancelling many commands of one node
def test_cancel_grace_exceeds_the_worst_stop():
    assert CANCEL_GRACE >= WORST_STOP + KILL_TIMEOUT


def test_cancelled_commands_of_one_node_are_all_killed(lab):
    """Five commands that ignore TERM on one node, cancelled by the scheduler's
    timeout: one kill batch stops them all, well within the cancel grace."""
    pause = token()
    rec = Recorder()
    n = node(lab, "127.0.0.16", formatter=rec)
    jobs = [SshJob(n, command=Run(f"trap '' TERM; sleep {pause}"), critical=False)
            for _ in range(5)]

    async def all_running() -> None:
        end = time.monotonic() + 10
        while len(remote_processes(f"^sleep {pause}")) < 5:
            assert time.monotonic() < end, "the commands never started"
            await asyncio.sleep(0.02)
        raise RuntimeError("all running: cancel them")

    from asynciojobs import Job
    trigger = Job(all_running(), critical=True)
    assert Scheduler(*jobs, trigger, timeout=30, critical=False).run() is False
    assert asyncio.run(gone(f"sleep {pause}", deadline=0.5)) == []
    assert not any("could not stop" in line for kind, line in rec.events if kind == "stderr")


# ----- a lost connection gives its SFTP session slot back
async def test_lost_connections_with_sftp_open_leak_no_session_slot(lab):
    n = node(lab, "127.0.0.15", max_sessions=3)  # 2 slots for commands and SFTP
    for _ in range(3):
        await n.sftp_connect_lazy()
        conn = n._st.conn
        conn.abort()  # lost, not closed by us
        await asyncio.wait_for(conn.wait_closed(), 10)
        assert not n.is_connected() and not n.is_sftp_connected()
    assert await asyncio.wait_for(n.run("true"), 10) == 0
    assert await asyncio.wait_for(n.run("true"), 10) == 0
    await asyncio.wait_for(n.sftp_connect_lazy(), 10)
    await n.close()
