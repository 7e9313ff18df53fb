"""The exceptions of asynciojobs: one base class, subclasses that carry their data.

Each exception builds its own one-line message from what it carries, so that a
caller can print ``str(exc)`` and a program can look at the attributes.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .job import AbstractJob


def _names(jobs: Iterable[AbstractJob], limit: int = 8) -> str:
    """Name a few jobs for a message: their ids when numbered, and their labels."""
    jobs = list(jobs)
    shown = [job.repr_main() for job in jobs[:limit]]
    if len(jobs) > limit:
        shown.append(f"... ({len(jobs) - limit} more)")
    return ", ".join(shown)


class SchedulerError(Exception):
    """Base class of every error raised by asynciojobs itself."""


class InvalidScenarioError(SchedulerError, ValueError):
    """A scenario that cannot run as described; raised before any job starts.

    ``jobs`` holds the jobs at fault, ``reason`` says what is wrong with them.
    """

    def __init__(self, reason: str, jobs: Iterable[AbstractJob] = ()) -> None:
        self.reason = reason
        self.jobs = list(jobs)
        message = reason if not self.jobs else f"{reason}: {_names(self.jobs)}"
        super().__init__(message)


class CycleError(InvalidScenarioError):
    """The requirements form at least one cycle; ``jobs`` is one such cycle, in order."""

    def __init__(self, jobs: Iterable[AbstractJob]) -> None:
        jobs = list(jobs)
        super().__init__("requirements form a cycle", jobs)

    def __str__(self) -> str:
        names = [job.repr_main() for job in self.jobs]
        return f"{self.reason}: {' -> '.join([*names, names[0]])}" if names else self.reason


class SchedulerTimeoutError(SchedulerError, TimeoutError):
    """A critical ``Scheduler`` did not complete within its ``timeout``."""

    def __init__(self, timeout: float, label: object = None) -> None:
        self.timeout = timeout
        self.label = label
        where = f" `{label}`" if label is not None else ""
        super().__init__(f"critical scheduler{where} took too long (timeout {timeout}s)")


class JobNotFinishedError(SchedulerError, ValueError):
    """``result()`` was asked of a job that has not finished."""

    def __init__(self, job: AbstractJob) -> None:
        self.job = job
        super().__init__(f"job not finished: {job.repr_main()}")


class JobReuseError(SchedulerError, RuntimeError):
    """A ``Job`` built from a coroutine object was asked to run a second time."""

    def __init__(self, job: AbstractJob) -> None:
        self.job = job
        super().__init__(
            f"{job.repr_main()} was built from a coroutine object, which runs only once; "
            "build it from the coroutine function instead: Job(func, *args)"
        )


class SignalExit(SystemExit):
    """SIGTERM or SIGHUP stopped a synchronous run (``Scheduler.run()``).

    Raised once the run was cancelled and its jobs awaited (remote commands
    killed). ``signum`` is the signal; ``code`` is ``128 + signum``, so that a
    script that does not catch it exits quietly with that status (143 for
    SIGTERM, 129 for SIGHUP), as a shell reports a process killed by it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(128 + self.signum)

    def __str__(self) -> str:
        try:
            name = signal.Signals(self.signum).name
        except ValueError:
            name = f"signal {self.signum}"
        return f"stopped by {name}"
