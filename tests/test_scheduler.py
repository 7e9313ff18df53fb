"""How schedulers run jobs: order, criticality, forever, timeout, window, nesting."""

from __future__ import annotations

import asyncio

import pytest
from conftest import Recorder, boom, never, value

from asynciojobs import (
    AbstractJob,
    CycleError,
    Engine,
    InvalidScenarioError,
    Job,
    PureScheduler,
    Scheduler,
    SchedulerJob,
    SchedulerTimeoutError,
    Sequence,
    Watch,
    set_debug,
)


class Probe(AbstractJob):
    """Records its start and end; waits for ``gate`` if given; can fail."""

    def __init__(self, rec: Recorder, name: str, *, gate: str | None = None,
                 fail: bool = False, **kwds):
        self.rec, self.name, self.gate, self.fail = rec, name, gate, fail
        self.shutdowns = 0
        self.cancelled = False
        super().__init__(label=name, **kwds)

    async def co_run(self):
        self.rec(f"start {self.name}")
        try:
            if self.gate is not None:
                await self.rec.wait_for(self.gate)
            if self.fail:
                raise ValueError(f"{self.name} failed")
            return self.name
        except asyncio.CancelledError:
            self.cancelled = True
            self.rec(f"cancelled {self.name}")
            raise
        finally:
            self.rec(f"end {self.name}")

    async def co_shutdown(self):
        self.shutdowns += 1


# ----- basics
def test_empty_scheduler_returns_true():
    assert PureScheduler().run() is True
    assert Scheduler().run() is True
    assert Scheduler().why() == "FINE"


def test_ready_jobs_start_in_insertion_order(rec):
    jobs = [Probe(rec, f"j{i}") for i in range(8)]
    top = Probe(rec, "top", required=jobs)
    assert Scheduler(*jobs, top).run() is True
    starts = [e for e in rec.events if e.startswith("start")]
    assert starts == [f"start j{i}" for i in range(8)] + ["start top"]


def test_requirements_are_honoured(rec):
    a = Probe(rec, "a")
    b = Probe(rec, "b", required=a)
    c = Probe(rec, "c", required=[a, b])
    s = Scheduler(c, b, a)  # added in reverse: order comes from requirements
    assert s.run() is True
    assert rec.events.index("end a") < rec.events.index("start b")
    assert rec.events.index("end b") < rec.events.index("start c")
    assert [c.result(), b.result(), a.result()] == ["c", "b", "a"]


def test_container_api():
    a, b = Job(value, 1), Job(value, 2)
    s = PureScheduler()
    assert s.add(a) is a
    seq = Sequence(b)
    assert s.add(seq) is seq
    assert s.update([a, b]) is s
    assert len(s) == 2 and list(s) == [a, b]
    assert s.remove(a) is s and list(s) == [b] and a.scheduler is None
    with pytest.raises(KeyError):
        s.remove(a)


@pytest.mark.parametrize("bad", ["job", 3, None.__class__])
def test_non_jobs_are_refused(bad):
    with pytest.raises(TypeError, match="expected a job"):
        Scheduler(bad)
    with pytest.raises(TypeError, match="expected a job"):
        Scheduler().update([bad])


def test_a_coroutine_given_as_a_job_is_refused_with_a_hint():
    with pytest.raises(TypeError, match=r"Job\(\.\.\.\)"):
        Scheduler(value(1))


def test_scheduler_job_alias():
    assert SchedulerJob is Scheduler


# ----- critical and non-critical failures
def test_critical_failure_aborts_pure_scheduler(rec, capsys):
    slow = Probe(rec, "slow", gate="never")
    bad = Probe(rec, "bad", fail=True)
    after = Probe(rec, "after", required=bad)
    s = PureScheduler(slow, bad, after)
    assert s.run() is False
    assert s.failed_critical() is True and s.failed_time_out() is False
    assert s.why() == "a CRITICAL job has raised an exception"
    assert after.is_idle()
    assert slow.cancelled and "end slow" in rec.events  # cancelled and awaited
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "emergency exit" in err[0] and "bad" in err[0]


