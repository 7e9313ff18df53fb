"""The end of jobs: shutting them down after a run, closing them when they are done with.

``co_shutdown()`` is awaited once per run, for every job, when its scheduler ends.
Closing releases what a job holds (an ssh job: its node's connection) and is
asked for by the user: ``close()`` is synchronous and immediate (it may drop a
connection rather than close it politely) and callable anywhere; ``co_close()``
is awaited and polite. The schedulers' and sequences' ``close_*_jobs()`` work from
inside a running event loop (each job's ``close()``, at once) and outside one
(every ``co_close()`` on the thread's loop, awaited).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .graph import iterate_jobs
from .loop import in_running_loop, run_in_thread_loop
from .runloop import CANCEL_GRACE

if TYPE_CHECKING:
    from .job import AbstractJob
    from .scheduler import PureScheduler

# tasks of legacy asynchronous ``close()`` methods started from a running loop
_closing: set[asyncio.Task[Any]] = set()


def leaf_jobs(scheduler: PureScheduler, idle_only: bool) -> list[AbstractJob]:
    """The leaf jobs of ``scheduler`` (nested ones included), only idle ones if asked."""
    return [job for job in iterate_jobs(scheduler) if not idle_only or job.is_idle()]


def close_now(job: Any) -> None:
    """Call ``job.close()``; a legacy ``async def close()`` is run as a task (in a
    running loop) or to completion on the thread's loop (outside one), never leaked."""
    close = getattr(job, "close", None)
    if close is None:
        return
    result = close()
    if not inspect.iscoroutine(result):
        return
    if in_running_loop():
        task = asyncio.get_running_loop().create_task(result)
        _closing.add(task)
        task.add_done_callback(_closing.discard)
    else:
        run_in_thread_loop(result)


async def co_close_jobs(jobs: Iterable[Any],
                        report: Callable[[str], None] | None = None) -> None:
    """Await every job's ``co_close()`` concurrently; an error is reported, not raised."""
    jobs = list(jobs)
    results = await asyncio.gather(*(job.co_close() for job in jobs), return_exceptions=True)
    for job, result in zip(jobs, results, strict=True):
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            if report is not None:
                name = job.repr_main() if hasattr(job, "repr_main") else repr(job)
                report(f"closing {name} raised {type(result).__name__}: {result}")


def close_jobs(jobs: Iterable[Any], report: Callable[[str], None] | None = None) -> None:
    """Close ``jobs`` from synchronous code: inside a running loop, each job's
    ``close()`` at once; outside one, every ``co_close()`` awaited on the thread's loop."""
    jobs = list(jobs)
    if not jobs:
        return
    if in_running_loop():
        for job in jobs:
            close_now(job)
    else:
        run_in_thread_loop(co_close_jobs(jobs, report))


async def co_shutdown_jobs(scheduler: PureScheduler) -> bool:
    """Await the ``co_shutdown()`` of the scheduler's jobs that have one, bounded by
    its ``shutdown_timeout``; True when they all finished in time."""
    jobs = [job for job in scheduler.jobs if job._wants_shutdown()]
    if not jobs:
        return True
    loop = asyncio.get_running_loop()
    tasks = {loop.create_task(job.co_shutdown()): job for job in jobs}
    done, pending = await asyncio.wait(tasks, timeout=scheduler.shutdown_timeout)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            scheduler._forced(
                f"shutdown of {tasks[task].repr_main()} raised {type(exc).__name__}: {exc}"
            )
    if not pending:
        return True
    names = ", ".join(tasks[task].repr_main() for task in pending)
    scheduler._forced(f"shutdown timed out after {scheduler.shutdown_timeout}s: {names}")
    for task in pending:
        task.cancel()
    await asyncio.wait(pending, timeout=CANCEL_GRACE)
    return False
