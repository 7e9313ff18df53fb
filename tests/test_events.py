"""The events of a run: who gets what, in which order, and what nobody pays for."""

from __future__ import annotations

import asyncio
import logging

import pytest

from asynciojobs import Job, PureScheduler, Scheduler, events
from asynciojobs.events import Event, JobEnded, JobStarted, Output, RunEnded, RunStarted


async def value(x: object) -> object:
    return x


async def boom() -> None:
    raise ValueError("boom\nsecond line")


async def forever() -> None:
    await asyncio.Event().wait()


def kinds(seen: list[Event]) -> list[str]:
    return [event.kind for event in seen]


async def test_a_run_emits_run_and_job_events_in_order() -> None:
    a = Job(value(1), label="a")
    b = Job(boom(), label="b", required=a, critical=False)
    sched = Scheduler(a, b)
    seen: list[Event] = []
    sched.subscribe(seen.append)
    assert await sched.co_run()
    assert kinds(seen) == ["run.started", "job.started", "job.ended", "job.started",
                           "job.ended", "run.ended"]
    ended = [e for e in seen if isinstance(e, JobEnded)]
    assert [(e.job, e.outcome) for e in ended] == [(a, "ok"), (b, "failed")]
    assert ended[1].reason == "ValueError: boom"
    assert isinstance(seen[-1], RunEnded) and seen[-1].outcome == "ok"
    assert seen[-1].reason is None
    # the times are the jobs' own
    assert ended[0].time == a.ended_at and a.duration is not None
    assert a.started_at is not None and a.started_at <= a.ended_at  # type: ignore[operator]


async def test_jobs_cancelled_by_a_timeout_end_cancelled() -> None:
    job = Job(forever(), label="stuck")
    sched = PureScheduler(job, timeout=0.05)
    seen: list[Event] = []
    sched.subscribe(seen.append)
    assert not await sched.co_run()
    ended = [e for e in seen if isinstance(e, JobEnded)]
    assert [(e.job, e.outcome) for e in ended] == [(job, "cancelled")]
    last = seen[-1]
    assert isinstance(last, RunEnded) and last.outcome == "timeout"
    assert last.reason and "timed out" in last.reason.lower()


async def test_nested_events_reach_the_outer_subscriber() -> None:
    inner_job = Job(value(2), label="inner job")
    inner = Scheduler(inner_job, label="inner")
    outer = Scheduler(inner)
    outer_seen: list[Event] = []
    inner_seen: list[Event] = []
    outer.subscribe(outer_seen.append)
    inner.subscribe(inner_seen.append)
    assert await outer.co_run()
    started = [e.job for e in outer_seen if isinstance(e, JobStarted)]
    assert started == [inner, inner_job]
    assert [e.job for e in inner_seen if isinstance(e, JobStarted)] == [inner_job]
    assert sum(isinstance(e, RunStarted) for e in outer_seen) == 2


async def test_nobody_listening_builds_nothing() -> None:
    inside: list[object] = []

    async def look() -> None:
        inside.append(events.emitting())
        inside.append(events.wants_output())

    assert await Scheduler(Job(look())).co_run()
    assert inside == [None, False]


async def test_output_goes_only_to_who_asked_for_it() -> None:
    plain: list[Event] = []
    with_output: list[Event] = []
    inside: list[bool] = []

    async def talk() -> None:
        inside.append(events.wants_output())
        events.emit(Output(job=None, node="n1", index=0, stream="stdout", data=b"hi\n"))

    sched = Scheduler(Job(talk()))
    sched.subscribe(plain.append)
    assert await sched.co_run()
    assert inside == [False]
    assert not any(isinstance(e, Output) for e in plain)
    sched = Scheduler(Job(talk()))
    sched.subscribe(with_output.append, output=True)
    assert await sched.co_run()
    assert inside == [False, True]
    assert [e.data for e in with_output if isinstance(e, Output)] == [b"hi\n"]


async def test_process_wide_subscription_and_unsubscribe() -> None:
    seen: list[Event] = []
    unsubscribe = events.subscribe(seen.append)
    try:
        assert await Scheduler(Job(value(1))).co_run()
    finally:
        unsubscribe()
    count = len(seen)
    assert count == 4
    assert await Scheduler(Job(value(1))).co_run()
    assert len(seen) == count


async def test_a_failing_subscriber_is_dropped_not_the_run(
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[Event] = []

    def bad(event: Event) -> None:
        calls.append(event)
        raise RuntimeError("subscriber bug")

    sched = Scheduler(Job(value(1)), Job(value(2)))
    sched.subscribe(bad)
    with caplog.at_level(logging.ERROR, logger="asynciojobs"):
        assert await sched.co_run()
    assert len(calls) == 1
    assert "dropped for this run" in caplog.text


async def test_debug_logging_is_a_subscriber(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="asynciojobs"):
        assert await Scheduler(Job(value(1), label="logged")).co_run()
    lines = [r.getMessage() for r in caplog.records if r.name == "asynciojobs"]
    assert any(line.startswith("job.ended") and "outcome=ok" in line for line in lines)
    assert any(line.startswith("run.started") for line in lines)


def test_sync_run_records_times() -> None:
    job = Job(value(3))
    assert Scheduler(job).run()
    assert job.duration is not None and job.duration >= 0


def test_diagnostics_are_log_records(caplog: pytest.LogCaptureFixture) -> None:
    """What the scheduler says on its own (a timeout here) is a WARNING of the
    asynciojobs logger: where logging is set up, it goes where the user says."""
    sched = PureScheduler(Job(forever(), label="stuck"), timeout=0.01)
    with caplog.at_level(logging.WARNING, logger="asynciojobs"):
        assert not sched.run()
    (record,) = [r for r in caplog.records if r.name == "asynciojobs"]
    assert record.levelno == logging.WARNING and "TIMED OUT" in record.getMessage()
