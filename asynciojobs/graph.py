"""The requirement graph of a scheduler: ordering, checks and numbering.

Everything here is linear in jobs + requirements: Kahn's algorithm with one
remaining-requirements counter per job, never a sweep until a fixed point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import CycleError, InvalidScenarioError
from .jobset import JobSet

if TYPE_CHECKING:
    from .job import AbstractJob
    from .readiness import Readiness
    from .scheduler import PureScheduler


@dataclass
class Plan:
    """The graph of one scheduler, ready to be run or walked.

    ``entries`` are the jobs without requirements (insertion order); ``remaining``
    counts the requirements of every other job; ``successors`` lists, for each job
    that has some, the jobs that require it (insertion order); ``order`` is a
    topological order (Kahn, first in first out). ``readiness`` lists, for each
    job that others require through a ``Readiness``, those (readiness, job) edges:
    counted in ``remaining`` but met when the readiness fires, not in ``successors``.
    """

    entries: list[AbstractJob] = field(default_factory=list)
    remaining: dict[AbstractJob, int] = field(default_factory=dict)
    successors: dict[AbstractJob, list[AbstractJob]] = field(default_factory=dict)
    order: list[AbstractJob] = field(default_factory=list)
    readiness: dict[AbstractJob, list[tuple[Readiness, AbstractJob]]] = field(
        default_factory=dict)


def make_plan(scheduler: PureScheduler) -> Plan:
    """Build the plan of ``scheduler``'s own jobs (not nested ones).

    Raises ``InvalidScenarioError`` when a job requires a job that is not in this
    scheduler, and ``CycleError`` (naming one cycle) when requirements loop.
    """
    members = scheduler.jobs._items
    plan = Plan()
    entries, remaining, successors = plan.entries, plan.remaining, plan.successors
    readiness = plan.readiness
    outside: list[AbstractJob] = []
    for job in members:
        jobset = job._required
        required = jobset._items if jobset is not None else None
        if not required:
            entries.append(job)
            continue
        conditions = job._conditions
        for req in required:
            if req not in members:
                outside.append(job)
            if conditions:
                condition = conditions.get(req)
                if condition is not None:
                    readiness.setdefault(req, []).append((condition, job))
                    continue
            follow = successors.get(req)
            if follow is None:
                successors[req] = [job]
            else:
                follow.append(job)
        remaining[job] = len(required)
    if outside:
        raise InvalidScenarioError(
            "jobs require jobs that are not in the same scheduler (see sanitize())", outside
        )
    counts = remaining.copy()
    order = plan.order
    order.extend(entries)
    index = 0
    while index < len(order):
        for succ in successors.get(order[index], ()):
            left = counts[succ] - 1
            counts[succ] = left
            if left == 0:
                order.append(succ)
        if readiness:
            for _, succ in readiness.get(order[index], ()):
                left = counts[succ] - 1
                counts[succ] = left
                if left == 0:
                    order.append(succ)
        index += 1
    if len(order) != len(members):
        stuck = {job for job, left in counts.items() if left > 0}
        raise CycleError(find_cycle(stuck))
    return plan


def find_cycle(stuck: set[AbstractJob]) -> list[AbstractJob]:
    """One cycle among ``stuck`` (jobs left over by Kahn), in requirement order."""
    # every stuck job has a stuck requirement: walk them until one comes back
    job = next(iter(stuck))
    seen: dict[AbstractJob, int] = {}
    path: list[AbstractJob] = []
    while job not in seen:
        seen[job] = len(path)
        path.append(job)
        job = next(req for req in job._required if req in stuck)  # type: ignore[union-attr]
    cycle = path[seen[job]:]
    cycle.reverse()  # requirement first: a -> b means b requires a
    return cycle


def topological_order(scheduler: PureScheduler) -> list[AbstractJob]:
    """``scheduler``'s own jobs, each after the jobs it requires (creation order otherwise)."""
    return make_plan(scheduler).order


def plan_tree(scheduler: PureScheduler) -> dict[PureScheduler, Plan]:
    """Plan ``scheduler`` and every nested scheduler (``make_plan`` raises for a cycle
    or a requirement outside a scheduler).

    Forever jobs are never a
    reason to refuse a scenario: one may end on its own (a capture stopped by a
    later ``pkill``, a nested scheduler) and then starts the jobs that require it.
    A run ends when its finite jobs are done; with none, when every forever job has
    ended; in both cases at its timeout at the latest.
    """
    plans: dict[PureScheduler, Plan] = {}

    def walk(sched: PureScheduler) -> None:
        plan = make_plan(sched)
        plans[sched] = plan
        for job in plan.order:
            if is_nested(job):
                walk(job)  # type: ignore[arg-type]

    walk(scheduler)
    return plans


def jobs_in_order(
    scheduler: PureScheduler, plans: dict[PureScheduler, Plan] | None = None
) -> list[AbstractJob]:
    """Every job of the tree in listing order: a topological order, each nested
    scheduler followed by its own jobs (``plans``: the tree's, when already made)."""
    found: list[AbstractJob] = []

    def walk(sched: PureScheduler) -> None:
        order = plans[sched].order if plans is not None else topological_order(sched)
        for job in order:
            found.append(job)
            if is_nested(job):
                walk(job)  # type: ignore[arg-type]

    walk(scheduler)
    return found


