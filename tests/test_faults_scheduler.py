"""Faults at the scheduler level: fatal exceptions in jobs, signals, closing jobs, debrief.

Pure-scheduler tests synchronise through ``Recorder`` (no sleeps); ssh tests run on
the real sshd (``lab``) and look for leftover remote processes with ``pgrep``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
from conftest import Recorder, never
from test_ssh_core import node, remote_processes

from apssh import CommandFailedError, LocalNode, Run, SshJob
from asynciojobs import Job, PureScheduler, Scheduler, Sequence, SignalExit

_unique = itertools.count(1)


class Stop(BaseException):
    """A BaseException of the user's own, neither KeyboardInterrupt nor SystemExit."""


def marker() -> str:
    """A sleep duration no other test (nor anything else) uses: ``sleep <marker>``."""
    return f"59.{os.getpid()}{next(_unique):03d}"


async def sibling(rec: Recorder) -> None:
    rec("started")
    try:
        await never()
    except asyncio.CancelledError:
        rec("cancelled")
        raise


async def raise_once_started(rec: Recorder, exc: BaseException) -> None:
    await rec.wait_for("started")
    raise exc


def wait_until(predicate, what: str, deadline: float = 20.0) -> None:
    """Poll ``predicate`` (a process to appear, say) until it holds or the deadline passes."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# ----- a job raising KeyboardInterrupt, SystemExit or another BaseException
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("required", [False, True], ids=["leaf", "required"])
def test_keyboard_interrupt_or_system_exit_in_a_job_cancels_the_others(rec, exc_type, required):
    other = Job(sibling, rec, label="sibling")
    failing = Job(raise_once_started, rec, exc_type(), label="failing", critical=False)
    jobs = [other, failing]
    if required:
        jobs.append(Job(never, label="after", required=failing))
    s = Scheduler(*jobs)
    with pytest.raises(exc_type):
        s.run()
    assert rec.events == ["started", "cancelled"]
    assert isinstance(failing.raised_exception(), exc_type)
    # the thread's loop is left clean and usable
    assert Scheduler(Job(asyncio.sleep, 0)).run() is True


@pytest.mark.parametrize("critical", [True, False])
async def test_a_required_job_raising_a_base_exception_does_not_hang(rec, critical):
    other = Job(sibling, rec, label="sibling")
    failing = Job(raise_once_started, rec, Stop(), label="failing", critical=critical)
    after = Job(never, label="after", required=failing)
    s = PureScheduler(other, failing, after)
    async with asyncio.timeout(10):  # a guard, not a synchronisation
        with pytest.raises(Stop):
            await s.co_run()
    assert rec.events == ["started", "cancelled"]
    assert after.is_idle()
    assert s.why() == "ABORTED: a job raised Stop"


async def test_a_base_exception_in_a_nested_scheduler_aborts_every_level(rec):
    inner = Scheduler(Job(raise_once_started, rec, Stop(), label="failing"), label="inner",
                      critical=False)
    outer = Scheduler(Job(sibling, rec, label="sibling"), inner, critical=False)
    async with asyncio.timeout(10):
        with pytest.raises(Stop):
            await outer.co_run()
    assert rec.events == ["started", "cancelled"]


async def test_an_exception_keeps_its_criticality_rules(rec):
    async def fails() -> None:
        await rec.wait_for("started")
        raise ValueError("soft")

    s = Scheduler(Job(sibling, rec, label="sibling", forever=True),
                  Job(fails, critical=False), critical=False)
    assert await s.co_run() is True  # a plain Exception in a non-critical job is only noted
    assert rec.events == ["started", "cancelled"]


def test_keyboard_interrupt_cancels_a_remote_command(lab, rec):
    token = marker()
    remote = SshJob(node(lab), command=Run(f"sleep {token}"), label="remote")

    async def interrupt() -> None:
        while not remote_processes(f"sleep {token}"):
            await asyncio.sleep(0.05)  # polling the process table, not synchronising jobs
        raise KeyboardInterrupt

    s = Scheduler(remote, Job(interrupt, label="ctrl-c", critical=False))
    with pytest.raises(KeyboardInterrupt):
        s.run()
    assert remote_processes(f"sleep {token}") == []
    assert not remote.is_done()


# ----- signals: a script using the library, in a subprocess
SCRIPT = textwrap.dedent("""\
    import signal, sys
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # even when the tests run under nohup
    from apssh import HostFormatter, LocalNode, Run, SshJob, SshNode
    from asynciojobs import Scheduler

    token, port, key, known_hosts = sys.argv[1:5]
    if port == "local":
        target = LocalNode()
    else:
        target = SshNode("127.0.0.1", port=int(port), keys=[key], known_hosts=known_hosts,
                         ssh_config=None, timeout=10, formatter=HostFormatter(verbose=False))
    job = SshJob(target, command=Run(f"sleep {token}; echo finished"))
    Scheduler(job).run()
    print("run() returned")