def test_non_critical_failure_lets_successors_run(rec):
    bad = Probe(rec, "bad", fail=True, critical=False)
    after = Probe(rec, "after", required=bad)
    s = PureScheduler(bad, after)
    assert s.run() is True
    assert isinstance(bad.raised_exception(), ValueError)
    assert after.result() == "after"


def test_critical_scheduler_raises_the_jobs_exception(rec):
    s = Scheduler(Probe(rec, "bad", fail=True))
    with pytest.raises(ValueError, match="bad failed"):
        s.run()
    assert s.failed_critical()


def test_non_critical_scheduler_returns_false(rec):
    s = Scheduler(Probe(rec, "bad", fail=True), critical=False)
    assert s.run() is False


def test_first_critical_failure_is_the_one_reported(rec):
    first = Probe(rec, "first", fail=True)
    second = Probe(rec, "second", fail=True, gate="start first")
    s = Scheduler(first, second)
    with pytest.raises(ValueError, match="first failed"):
        s.run()


@pytest.mark.parametrize(
    ("outer", "inner", "job", "expected"),
    [
        (False, False, False, True),
        (False, False, True, True),
        (False, True, False, True),
        (False, True, True, False),
        (True, False, False, True),
        (True, False, True, True),
        (True, True, False, True),
        (True, True, True, "raises"),
    ],
)
def test_criticality_matrix(rec, outer, inner, job, expected):
    boomer = Probe(rec, "boom", fail=True, critical=job)
    nested = Scheduler(boomer, critical=inner, label="inner")
    top = Scheduler(nested, critical=outer, label="outer")
    if expected == "raises":
        with pytest.raises(ValueError, match="boom failed"):
            top.run()
    else:
        assert top.run() is expected


# ----- forever jobs
def test_forever_jobs_are_cancelled_when_finite_jobs_are_done(rec):
    server = Probe(rec, "server", gate="never", forever=True)
    client = Probe(rec, "client")
    s = Scheduler(server, client)
    assert s.run() is True
    assert server.cancelled and not server.is_done() and server.is_running()
    assert server.raised_exception() is None
    with pytest.raises(ValueError):
        server.result()
    assert server.repr_short() == "⚠ ☉ ↺ ∞"


def test_a_forever_job_that_ends_triggers_its_successors(rec):
    quick = Probe(rec, "quick", forever=True)
    follow = Probe(rec, "follow", forever=True, required=quick)
    last = Probe(rec, "last", gate="start follow")
    assert Scheduler(quick, follow, last).run() is True
    assert quick.result() == "quick" and follow.result() == "follow"


def test_only_forever_jobs_with_a_timeout_time_out(rec, capsys):
    job = Probe(rec, "loop", gate="never", forever=True)
    s = PureScheduler(job, timeout=0.05)
    assert s.run() is False
    assert s.failed_time_out() == 0.05
    assert "TIMED OUT" in capsys.readouterr().err


# ----- refused scenarios
def test_cycles_are_refused_before_running(rec):
    a = Probe(rec, "a")
    b = Probe(rec, "b", required=a)
    c = Probe(rec, "c", required=b)
    a.requires(c)
    free = Probe(rec, "free")
    s = Scheduler(free, a, b, c)
    with pytest.raises(CycleError) as info:
        s.run()
    assert set(info.value.jobs) == {a, b, c}
    assert "<Probe `a`>" in str(info.value) and "->" in str(info.value)
    assert rec.events == []
    assert s.check_cycles() is False


def test_a_cycle_in_a_nested_scheduler_is_refused_before_anything_runs(rec):
    a = Probe(rec, "a")
    b = Probe(rec, "b", required=a)
    a.requires(b)
    first = Probe(rec, "first")
    nested = Scheduler(a, b, required=first)
    top = Scheduler(first, nested)
    with pytest.raises(CycleError):
        top.run()
    assert rec.events == []
    assert top.check_cycles() is False


def test_requirement_outside_the_scheduler_is_refused(rec):
    outside = Probe(rec, "outside")
    inside = Probe(rec, "inside", required=outside)
    with pytest.raises(InvalidScenarioError, match="not in the same scheduler"):
        Scheduler(inside).run()