def number_jobs(
    scheduler: PureScheduler, plans: dict[PureScheduler, Plan] | None = None
) -> list[AbstractJob]:
    """Give every job, nested ones included, its listing id (``1``, ``01``...);
    returns them in that order.

    Ids follow ``jobs_in_order()``; a nested scheduler takes one id, then its own
    jobs follow it. Ids are zero-padded to the width of the total count.
    """
    jobs = jobs_in_order(scheduler, plans)
    width = len(str(len(jobs)))
    for counter, job in enumerate(jobs, 1):
        job._sched_id = f"{counter:0{width}d}"
    return jobs


def is_nested(job: AbstractJob) -> bool:
    """True for a nested scheduler (a scheduler that is also a job)."""
    return job.is_scheduler


def iterate_jobs(scheduler: PureScheduler, scan_schedulers: bool = False) -> Iterator[AbstractJob]:
    """Every leaf job, nested ones included; with ``scan_schedulers`` also each
    scheduler (``scheduler`` itself first, then each nested one before its jobs)."""
    if scan_schedulers:
        yield scheduler  # type: ignore[misc]
    for job in scheduler.jobs:
        if is_nested(job):
            yield from iterate_jobs(job, scan_schedulers)  # type: ignore[arg-type]
        else:
            yield job


def successors_map(scheduler: PureScheduler) -> dict[AbstractJob, list[AbstractJob]]:
    """For each job of ``scheduler``, the jobs of ``scheduler`` that require it."""
    members = scheduler.jobs
    found: dict[AbstractJob, list[AbstractJob]] = {job: [] for job in members}
    for job in members:
        for req in job._required or ():
            if req in members:
                found[req].append(job)
    return found


def predecessors(scheduler: PureScheduler, starts: Iterable[AbstractJob]) -> JobSet[AbstractJob]:
    """The jobs of ``scheduler`` that some job of ``starts`` requires directly."""
    members = scheduler.jobs
    return JobSet(req for job in starts for req in job._required or () if req in members)


def successors(scheduler: PureScheduler, starts: Iterable[AbstractJob]) -> JobSet[AbstractJob]:
    """The jobs of ``scheduler`` that directly require some job of ``starts``."""
    starts = set(starts)
    return JobSet(
        job for job in scheduler.jobs if any(req in starts for req in job._required or ())
    )


def closure(starts: Iterable[AbstractJob],
            neighbours: Callable[[AbstractJob], Iterable[AbstractJob]]) -> JobSet[AbstractJob]:
    """Every job reachable from ``starts`` through ``neighbours`` (starts excluded,
    unless reachable again); one visit per job."""
    found: JobSet[AbstractJob] = JobSet()
    todo = list(starts)
    while todo:
        for nxt in neighbours(todo.pop()):
            if nxt not in found:
                found.add(nxt)
                todo.append(nxt)
    return found


def predecessors_upstream(scheduler: PureScheduler,
                          starts: Iterable[AbstractJob]) -> JobSet[AbstractJob]:
    """Every job of ``scheduler`` that ``starts`` need, directly or not."""
    members = scheduler.jobs
    return closure(starts, lambda job: (r for r in job._required or () if r in members))


def successors_downstream(scheduler: PureScheduler,
                          starts: Iterable[AbstractJob]) -> JobSet[AbstractJob]:
    """Every job of ``scheduler`` that needs ``starts``, directly or not."""
    follow = successors_map(scheduler)
    return closure(starts, lambda job: follow.get(job, ()))


def sanitize(scheduler: PureScheduler, verbose: bool = False) -> bool:
    """Drop requirements on jobs outside each job's scheduler, nested ones included.

    Returns True when nothing had to be removed anywhere.
    """
    clean = True
    members = scheduler.jobs
    for job in members:
        required = job._required
        if required:
            outside = [req for req in required if req not in members]
            for req in outside:
                required.discard(req)
            if outside:
                clean = False
                if verbose:
                    where = getattr(scheduler, "label", None) or repr(scheduler)
                    print(f"********** WARNING: job {job!r} in {where} "
                          f"had {len(outside)} requirements removed")
        if is_nested(job) and not sanitize(job, verbose):  # type: ignore[arg-type]
            clean = False
    return clean


def bypass_and_remove(scheduler: PureScheduler, job: AbstractJob) -> None:
    """Remove ``job``; the jobs that required it now require what it required."""
    if job not in scheduler.jobs:
        raise ValueError(f"bypass_and_remove: {job.repr_main()} is not in this scheduler")
    for succ in successors(scheduler, [job]):
        succ.required.discard(job)
        succ.required.update(req for req in job._required or () if req is not succ)
    scheduler.remove(job)


def keep_only(scheduler: PureScheduler, remains: Iterable[AbstractJob]) -> None:
    """Keep only the jobs in ``remains`` (order kept), then ``sanitize()``."""
    keep = set(remains)
    for job in [job for job in scheduler.jobs if job not in keep]:
        scheduler.remove(job)
    sanitize(scheduler)


def keep_only_between(scheduler: PureScheduler, starts: Iterable[AbstractJob] | None = None,
                      ends: Iterable[AbstractJob] | None = None, keep_starts: bool = True,
                      keep_ends: bool = True) -> None:
    """Keep the jobs downstream of ``starts`` and upstream of ``ends`` (an empty
    side does not constrain), plus the starts and ends themselves if asked."""
    starts, ends = list(starts or ()), list(ends or ())
    keep = set(scheduler.jobs)
    if starts:
        keep &= set(successors_downstream(scheduler, starts))
    if ends:
        keep &= set(predecessors_upstream(scheduler, ends))
    if keep_starts:
        keep |= set(starts)
    if keep_ends:
        keep |= set(ends)
    keep_only(scheduler, keep)

