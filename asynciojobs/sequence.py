"""Sequence: a builder that chains jobs, each requiring the previous one."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import closing
from .job import AbstractJob, flatten_jobs

if TYPE_CHECKING:
    from .scheduler import PureScheduler


class Sequence:
    """Jobs that run one after the other; not a job itself.

    Items may be jobs, other sequences (flattened), or ``None`` (skipped); anything
    else raises ``TypeError``. Given as a requirement, a sequence stands for its
    last job at that moment; given to a scheduler, for all its jobs.
    """

    def __init__(
        self, *sequences_or_jobs: Any, required: Any = None,
        scheduler: PureScheduler | None = None,
    ) -> None:
        self.jobs: list[AbstractJob] = flatten_jobs(sequences_or_jobs, "Sequence()")
        self.scheduler = scheduler
        for previous, job in itertools.pairwise(self.jobs):
            job.requires(previous)
        if required is not None:
            self.requires(required)
        if scheduler is not None:
            scheduler.update(self.jobs)

    def as_requirement(self) -> AbstractJob | None:
        """The job a requirement on this sequence means: its current last job."""
        return self.jobs[-1] if self.jobs else None

    def append(self, *sequences_or_jobs: Any) -> Sequence:
        """Add jobs at the end; the first new one requires the current last one."""
        new = flatten_jobs(sequences_or_jobs, "Sequence.append()")
        previous = self.as_requirement()
        for job in new:
            if previous is not None:
                job.requires(previous)
            previous = job
        self.jobs.extend(new)
        if self.scheduler is not None:
            self.scheduler.update(new)
        return self

    def requires(self, *requirements: Any, remove: bool = False) -> Sequence:
        """Add requirements to the first job (no-op on an empty sequence)."""
        if self.jobs:
            self.jobs[0].requires(*requirements, remove=remove)
        return self

    def close_idle_jobs(self) -> None:
        """Close the jobs that never ran: outside an event loop, their ``co_close()``
        awaited on the thread's loop; inside one, their ``close()`` at once."""
        closing.close_jobs(job for job in self.jobs if job.is_idle())

    async def co_close_idle_jobs(self) -> None:
        """Await the ``co_close()`` of the jobs that never ran."""
        await closing.co_close_jobs(job for job in self.jobs if job.is_idle())

    def __iter__(self) -> Iterator[AbstractJob]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)

    def __repr__(self) -> str:
        return f"Sequence({len(self.jobs)} jobs)"
