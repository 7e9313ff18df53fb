"""One run of one scheduler: start each job when its last requirement completes.

When a job completes, the remaining-requirements counter of each of its
successors is decremented and those that reach zero start: O(1) per
requirement, never a scan of the pending tasks. A job that others require
completes at the end of its own task (a thin wrapper); any other job through its
task's done callback, which needs no extra coroutine. The run owns
every task it creates; ``stop()`` cancels and awaits those still running.

A job that raises a ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``,
``SystemExit``, or one of your own) aborts the run whatever its criticality: every
job is cancelled and awaited, then the scheduler raises that exception again.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from collections.abc import Awaitable, Coroutine, Iterable
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from . import debug
from .events import Bus, JobEnded, JobStarted, logger
from .job import DONE, RUNNING, SCHEDULED
from .readiness import ReadinessTable

if TYPE_CHECKING:
    from .graph import Plan
    from .job import AbstractJob
    from .scheduler import PureScheduler

#: how long ``stop()`` waits for cancelled jobs to wind down: a bound, normally never
#: reached; it exceeds what stopping a remote command may take (apssh's ``WORST_STOP``,
#: 9 s against a server that does not answer), so that the commands are killed first
CANCEL_GRACE = 12.0

#: jobs that others require complete inline while fewer tasks than this are running
INLINE_BELOW = 64

# how a run ended
OK, CRITICAL, TIMEOUT, CANCELLED = "ok", "critical", "timeout", "cancelled"
#: a job raised a BaseException that is not an Exception: the scheduler re-raises it
ABORTED = "aborted"


def is_fatal(exc: BaseException) -> bool:
    """True for what no job may swallow: a BaseException that is not an Exception,
    other than a cancellation (a job cancelled from outside is a failure of that job)."""
    return not isinstance(exc, Exception | asyncio.CancelledError)


async def _raise(exc: BaseException) -> Any:
    raise exc


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _outside_cancel(exc: asyncio.CancelledError) -> asyncio.CancelledError:
    """A job cancelled by someone else than its scheduler: that is its failure."""
    return asyncio.CancelledError(
        "the job's task was cancelled from outside the scheduler"
    ).with_traceback(exc.__traceback__)


def one_line(exc: BaseException) -> str:
    """An exception in one line: its type and its message's first line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _not_awaitable(job: AbstractJob, got: object) -> TypeError:
    return TypeError(
        f"{job.repr_main()}: expected an awaitable to run, got {type(got).__name__} "
        "(is the function an async def?)"
    )