def test_finite_job_requiring_a_forever_job_runs_when_it_ends(rec):
    # 0.21: a forever job that ends starts its successors (see test_compat_scheduler.py)
    server = Probe(rec, "server", forever=True)
    client = Probe(rec, "client", required=server)
    assert Scheduler(server, client).run() is True
    assert rec.events == ["start server", "end server", "start client", "end client"]


def test_only_forever_jobs_without_timeout_end_when_they_end(rec):
    assert Scheduler(Probe(rec, "f", forever=True)).run() is True
    assert rec.events == ["start f", "end f"]


def test_a_forever_nested_scheduler_of_forever_jobs_is_fine(rec):
    inner = Scheduler(Probe(rec, "tick", gate="never", forever=True), forever=True)
    main = Probe(rec, "main", gate="start tick")
    assert Scheduler(inner, main).run() is True
    assert "cancelled tick" in rec.events


# ----- timeout
def test_timeout_pure_scheduler_returns_false(rec, capsys):
    slow = Probe(rec, "slow", gate="never")
    later = Probe(rec, "later", required=slow)
    s = PureScheduler(slow, later, timeout=0.05)
    assert s.run() is False
    assert s.failed_time_out() == 0.05 and not s.failed_critical()
    assert s.why() == "TIMED OUT after 0.05s"
    assert slow.cancelled and later.is_idle()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "TIMED OUT after 0.05s" in err[0]


def test_timeout_critical_scheduler_raises_a_timeout_error(rec):
    s = Scheduler(Probe(rec, "slow", gate="never"), timeout=0.05, label="main")
    with pytest.raises(SchedulerTimeoutError, match="took too long") as info:
        s.run()
    assert isinstance(info.value, TimeoutError)


def test_timeout_zero_means_no_time_at_all(rec):
    s = PureScheduler(Probe(rec, "a"), timeout=0)
    assert s.run() is False
    assert rec.events == []
    assert s.failed_time_out() is True
    assert s.why() == "TIMED OUT after 0s"
    with pytest.raises(TimeoutError):
        Scheduler(Probe(rec, "b"), timeout=0).run()
    assert Scheduler(Probe(rec, "c"), timeout=0, critical=False).run() is False


# ----- jobs_window
def test_window_caps_concurrency(rec):
    running = 0
    peak = 0

    async def work(i):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(3):
            await asyncio.sleep(0)
        running -= 1
        return i

    jobs = [Job(work, i) for i in range(20)]
    assert Scheduler(*jobs, jobs_window=3).run() is True
    assert peak == 3
    assert [job.result() for job in jobs] == list(range(20))


def test_window_does_not_leak_slots_on_failures(rec):
    # 0.21.3 hangs here: each failing job kept its slot
    failing = [Job(boom, f"b{i}", critical=False) for i in range(5)]
    last = Job(value, "last", critical=False)
    s = PureScheduler(*failing, last, jobs_window=1, timeout=5)
    assert s.run() is True
    assert last.result() == "last"


@pytest.mark.parametrize("with_successor", [False, True])
def test_window_slot_freed_by_an_outside_cancellation(rec, with_successor):
    tasks = []

    async def victim():
        tasks.append(asyncio.current_task())
        rec("victim")
        await asyncio.Event().wait()

    victim_job = Job(victim, critical=False)

    async def killer():
        await rec.wait_for("victim")
        tasks[0].cancel()

    after = Job(value, "after", required=victim_job if with_successor else None)
    s = PureScheduler(victim_job, Job(killer), after, jobs_window=2, timeout=5)
    assert s.run() is True
    assert isinstance(victim_job.raised_exception(), asyncio.CancelledError)
    assert after.result() == "after"


def test_scheduled_jobs_show_as_scheduled_while_waiting_for_a_slot(rec):
    first = Probe(rec, "first", gate="go")
    second = Probe(rec, "second")
    seen = {}

    async def look():
        await rec.wait_for("start first")
        seen["second"] = (second.is_scheduled(), second.is_running())
        rec("go")

    s = PureScheduler(first, Job(look), second, jobs_window=2)
    assert s.run() is True
    assert seen["second"] == (True, False)


