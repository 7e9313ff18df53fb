"""Text listings of a scheduler: ``list()``, ``stats()`` and the scheduler's repr.

Formats follow asynciojobs 0.21: one line per job, ``{id} {symbols} {indent}<Class
`label`> {result} requires={ids}``, nested schedulers opening with ``-> entries={..}``
and closing with an ``--end--`` line.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import graph

if TYPE_CHECKING:
    from .job import AbstractJob
    from .readiness import Readiness
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


def ids(jobs: Iterable[AbstractJob], conditions: dict[AbstractJob, Readiness] | None = None
        ) -> str:
    """``{1, 2}``: the ids of ``jobs``, in numeric order; a job met through a
    readiness (``conditions``) shows as ``3 when 'listening'``."""
    numbers = sorted((job.repr_id() for job in jobs), key=lambda i: (len(i), i))
    if conditions:
        shown = {job.repr_id(): f"{job.repr_id()} {cond.short()}"
                 for job, cond in conditions.items() if job in jobs}
        numbers = [shown.get(number, number) for number in numbers]
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


def repr_entries(scheduler: PureScheduler) -> str:
    """``entries={ids}``: the jobs with no requirement."""
    return "entries=" + ids(graph.make_plan(scheduler).entries)


def repr_exits(scheduler: PureScheduler) -> str:
    """``exits={ids}``: the jobs nothing requires, forever jobs excluded."""
    return "exits=" + ids(exit_jobs(graph.make_plan(scheduler)))


def print_list_safe(scheduler: PureScheduler, silence_done_jobs: bool = False) -> None:
    """Like ``list()`` but works on any graph, cycles included: insertion order and
    hierarchical ids (``.1``, ``.2`` at the top, ``2.1`` inside the nested ``.2``)."""
    names: dict[AbstractJob, str] = {}

    def name(sched: PureScheduler, prefix: str) -> None:
        for index, job in enumerate(sched.jobs, 1):
            names[job] = f"{prefix}.{index}"
            if job.is_scheduler:
                name(job, names[job].lstrip("."))  # type: ignore[arg-type]

    def walk(sched: PureScheduler) -> None:
        for job in sched.jobs:
            if silence_done_jobs and job.is_done() and not job.is_scheduler:
                continue
            required = [names.get(req, "??") for req in job._required or ()]
            requires = "requires={" + ", ".join(required) + "}" if required else ""
            print(f"{job.repr_short()} {names[job]} {job.repr_main()} {requires}")
            if job.is_scheduler:
                walk(job)  # type: ignore[arg-type]
                print(f"--end-- {names[job]}")

    name(scheduler, "")
    walk(scheduler)


def failed_jobs(scheduler: PureScheduler) -> list[AbstractJob]:
    """Jobs that raised, in listing order; a nested scheduler only when its
    exception is not already one of its own jobs' (a timeout, say)."""
    plans = graph.plan_tree(scheduler)
    graph.number_jobs(scheduler, plans)
    found: list[AbstractJob] = []

    def walk(sched: PureScheduler) -> set[int]:
        seen: set[int] = set()
        for job in plans[sched].order:
            inner = walk(job) if job.is_scheduler else set()  # type: ignore[arg-type]
            seen |= inner
            exc = job._exception
            if job.is_done() and exc is not None and id(exc) not in inner:
                found.append(job)
                seen.add(id(exc))
        return seen

    walk(scheduler)
    return found


def print_debrief(scheduler: PureScheduler, details: bool = False,
                  silence_done_jobs: bool = False) -> None:
    """``----- why``, the listing, every exception (critical ones framed, with their
    stack; an expected failure, see ``AbstractJob.failure_lines()``, with its own
    few lines instead), then one summary line: how many jobs done, failed,
    cancelled, never ran."""
    print(f"----- {scheduler.why()}")
    print_list(scheduler, details=details, silence_done_jobs=silence_done_jobs)
    failed = failed_jobs(scheduler)
    critical = [job for job in failed if job.is_critical()]
    if failed:
        print(f"===== {len(failed)} job(s) with an exception, including "
              f"{len(critical)} critical")
    for job in critical:
        title = f"CRITICAL JOB {job.repr_id()} {job.repr_short()} {job.repr_main()}"
        bar = "    " + "*" * 20
        print(f"{bar}\n{bar} BEG stack for {title}\n{bar}")
        exc = job._exception
        assert exc is not None
        for line in failure_lines(job, exc):
            print(f"    {line}")
        print(f"{bar}\n{bar} END stack for {title}\n{bar}")
    for job in failed:
        if not job.is_critical():
            exc = job._exception
            assert exc is not None
            print(f"non-critical: {job._get_text_label()}: exception {exc}")
            for line in (job.failure_lines(exc) or [])[1:]:
                print(f"    {line}")
    print(f"===== {summary(scheduler)}")


def failure_lines(job: AbstractJob, exc: BaseException) -> list[str]:
    """The lines that show ``exc``: the job's ``failure_lines()``, else the traceback."""
    lines = job.failure_lines(exc)
    if lines is not None:
        return lines
    return [line for chunk in traceback.format_exception(exc)
            for line in chunk.rstrip("\n").splitlines()]


OUTCOMES = ("done", "failed", "cancelled", "never ran")


def outcome(job: AbstractJob) -> str:
    """How a job ended: one of ``OUTCOMES``."""
    if job.is_done():
        return "failed" if job._exception is not None else "done"
    return "cancelled" if job.is_running() else "never ran"


def summary(scheduler: PureScheduler) -> str:
    """``6 jobs: 3 done, 1 failed, 1 cancelled, 1 never ran - <why>`` (leaf jobs)."""
    tally = dict.fromkeys(OUTCOMES, 0)
    total = 0
    for job in graph.iterate_jobs(scheduler):
        total += 1
        tally[outcome(job)] += 1
    counts = ", ".join(f"{n} {what}" for what, n in tally.items())
    return f"{total} jobs: {counts} - {scheduler.why()}"
