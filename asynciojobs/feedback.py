"""What a scheduler says as it runs: the ``verbose`` lines on stdout (0.21's format)
and the lines a user must see (a timeout, an emergency exit), which are WARNINGs of
the ``asynciojobs`` logger: with no logging set up, Python prints them on stderr
as they are; set up, they go where the user says."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .runloop import CRITICAL, TIMEOUT
from .watch import Watch

if TYPE_CHECKING:
    from .job import AbstractJob
    from .runloop import Run
    from .scheduler import PureScheduler

logger = logging.getLogger("asynciojobs")


def feedback(scheduler: PureScheduler, job: AbstractJob | None, message: str) -> None:
    """A ``verbose`` line: the time, the counts, then ``message`` (about ``job``)."""
    if scheduler.watch is not None:
        scheduler.watch.print_elapsed()
    else:
        Watch.print_wall_clock()
    run = scheduler._run
    stats = run.stats() if run is not None else scheduler.stats()
    if job is None:
        print(f"SCHEDULER {stats}: {message}")
    else:
        print(f"{stats} {message:8s}: {job.repr_id()} {job!r}")


def forced(scheduler: PureScheduler, message: str) -> None:
    """A line the user must see: ``verbose`` feedback, else a WARNING."""
    if scheduler.verbose:
        feedback(scheduler, None, message)
    else:
        logger.warning("asynciojobs: %s: %s", scheduler._name(), message)


def report_end(scheduler: PureScheduler, run: Run) -> None:
    """Say how ``run`` ended when it did not end well (or when verbose)."""
    if run.outcome == TIMEOUT:
        forced(scheduler, f"TIMED OUT after {scheduler.timeout}s ({run.stats()})")
    elif run.outcome == CRITICAL and run.failed_job is not None:
        job = run.failed_job
        exc = job._exception
        forced(scheduler, f"emergency exit: critical job {job.repr_id()} {job.repr_main()} "
                          f"raised {type(exc).__name__}: {exc}")
    elif scheduler.verbose:
        feedback(scheduler, None, "scheduler is shutting down...")