# ----- nesting and structured cancellation
def test_nested_scheduler_result_and_ids(rec):
    a = Probe(rec, "a")
    nested = Scheduler(Probe(rec, "x"), Probe(rec, "y"), label="nested", required=a)
    z = Probe(rec, "z", required=nested)
    top = Scheduler(a, nested, z)
    assert top.run() is True
    assert nested.result() is True
    assert [a.repr_id(), nested.repr_id(), z.repr_id()] == ["1", "2", "5"]


async def test_outer_timeout_cancels_and_awaits_nested_jobs(rec):
    inner_job = Probe(rec, "inner", gate="never")
    nested = Scheduler(inner_job, label="nested")
    top = PureScheduler(nested, timeout=0.05)
    assert await top.co_run() is False
    # the nested job was cancelled and had finished before co_run returned
    assert inner_job.cancelled and "end inner" in rec.events
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_cancelling_the_run_cancels_everything(rec):
    deep = Probe(rec, "deep", gate="never")
    nested = Scheduler(deep, label="nested")
    top = Scheduler(nested, Probe(rec, "side", gate="never"))
    task = asyncio.create_task(top.co_run())
    await rec.wait_for("start deep")
    await rec.wait_for("start side")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "end deep" in rec.events and "end side" in rec.events
    assert top.why() == "CANCELLED from outside"
    assert asyncio.all_tasks() == {asyncio.current_task()}


def test_critical_failure_in_a_nested_scheduler_cancels_siblings(rec):
    sibling = Probe(rec, "sibling", gate="never")
    nested = Scheduler(Probe(rec, "bad", fail=True, gate="start sibling"), label="nested")
    top = Scheduler(sibling, nested, critical=False)
    assert top.run() is False
    assert sibling.cancelled
    assert isinstance(nested.raised_exception(), ValueError)


# ----- running again
def test_a_scheduler_runs_again_with_fresh_states(rec):
    a = Probe(rec, "a")
    b = Probe(rec, "b", required=a, fail=True, critical=False)
    s = Scheduler(a, b)
    assert s.run() is True
    assert b.raised_exception() is not None
    b.fail = False
    assert s.run() is True
    assert b.raised_exception() is None and b.result() == "b"
    assert a.shutdowns == 2 and b.shutdowns == 2
    assert rec.events.count("start a") == 2


def test_rerun_resets_jobs_of_nested_schedulers_that_did_not_run(rec):
    bad = Probe(rec, "bad", fail=True)
    inner = Probe(rec, "inner")
    nested = Scheduler(inner, required=bad)
    top = Scheduler(bad, nested, critical=False)
    bad.fail = False
    assert top.run() is True and inner.is_done()
    bad.fail = True
    assert top.run() is False
    assert inner.is_idle() and nested.is_idle()


def test_rerun_with_a_coroutine_object_job_is_refused_clearly():
    job = Job(value(1))
    s = Scheduler(job)
    assert s.run() is True
    with pytest.raises(InvalidScenarioError, match=r"coroutine object.*Job\(func"):
        s.run()


def test_run_keeps_one_event_loop_between_calls():
    loops = []

    async def remember():
        loops.append(asyncio.get_running_loop())

    Scheduler(Job(remember)).run()
    Scheduler(Job(remember)).run()
    assert loops[0] is loops[1]


async def test_run_inside_a_running_loop_says_to_await_co_run():
    s = Scheduler(Job(value, 1))
    with pytest.raises(RuntimeError, match=r"await scheduler\.co_run"):
        s.run()


# ----- shutdown
def test_shutdown_once_per_run_and_guarded(rec):
    a = Probe(rec, "a")
    s = PureScheduler(a)
    assert s.run() is True
    assert a.shutdowns == 1
    assert s.shutdown() is None  # already done for this run
    assert a.shutdowns == 1


def test_shutdown_of_a_never_run_scheduler(rec):
    a = Probe(rec, "a")
    assert PureScheduler(a).shutdown() is True
    assert a.shutdowns == 1


