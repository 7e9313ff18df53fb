"""Text listings of a scheduler: ``list()``, ``stats()`` and the scheduler's repr.

Formats follow asynciojobs 0.21: one line per job, ``{id} {symbols} {indent}<Class
`label`> {result} requires={ids}``, nested schedulers opening with ``-> entries={..}``
and closing with an ``--end--`` line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import graph

if TYPE_CHECKING:
    from .job import AbstractJob
    from .scheduler import PureScheduler


def counts(scheduler: PureScheduler) -> tuple[int, int, int, int]:
    """(done, running, idle, total) over the scheduler's own jobs, as 0.21 counts them."""
    done = started = 0
    for job in scheduler.jobs:
        if job.is_running():
            started += 1
        if job.is_done():
            done += 1
    total = len(scheduler.jobs)
    return done, started - done, total - started, total


def stats(scheduler: PureScheduler) -> str:
    """``2D + 3R + 4I = 9``."""
    done, running, idle, total = counts(scheduler)
    return f"{done}D + {running}R + {idle}I = {total}"


def scheduler_repr(scheduler: PureScheduler) -> str:
    """``Scheduler with 2 done + 3 ongoing + 4 idle = 9 job(s)``."""
    done, running, idle, total = counts(scheduler)
    return (
        f"{type(scheduler).__name__} with {done} done + {running} ongoing + "
        f"{idle} idle = {total} job(s)"
    )


def ids(jobs: Iterable[AbstractJob]) -> str:
    """``{1, 2}``: the ids of ``jobs``, in numeric order."""
    numbers = sorted((job.repr_id() for job in jobs), key=lambda i: (len(i), i))
    return "{" + ", ".join(numbers) + "}"


def print_list(
    scheduler: PureScheduler, details: bool = False, silence_done_jobs: bool = False
) -> None:
    """Number the jobs, then print one line per job (see the module docstring)."""
    plans = graph.plan_tree(scheduler)
    graph.number_jobs(scheduler, plans)
    for line in list_lines(scheduler, plans, details, silence_done_jobs):
        print(line)


def list_lines(
    scheduler: PureScheduler, plans: dict[PureScheduler, graph.Plan],
    details: bool, silence_done_jobs: bool, depth: int = 0,
) -> list[str]:
    """The lines of ``list()`` for ``scheduler`` at nesting ``depth``."""
    lines: list[str] = []
    indent = ">" * depth + " " if depth else ""
    for job in plans[scheduler].order:
        nested = job.is_scheduler
        if silence_done_jobs and job.is_done() and not nested:
            continue
        line = (
            f"{job.repr_id()} {job.repr_short()} {indent}{job.repr_main()} "
            f"{job.repr_result()} {job.repr_requires()}"
        )
        if nested:
            sub = plans[job]  # type: ignore[index]
            lines.append(f"{line} -> entries={ids(sub.entries)}")
        else:
            lines.append(line)
        if details:
            text = job.details()
            if text is not None:
                lines.append(text)
        if nested:
            lines.extend(list_lines(job, plans, details, silence_done_jobs, depth + 1))  # type: ignore[arg-type]
            lines.append(
                f"{job.repr_id()} --end-- {'<' * (depth + 1)} {job.repr_main()} "
                f"exits={ids(exit_jobs(plans[job]))}"  # type: ignore[index]
            )
    return lines


def exit_jobs(plan: graph.Plan) -> list[AbstractJob]:
    """The jobs nothing requires, forever jobs excluded."""
    return [job for job in plan.order if job not in plan.successors and not job.forever]