""")


def run_and_signal(tmp_path: Path, sig: signal.Signals, args: list[str], token: str,
                   uvloop: bool = True) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "experiment.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "NEPI_NG_UVLOOP": "1" if uvloop else "0"}
    proc = subprocess.Popen([sys.executable, str(script), token, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: remote_processes(f"sleep {token}") or proc.poll() is not None,
                   "the command to start")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("uvloop", [True, False], ids=["uvloop", "asyncio"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_signal_stops_a_local_command_and_exits_128_plus_signum(tmp_path, sig, uvloop):
    token = marker()
    done = run_and_signal(tmp_path, sig, ["local", "-", "-"], token, uvloop)
    assert done.returncode == 128 + sig, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert remote_processes(f"sleep {token}") == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_signal_stops_a_remote_command_and_exits_128_plus_signum(lab, tmp_path, sig):
    token = marker()
    args = [str(lab.port), str(lab.keys.client_key), str(lab.known_hosts)]
    done = run_and_signal(tmp_path, sig, args, token)
    assert done.returncode == 128 + sig, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert remote_processes(f"sleep {token}") == []


def test_signal_handlers_are_restored_after_a_run():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    seen = {}

    async def look() -> None:
        seen.update({sig: signal.getsignal(sig) for sig in before})

    Scheduler(Job(look)).run()
    assert {sig: signal.getsignal(sig) for sig in before} == before
    for sig, handler in seen.items():  # ours during the run, where the default was in place
        assert (handler is not before[sig]) == (before[sig] is signal.SIG_DFL)


def test_a_handler_of_your_own_is_left_alone():
    calls = []

    def mine(signum, frame):
        calls.append(signum)

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        async def look() -> object:
            return signal.getsignal(signal.SIGTERM)

        job = Job(look)
        Scheduler(job).run()
        assert job.result() is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_during_run_raises_signal_exit_after_the_jobs_are_cancelled(rec):
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("SIGTERM already handled in this process")

    async def terminate() -> None:
        await rec.wait_for("started")
        os.kill(os.getpid(), signal.SIGTERM)
        await never()

    s = Scheduler(Job(sibling, rec), Job(terminate))
    with pytest.raises(SignalExit) as info:
        s.run()
    assert (info.value.signum, info.value.code) == (signal.SIGTERM, 143)
    assert rec.events == ["started", "cancelled"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# ----- closing jobs: sync close() anywhere, async co_close() awaited
def test_close_all_jobs_disconnects_the_node(lab):
    target = node(lab)
    job = SshJob(target, command=Run("true"))
    s = Scheduler(job)
    assert s.run() is True and target.is_connected()
    s.close_all_jobs()
    assert not target.is_connected()
    assert Scheduler(SshJob(target, command=Run("true"))).run() is True  # reconnects


async def test_close_all_jobs_inside_a_running_loop(lab):
    target = node(lab)
    s = Scheduler(SshJob(target, command=Run("true")))
    assert await s.co_run() is True and target.is_connected()
    s.close_all_jobs()  # synchronous, in the loop: the connection is dropped at once
    assert not target.is_connected()
    assert await s.co_run() is True and target.is_connected()
    await s.co_close_all_jobs()
    assert not target.is_connected()


def test_close_idle_jobs_leaves_the_nodes_of_jobs_that_ran(lab):
    ran_on, idle_on = node(lab), node(lab, "127.0.0.2")
    assert Scheduler(SshJob(idle_on, command=Run("true"))).run() is True
    failing = SshJob(ran_on, command=Run("false"))
    idle = SshJob(idle_on, command=Run("true"), required=failing)
    s = Scheduler(failing, idle, critical=False)
    assert s.run() is False and idle.is_idle()
    s.close_idle_jobs()
    assert ran_on.is_connected() and not idle_on.is_connected()


def test_keep_connection_is_honoured_by_close(lab):
    target = node(lab)
    s = Scheduler(SshJob(target, command=Run("true"), keep_connection=True))
    s.run()
    s.close_all_jobs()
    assert target.is_connected()


def test_sequence_close_idle_jobs_warns_nothing_and_closes(lab):
    import gc

    target = node(lab)
    assert Scheduler(SshJob(target, command=Run("true"))).run() is True
    seq = Sequence(SshJob(target, command=Run("true")), SshJob(target, command=Run("true")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seq.close_idle_jobs()
        gc.collect()
    assert caught == []
    assert not target.is_connected()


async def test_sequence_co_close_idle_jobs(lab):
    target = node(lab)
    assert await Scheduler(SshJob(target, command=Run("true"))).co_run() is True
    seq = Sequence(SshJob(target, command=Run("true")))
    await seq.co_close_idle_jobs()
    assert not target.is_connected()


# ----- debrief: a failed command is an expected failure, a bug keeps its traceback
def test_debrief_of_a_failed_command_shows_node_command_code_duration_and_stderr(lab, capsys):
    command = "for i in $(seq 1 30); do echo err$i >&2; done; echo out; exit 3"
    job = SshJob(node(lab), command=Run(command), label="fails")
    s = Scheduler(job, critical=False)
    assert s.run() is False
    exc = job.raised_exception()
    assert isinstance(exc, CommandFailedError)
    assert (exc.node, exc.command, exc.result) == ("root@127.0.0.1", command, 3)
    assert exc.stderr_tail == [f"err{i}" for i in range(21, 31)]  # the last 10 only
    assert exc.duration is not None and exc.duration >= 0
    assert job.started_at is not None and job.ended_at is not None
    assert job.started_at <= job.ended_at
    assert str(exc) == (f"command {command} returned 3 on node root@127.0.0.1 "
                        f"after {exc.duration:.2f}s")
    capsys.readouterr()
    s.debrief()
    lines = capsys.readouterr().out.splitlines()
    assert "Traceback (most recent call last):" not in lines
    begin = next(i for i, line in enumerate(lines) if "BEG stack for CRITICAL JOB 1" in line)
    assert lines[begin + 1] == "    ********************"
    assert lines[begin + 2:begin + 14] == [
        f"    CommandFailedError: {exc}",
        "    last 10 lines of stderr:",
        *(f"      | err{i}" for i in range(21, 31)),
    ]
    assert lines[begin + 14] == "    ********************"
    assert "END stack for CRITICAL JOB 1" in lines[begin + 15]


def test_a_local_command_keeps_its_stderr_tail_too():
    job = SshJob(LocalNode(), command=Run("echo one >&2; echo two >&2; exit 4"))
    assert Scheduler(job, critical=False).run() is False
    exc = job.raised_exception()
    assert isinstance(exc, CommandFailedError)
    assert (exc.result, exc.stderr_tail) == (4, ["one", "two"])


def test_debrief_keeps_the_traceback_of_a_bug(capsys):
    async def buggy() -> None:
        {}["missing"]

    s = Scheduler(Job(buggy, label="buggy"), critical=False)
    assert s.run() is False
    capsys.readouterr()
    s.debrief()
    out = capsys.readouterr().out
    assert "    Traceback (most recent call last):" in out
    assert "    KeyError: 'missing'" in out


SLOW_SCRIPT = textwrap.dedent("""\
    import asyncio, signal, sys
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    from asynciojobs import Job, Scheduler

    async def stubborn():
        print("running", flush=True)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            print("winding down", flush=True)
            await asyncio.sleep(60)  # ignores its cancellation for a long while

    Scheduler(Job(stubborn)).run()
""")


def test_a_second_signal_stops_waiting_for_a_slow_wind_down(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "running\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout.readline() == "winding down\n"
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # the second signal's code: it did not wait for the wind-down (which ends with the first's)
    assert proc.returncode == 128 + signal.SIGHUP, err