def test_shutdown_timeout_cancels_slow_shutdowns(capsys):
    async def slow_down():
        await asyncio.Event().wait()

    job = Job(value, 1, coshutdown=slow_down, label="slow")
    s = PureScheduler(job, shutdown_timeout=0.05)
    assert s.run() is True
    err = capsys.readouterr().err
    assert "shutdown timed out after 0.05s: <Job `slow`>" in err


def test_shutdown_errors_are_reported(capsys):
    async def bad_down():
        raise OSError("cannot stop")

    PureScheduler(Job(value, 1, coshutdown=bad_down, label="j")).run()
    assert "shutdown of <Job `j`> raised OSError: cannot stop" in capsys.readouterr().err


def test_nested_schedulers_shut_down_their_jobs(rec):
    inner = Probe(rec, "inner")
    top = Scheduler(Scheduler(inner))
    top.run()
    assert inner.shutdowns == 1


# ----- feedback
def test_verbose_feedback(rec, capsys):
    watch = Watch()
    capsys.readouterr()  # what creating the Watch printed is tested in test_watch.py
    s = PureScheduler(Job(value, 2, label="v2"), verbose=True, watch=watch)
    s.run()
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("SCHEDULER 0D + 0R + 1I = 1: entering co_run() with 1 jobs")
    assert out[0][:9].count(".") == 1 and out[0][7:9] == "  "
    assert out[1].endswith("0D + 0R + 1I = 1 STARTING: 1 ⚠   ⚑   <Job `v2`> [not done] ")
    assert out[2].endswith("1D + 0R + 0I = 1 DONE    : 1 ⚠ ☉ ☓   <Job `v2`> [[ -> 2]] ")
    assert out[3].endswith("SCHEDULER 1D + 0R + 0I = 1: scheduler is shutting down...")


def test_verbose_forced_message_goes_to_the_feedback(rec, capsys):
    s = PureScheduler(Probe(rec, "s", gate="never"), timeout=0.01, verbose=True)
    s.run()
    out, err = capsys.readouterr()
    assert "TIMED OUT after 0.01s" in out and err == ""


def test_debug_prints_the_traceback_of_failing_jobs(rec, capsys):
    set_debug(True)
    try:
        PureScheduler(Job(boom, "debugged", critical=False)).run()
    finally:
        set_debug(False)
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: debugged" in err
    asyncio.get_event_loop_policy()  # the loop left in debug mode does no harm


def test_stats_and_repr(rec):
    s = Scheduler(Probe(rec, "a"), Probe(rec, "b"))
    assert s.stats() == "0D + 0R + 2I = 2"
    assert repr(s) == "Scheduler with 0 done + 0 ongoing + 2 idle = 2 job(s)"
    s.run()
    assert s.stats() == "2D + 0R + 0I = 2"


def test_engine_returns_false_instead_of_raising(rec):
    e = Engine(Probe(rec, "bad", fail=True, critical=True))
    assert e.orchestrate() is False
    e2 = Engine(Probe(rec, "slow", gate="never"))
    assert e2.orchestrate(timeout=0.02) is False
    assert e2.failed_time_out() == 0.02


async def test_engine_co_orchestrate(rec):
    e = Engine(Probe(rec, "a"), Probe(rec, "b", gate="never", forever=True))
    assert await e.co_orchestrate(jobs_window=1) is True
    assert e.rain_check() is True


def test_never_job_helper_is_cancellable():
    s = PureScheduler(Job(never), timeout=0.01)
    assert s.run() is False


CTRL_C_SCRIPT = """
import asyncio, sys
from asynciojobs import Job, Scheduler

async def deep():
    print("started", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        print("deep job cleaned up", flush=True)

async def down():
    print("shutdown ran", flush=True)

nested = Scheduler(Job(deep, coshutdown=down, label="deep"), label="nested")
try:
    Scheduler(nested).run()
except KeyboardInterrupt:
    print("KeyboardInterrupt reached the caller", flush=True)
    sys.exit(130)
"""


def test_ctrl_c_cancels_and_shuts_down_everything(tmp_path):
    import signal
    import subprocess
    import sys

    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"  # the job runs: now press Ctrl-C
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert out.splitlines() == [
        "deep job cleaned up", "shutdown ran", "KeyboardInterrupt reached the caller",
    ]
    assert proc.returncode == 130