class Run:
    """The state of one ``co_run()``: counters, tasks, the window and the outcome."""

    def __init__(self, scheduler: PureScheduler, plan: Plan, parent: Run | None = None,
                 bus: Bus | None = None) -> None:
        self.scheduler = scheduler
        #: where this run's events go (None: nobody listens, none is built)
        self.bus = bus
        #: the run of the outermost scheduler (this one at the top)
        self.root: Run = parent.root if parent is not None else self
        self.loop = asyncio.get_running_loop()
        self.remaining = plan.remaining
        self.successors = plan.successors
        self.entries = plan.entries
        self.total = len(scheduler.jobs)
        self.finite_left = sum(1 for job in scheduler.jobs if not job.forever)
        self.all_left = self.total
        self.window = scheduler.jobs_window or 0
        self.ready: deque[AbstractJob] = deque()
        self.tasks: dict[asyncio.Task[Any], AbstractJob] = {}
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self.outcome: str | None = None
        self.failed_job: AbstractJob | None = None
        #: the first job that raised a fatal exception (see ``is_fatal``), even while stopping
        self.fatal_job: AbstractJob | None = None
        self.started = 0
        self.done = 0
        self.verbose = scheduler.verbose
        self.timer: asyncio.TimerHandle | None = None
        #: jobs done in the record a run resumes: completed without running
        self.skip: frozenset[AbstractJob] = frozenset()
        self.skipping: deque[AbstractJob] = deque()
        self.draining = False
        #: the edges met when a job fires a readiness (see readiness.py)
        self.readiness = ReadinessTable(self, plan.readiness)

    # ----- driving
    def start(self) -> None:
        """Start the entry jobs, or time out at once for a timeout of 0."""
        timeout = self.scheduler.timeout
        if timeout is not None and timeout <= 0:
            self.end(TIMEOUT)
            return
        if timeout is not None:
            self.timer = self.loop.call_later(timeout, self.end, TIMEOUT)
        for job in self.entries:
            self.schedule(job)
        self.fill()

    async def wait(self) -> str:
        """Wait until the run ends; returns how it ended."""
        await self.finished
        return self.outcome  # type: ignore[return-value]

    def end(self, outcome: str, job: AbstractJob | None = None) -> None:
        """Record how the run ends (the first reason wins) and wake ``wait()``."""
        if self.outcome is not None:
            return
        self.outcome = outcome
        self.failed_job = job
        if not self.finished.done():
            self.finished.set_result(None)

    async def stop(self) -> None:
        """Cancel every job still running and wait (a while) for them to finish."""
        if self.outcome is None:
            self.outcome = CANCELLED
        if self.timer is not None:
            self.timer.cancel()
        self.readiness.stop()
        self.ready.clear()
        if not self.tasks:
            return
        tasks = list(self.tasks)
        if self.bus is not None:
            now = time.time()
            for job in self.tasks.values():
                # a forever job stopped at the end of a run that went well is no failure
                outcome = "stopped" if job.forever and self.outcome == OK else "cancelled"
                self.bus.emit(JobEnded(job=job, outcome=outcome, time=now,
                                       duration=now - (job.started_at or now)))
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=CANCEL_GRACE)
        if pending:
            names = ", ".join(self.tasks[task].repr_main() for task in pending)
            self.scheduler._forced(f"jobs ignored cancellation for {CANCEL_GRACE}s: {names}")

    # ----- jobs
    def schedule(self, job: AbstractJob) -> None:
        """The job's requirements are met: start it, or queue it for a window slot."""
        if self.skip and job in self.skip:
            self.skipping.append(job)
            if not self.draining:
                self.drain_skipped()
            return
        job._state = SCHEDULED
        if self.window:
            self.ready.append(job)
        else:
            self.launch(job)

    def drain_skipped(self) -> None:
        """Complete the jobs a resumed run skips (done in its record), as their
        requirements are met, without running them; their readinesses fire. A loop,
        not a recursion: a chain of 10,000 skipped jobs is fine."""
        self.draining = True
        try:
            while self.skipping and self.outcome is None:
                job = self.skipping.popleft()
                job._state = RUNNING
                self.started += 1
                for readiness in list(self.readiness.by_source.get(job, ())):
                    readiness.fire()
                self.complete(job, None, None)
        finally:
            self.draining = False

    def fill(self) -> None:
        """Start queued jobs while the window has free slots."""
        ready, tasks, window = self.ready, self.tasks, self.window
        while ready and len(tasks) < window:
            self.launch(ready.popleft())

    def launch(self, job: AbstractJob) -> None:
        """Create the job's task."""
        if self.verbose:
            self.scheduler._feedback(job, "STARTING")
        try:
            coroutine = job._coroutine()
        except Exception as exc:
            coroutine = _raise(exc)
        if type(coroutine) is not CoroutineType:
            if inspect.isawaitable(coroutine):
                coroutine = _await(coroutine)
            else:
                coroutine = _raise(_not_awaitable(job, coroutine))
        job._state = RUNNING
        job.started_at = time.time()
        self.started += 1
        if self.bus is not None:
            self.bus.emit(JobStarted(job=job, time=job.started_at))
        if self.readiness.by_source:
            self.readiness.launched(job)
        if len(self.tasks) < INLINE_BELOW and job in self.successors:
            # completing inline, in the job's last step, starts its successors one
            # loop turn earlier than a done callback would; that matters when few
            # jobs run (a chain), not when many share each loop turn
            self.tasks[self.loop.create_task(self.drive(job, coroutine))] = job
        else:
            # no wrapper coroutine: 100k independent jobs cost what gather costs
            task = self.loop.create_task(coroutine)
            self.tasks[task] = job
            task.add_done_callback(self.on_task_done)

    async def drive(self, job: AbstractJob, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a job that others require, and complete it before the task ends."""
        try:
            result = await coroutine
        except asyncio.CancelledError as exc:
            self.tasks.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            if self.outcome is not None:
                raise  # cancelled by stop(): the job stays shown as running
            self.complete(job, None, _outside_cancel(exc))
        except BaseException as exc:  # KeyboardInterrupt included: the run decides
            self.tasks.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            self.complete(job, None, exc)
        else:
            self.tasks.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            self.complete(job, result, None)

    def on_task_done(self, task: asyncio.Task[Any]) -> None:
        """The done callback of a job that nothing requires."""
        job = self.tasks.pop(task)
        if task.cancelled():
            if self.outcome is None:
                self.complete(job, None, _outside_cancel(asyncio.CancelledError()))
            return  # else cancelled by stop(): the job stays shown as running
        exc = task.exception()
        self.complete(job, None if exc is not None else task.result(), exc)

    def complete(self, job: AbstractJob, result: Any, exc: BaseException | None) -> None:
        """Record a job's outcome, then start the jobs it unblocked."""
        if exc is None:
            job._result = result
        else:
            job._exception = exc
            if self.fatal_job is None and is_fatal(exc):
                self.fatal_job = job
        job._state = DONE
        job.ended_at = time.time()
        self.done += 1
        if self.bus is not None and job not in self.skip:
            self._job_ended(job, exc)
        if self.outcome is not None:
            return
        if exc is not None:
            self.job_failed(job, exc)
            if self.outcome is not None:
                return
        elif self.verbose:
            self.scheduler._feedback(job, "DONE")
        self.all_left -= 1
        if not job.forever:
            self.finite_left -= 1
            if self.finite_left == 0:
                self.end(OK)
                return
        elif self.all_left == 0:
            self.end(OK)
            return
        if self.readiness.by_source:
            self.readiness.completed(job)
            if self.outcome is not None:
                return
        follow = self.successors.get(job)
        if follow is not None:
            self.release(follow)
        elif self.window:
            self.fill()

    def _job_ended(self, job: AbstractJob, exc: BaseException | None) -> None:
        assert self.bus is not None
        if exc is None:
            outcome, why = "ok", None
        else:
            outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "failed"
            why = one_line(exc)
        self.bus.emit(JobEnded(job=job, outcome=outcome, reason=why,
                               time=job.ended_at or time.time(), duration=job.duration))

    def release(self, jobs: Iterable[AbstractJob]) -> None:
        """One requirement of each of ``jobs`` is met: those with none left start."""
        remaining = self.remaining
        for job in jobs:
            left = remaining[job] - 1
            remaining[job] = left
            if left == 0:
                self.schedule(job)
        if self.window:
            self.fill()

    def fail_unstarted(self, job: AbstractJob, exc: BaseException) -> None:
        """Fail a job that never started (a readiness it waited for never came)."""
        job._state = RUNNING
        self.started += 1
        self.complete(job, None, exc)

    def job_failed(self, job: AbstractJob, exc: BaseException) -> None:
        """A job raised: abort the run if it is critical, or if the exception is fatal."""
        critical = job.is_critical()
        if self.verbose:
            self.scheduler._feedback(job, "RAISED EXC.")
        if debug.DEBUG:
            logger.warning("asynciojobs: %s raised:", job.repr_main(), exc_info=exc)
        if is_fatal(exc):
            self.end(ABORTED, job)
        elif critical:
            self.end(CRITICAL, job)

    def stats(self) -> str:
        """``D + R + I = N`` counts from the run's counters (O(1))."""
        done, started = self.done, self.started
        return f"{done}D + {started - done}R + {self.total - started}I = {self.total}"
