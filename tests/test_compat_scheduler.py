"""Scenarios of asynciojobs 0.21 (and older) that must run, not be refused.

- Forever jobs may end on their own (a capture stopped by a later ``pkill``, a
  nested scheduler): a scheduler made only of forever jobs, without timeout, runs
  and returns True once they have ended; a job that requires a forever job starts
  when that job ends.
- ``orchestrate(timeout=..., jobs_window=...)``, the keywords of asynciojobs before
  0.10, override the scheduler's own for one run, restored afterwards.
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import Recorder, never

from asynciojobs import (
    AbstractJob,
    Engine,
    Job,
    PureScheduler,
    Scheduler,
    SchedulerTimeoutError,
)


class Step(AbstractJob):
    """Records its start and end; waits for ``gate`` first if given; yields once."""

    def __init__(self, rec: Recorder, name: str, *, gate: str | None = None, **kwds):
        self.rec, self.name, self.gate = rec, name, gate
        super().__init__(label=name, **kwds)

    async def co_run(self) -> str:
        self.rec(f"start {self.name}")
        try:
            if self.gate is not None:
                await self.rec.wait_for(self.gate)
            await asyncio.sleep(0)  # one loop turn: lets other ready jobs start meanwhile
            return self.name
        except asyncio.CancelledError:
            self.rec(f"cancelled {self.name}")
            raise
        finally:
            self.rec(f"end {self.name}")

    async def co_shutdown(self) -> None:
        pass


# ----- forever jobs that end on their own
async def test_only_forever_jobs_end_when_another_sets_an_event():
    stop = asyncio.Event()

    async def capture() -> str:  # a tcpdump, until the pkill
        await stop.wait()
        return "captured"

    async def pkill() -> None:
        stop.set()

    tcpdump = Job(capture, forever=True, label="tcpdump")
    killer = Job(pkill, forever=True, label="pkill")
    s = Scheduler(tcpdump, killer)
    assert await s.co_run() is True
    assert tcpdump.is_done() and tcpdump.result() == "captured"
    assert killer.is_done() and s.why() == "FINE"


def test_pure_scheduler_of_forever_jobs_without_timeout_runs(rec):
    s = PureScheduler(Step(rec, "server", gate="start client", forever=True),
                      Step(rec, "client", forever=True))
    assert s.check_cycles() is True
    assert s.run() is True
    assert rec.events.index("start client") < rec.events.index("end server")
    assert not any(e.startswith("cancelled") for e in rec.events)


def test_nested_scheduler_of_forever_jobs_ends_when_they_end(rec):
    # a capture scheduler (not forever itself), stopped by a job of the parent
    capture = Scheduler(Step(rec, "tcpdump1", gate="start pkill", forever=True),
                        Step(rec, "tcpdump2", gate="start pkill", forever=True),
                        label="capture")
    pkill = Step(rec, "pkill")
    report = Step(rec, "report", required=capture)
    main = Scheduler(capture, pkill, report)
    assert main.run() is True
    assert capture.result() is True and report.result() == "report"
    assert rec.events.index("end tcpdump1") < rec.events.index("start report")
    assert rec.events.index("end tcpdump2") < rec.events.index("start report")
    assert not any(e.startswith("cancelled") for e in rec.events)


def test_finite_job_requiring_a_forever_job_starts_when_it_ends(rec):
    tcpdump = Step(rec, "tcpdump", gate="end pkill", forever=True)
    pkill = Step(rec, "pkill")
    analyse = Step(rec, "analyse", required=tcpdump)
    assert Scheduler(tcpdump, pkill, analyse).run() is True
    assert rec.events.index("end tcpdump") < rec.events.index("start analyse")
    assert analyse.result() == "analyse"


def test_forever_jobs_that_never_end_still_stop_at_the_timeout(rec):
    s = PureScheduler(Job(never, forever=True), Step(rec, "f", forever=True), timeout=0.02)
    assert s.run() is False
    assert s.failed_time_out() == 0.02


def test_remaining_forever_jobs_are_cancelled_once_the_finite_ones_are_done(rec):
    server = Step(rec, "server", gate="never", forever=True)
    assert Scheduler(server, Step(rec, "client")).run() is True
    assert "cancelled server" in rec.events


# ----- the keywords of orchestrate() before 0.10
def test_orchestrate_timeout_applies_to_that_run_only(rec, capsys):
    s = PureScheduler(Step(rec, "slow", gate="never"))
    assert s.orchestrate(timeout=0.02) is False
    assert s.timeout is None
    assert s.failed_time_out() == 0.02
    assert s.why() == "TIMED OUT after 0.02s"
    assert "TIMED OUT after 0.02s" in capsys.readouterr().err


def test_orchestrate_jobs_window_applies_to_that_run_only(rec):
    jobs = [Step(rec, name) for name in "abc"]
    s = Scheduler(*jobs, jobs_window=5)
    assert s.orchestrate(jobs_window=1) is True
    assert rec.events == ["start a", "end a", "start b", "end b", "start c", "end c"]
    assert s.jobs_window == 5
    rec.events.clear()
    assert s.run() is True  # the scheduler's own window again: all three at once
    assert rec.events[:3] == ["start a", "start b", "start c"]


def test_run_takes_the_same_keywords_positionally_too(rec):
    s = PureScheduler(Step(rec, "slow", gate="never"), timeout=30, jobs_window=2)
    assert s.run(0.02, 1) is False
    assert (s.timeout, s.jobs_window) == (30, 2)
    assert s.failed_time_out() == 0.02


def test_overrides_are_restored_when_the_run_raises(rec):
    s = Scheduler(Step(rec, "slow", gate="never"))
    with pytest.raises(SchedulerTimeoutError) as info:
        s.orchestrate(timeout=0.02, jobs_window=3)
    assert info.value.timeout == 0.02
    assert (s.timeout, s.jobs_window) == (None, None)


async def test_co_orchestrate_on_every_scheduler(rec):
    s = Scheduler(*[Step(rec, name) for name in "ab"], timeout=30)
    assert await s.co_orchestrate(jobs_window=1) is True
    assert rec.events == ["start a", "end a", "start b", "end b"]
    assert (s.timeout, s.jobs_window) == (30, None)


async def test_co_orchestrate_restores_when_cancelled(rec):
    s = PureScheduler(Step(rec, "slow", gate="never"), jobs_window=4)
    task = asyncio.ensure_future(s.co_orchestrate(timeout=60, jobs_window=1))
    await rec.wait_for("start slow")
    assert (s.timeout, s.jobs_window) == (60, 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (s.timeout, s.jobs_window) == (None, 4)


def test_engine_orchestrate_is_the_common_one(rec):
    assert Engine.orchestrate is PureScheduler.orchestrate
    assert Engine.co_orchestrate is PureScheduler.co_orchestrate
    e = Engine(Step(rec, "slow", gate="never"))
    assert e.orchestrate(timeout=0.02) is False  # an Engine returns False, never raises
    assert e.timeout is None and e.failed_time_out() == 0.02
