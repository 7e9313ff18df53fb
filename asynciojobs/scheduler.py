"""PureScheduler and Scheduler: hold jobs and run them in requirement order.

A scheduler is a nursery: it owns every task it starts, cancels them all when it
ends, times out, aborts on a critical failure or is itself cancelled, and only
returns once they have finished. ``Scheduler`` is also a job, so it nests.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .record import Record

from . import closing, debug, events, feedback, graph, listing
from .errors import InvalidScenarioError, SchedulerTimeoutError
from .job import AbstractJob, Job, flatten_jobs
from .jobset import JobSet
from .loop import run_in_thread_loop
from .runloop import ABORTED, CANCELLED, CRITICAL, OK, TIMEOUT, Run
from .watch import Watch

# the run of the enclosing scheduler, seen by a nested scheduler's task
_enclosing_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "asynciojobs_run", default=None
)


def outermost_run() -> object | None:
    """An object standing for the outermost scheduler run in progress, None outside.

    Jobs use it to remember things (a failed connection, say) for the rest of the
    whole run, nested schedulers included, and to forget them at the next run.
    """
    run = _enclosing_run.get()
    return run.root if run is not None else None


class PureScheduler:
    """A set of jobs with requirements, run with ``run()`` or ``await co_run()``.

    ``jobs_window`` caps how many jobs run at once (None or 0: no cap);
    ``timeout`` bounds the whole run in seconds (None: no bound; 0: no time at
    all); ``shutdown_timeout`` bounds the jobs' ``co_shutdown()`` (None: no
    bound); ``watch`` timestamps the ``verbose`` feedback.

    Jobs whose ``critical`` is None count as critical here; a critical job that
    raises aborts the run, which then returns False.
    """

    is_scheduler = False

    def __init__(
        self,
        *jobs_or_sequences: Any,
        jobs_window: int | None = None,
        timeout: float | None = None,
        shutdown_timeout: float | None = 1,
        watch: Watch | None = None,
        verbose: bool = False,
    ) -> None:
        self.jobs: JobSet[AbstractJob] = JobSet()
        self.jobs_window = jobs_window
        self.timeout = timeout
        self.shutdown_timeout = shutdown_timeout
        self.watch = watch
        self.verbose = verbose
        self._outcome: str | None = None
        #: the timeout of the last run (``orchestrate(timeout=)`` may differ from ``timeout``)
        self._run_timeout: float | None = None
        self._failed_job: AbstractJob | None = None
        self._did_shutdown = False
        self._run: Run | None = None
        self._subscribers: list[tuple[events.Subscriber, bool]] = []
        #: the jobs the next run completes without running them (see resume.py)
        self._skip: frozenset[AbstractJob] = frozenset()
        self.update(jobs_or_sequences)

    # ----- the container
    def add(self, job: Any) -> Any:
        """Add a job (or a Sequence's jobs); returns its argument."""
        for one in flatten_jobs([job], f"{type(self).__name__}.add()"):
            self._add(one)
        return job

    def update(self, jobs: Any) -> PureScheduler:
        """Add jobs (any nesting of jobs, sequences, lists); returns ``self``."""
        for job in flatten_jobs(jobs, f"{type(self).__name__}.update()"):
            self._add(job)
        return self

    def _add(self, job: AbstractJob) -> None:
        if job is self:
            raise ValueError(f"{type(self).__name__}.add(): a scheduler cannot contain itself")
        self.jobs.add(job)
        job.scheduler = self

    def remove(self, job: AbstractJob) -> PureScheduler:
        """Remove a job (``KeyError`` if absent); returns ``self``."""
        self.jobs.remove(job)
        if job.scheduler is self:
            job.scheduler = None
        return self

    def __len__(self) -> int:
        return len(self.jobs)

    def __iter__(self) -> Iterator[AbstractJob]:
        return iter(self.jobs)

    def default_critical(self) -> bool:
        """How this scheduler treats jobs whose ``critical`` is None: as critical."""
        return True

    # ----- events
    def subscribe(self, callback: events.Subscriber, *,
                  output: bool = False) -> Callable[[], None]:
        """Deliver the events of this scheduler's runs to ``callback`` (``Output``
        too with ``output``; see ``asynciojobs.events``); returns a function that
        unsubscribes. Nested schedulers' events come too."""
        return events.add_subscriber(self._subscribers, callback, output)

    # ----- running
    async def co_run(self) -> bool:
        """Run the jobs; True when every finite job completed with no critical failure.

        Raises ``InvalidScenarioError`` before starting anything when the scenario
        cannot be run (a cycle, a job outside this scheduler). Forever jobs are not
        waited for; with no finite job at all, the run ends when every forever job
        has ended on its own (or at the timeout). A job raising a
        ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``,
        ``SystemExit``...) aborts the run: every job is cancelled and awaited, then
        that exception is raised again here.
        """
        parent = _enclosing_run.get()
        plan = self._prepare(nested=parent is not None)
        if not self.jobs:
            return True
        bus = events.bus_for_run(self._subscribers)
        run = Run(self, plan, parent, bus)
        run.skip = self._skip if parent is None else parent.root.skip
        self._run = run
        loop = run.loop
        if debug.DEBUG:
            loop.set_debug(True)
        token = _enclosing_run.set(run)
        bus_token = events._current.set(bus)
        try:
            if self.verbose:
                self._feedback(None, f"entering co_run() with {len(self.jobs)} jobs")
            if bus is not None:
                bus.emit(events.RunStarted(scheduler=self))
            run.start()
            await run.wait()
        finally:
            _enclosing_run.reset(token)
            await run.stop()
            self._outcome = run.outcome
            self._run_timeout = self.timeout
            self._failed_job = run.failed_job
            feedback.report_end(self, run)
            self._run = None
            await self.co_shutdown()
            if bus is not None:
                outcome = run.outcome or CANCELLED
                bus.emit(events.RunEnded(scheduler=self, outcome=outcome,
                                         reason=None if outcome == OK else self.why()))
            events._current.reset(bus_token)
        if run.fatal_job is not None and run.fatal_job._exception is not None:
            raise run.fatal_job._exception
        return run.outcome == OK

    def _prepare(self, nested: bool) -> graph.Plan:
        """Check the scenario (the whole tree at the top) and forget the last run."""
        if nested:
            plan = graph.make_plan(self)
            plans = {self: plan}
        else:
            plans = graph.plan_tree(self)
            plan = plans[self]
            if self._subscribers or events.listened():
                graph.number_jobs(self, plans)  # the ids its events show, once per run
        reused = [
            job for sched in plans for job in sched.jobs
            if isinstance(job, Job) and job._reuse_error()
        ]
        if reused:
            raise InvalidScenarioError(
                "jobs built from a coroutine object already ran; build them from the "
                "coroutine function to run again: Job(func, *args)", reused
            )
        for job in self.jobs:
            job._reset()
        self._outcome = None
        self._failed_job = None
        self._did_shutdown = False
        return plan

    def run(self, timeout: float | None = None, jobs_window: int | None = None, *,
            record: str | Path | Record | None = None,
            resume: str | Path | None = None) -> bool:
        """Run synchronously on this thread's event loop (kept between calls).

        ``timeout`` and ``jobs_window`` (the arguments of asynciojobs before 0.10),
        when not None, replace the scheduler's own for this run only; ``record``
        keeps the run in a directory, ``resume`` goes on with a recorded run: see
        ``co_orchestrate()``.
        """
        return run_in_thread_loop(
            self.co_orchestrate(timeout, jobs_window, record=record, resume=resume))

    orchestrate = run

    async def co_orchestrate(
        self, timeout: float | None = None, jobs_window: int | None = None, *,
        record: str | Path | Record | None = None, resume: str | Path | None = None,
    ) -> bool:
        """``co_run()``, with ``timeout`` and ``jobs_window``, when not None, in place
        of the scheduler's own for this run; both are restored however it ends.

        ``record``: a directory under which this run is kept in a new directory of
        its own (see ``asynciojobs.record``), or a ``Record`` made by the caller
        (then ``record.path`` says where). ``resume``: a record of an earlier run of
        the same jobs: the jobs done there are not run again (see
        ``asynciojobs.resume``), and this run is added to that record."""
        unsubscribe = None
        if record is not None or resume is not None:
            from .resume import keeper

            unsubscribe = self.subscribe(keeper(self, record, resume), output=True)
        saved = self.timeout, self.jobs_window
        if timeout is not None:
            self.timeout = timeout
        if jobs_window is not None:
            self.jobs_window = jobs_window
        try:
            return await self.co_run()
        finally:
            self.timeout, self.jobs_window = saved
            self._skip = frozenset()
            if unsubscribe is not None:
                unsubscribe()

    async def co_shutdown(self) -> bool | None:
        """Await every job's ``co_shutdown()``, at most once per run.

        Returns True when they all finished within ``shutdown_timeout``, False when
        some had to be cancelled, None when this run's shutdown already happened.
        """
        if self._did_shutdown:
            return None
        self._did_shutdown = True
        return await closing.co_shutdown_jobs(self)

    def shutdown(self) -> bool | None:
        """Synchronous ``co_shutdown()``."""
        return run_in_thread_loop(self.co_shutdown())

    # ----- outcome
    def failed_critical(self) -> bool:
        """True when the last run was aborted by a critical job's exception."""
        return self._outcome == CRITICAL

    def failed_time_out(self) -> float | bool:
        """False, or the timeout (True for a timeout of 0) when the last run timed out."""
        if self._outcome != TIMEOUT:
            return False
        return self._run_timeout if self._run_timeout else True

    def why(self) -> str:
        """Why the last run ended, in words."""
        if self._outcome == TIMEOUT:
            return f"TIMED OUT after {self._run_timeout}s"
        if self._outcome == CRITICAL:
            return "a CRITICAL job has raised an exception"
        if self._outcome == CANCELLED:
            return "CANCELLED from outside"
        if self._outcome == ABORTED:
            job = self._failed_job
            name = type(job._exception).__name__ if job is not None else "an exception"
            return f"ABORTED: a job raised {name}"
        return "FINE"

    # ----- feedback
    def _name(self) -> str:
        return type(self).__name__

    def _feedback(self, job: AbstractJob | None, message: str) -> None:
        feedback.feedback(self, job, message)

    def _forced(self, message: str) -> None:
        feedback.forced(self, message)

    # ----- listings (see listing.py)
    def stats(self) -> str:
        """``2D + 3R + 4I = 9``: done, running (or cancelled), idle, total."""
        return listing.stats(self)

    def __repr__(self) -> str:
        return listing.scheduler_repr(self)

    def list(self, details: bool = False, silence_done_jobs: bool = False) -> None:
        """Print one line per job, in topological order (nested jobs indented)."""
        listing.print_list(self, details=details, silence_done_jobs=silence_done_jobs)

    def list_safe(self, silence_done_jobs: bool = False) -> None:
        """Like ``list()``, in insertion order, and working even with cycles."""
        listing.print_list_safe(self, silence_done_jobs=silence_done_jobs)

    def debrief(self, details: bool = False, silence_done_jobs: bool = False) -> None:
        """Why the run ended, the listing, every exception, and a summary line."""
        listing.print_debrief(self, details=details, silence_done_jobs=silence_done_jobs)

    def repr_entries(self) -> str:
        """``entries={ids}``."""
        return listing.repr_entries(self)

    def repr_exits(self) -> str:
        """``exits={ids}`` (forever jobs excluded)."""
        return listing.repr_exits(self)

    # ----- the graph (see graph.py)
    def topological_order(self) -> Iterator[AbstractJob]:
        """This scheduler's own jobs, each after its requirements."""
        yield from graph.topological_order(self)

    def check_cycles(self) -> bool:
        """True when the requirements, nested schedulers included, are sound."""
        try:
            graph.plan_tree(self)
        except InvalidScenarioError as exc:
            if self.verbose:
                print(f"check_cycles failed {exc}")
            return False
        return True

    def sanitize(self, verbose: bool | None = None) -> bool:
        """Drop requirements on jobs outside the scheduler (recursively); True if clean."""
        return graph.sanitize(self, self.verbose if verbose is None else verbose)

    def entry_jobs(self) -> Iterator[AbstractJob]:
        """The jobs with no requirement."""
        return (job for job in self.jobs if not job._required)

    def exit_jobs(self, *, discard_forever: bool = True,
                  compute_backlinks: bool = True) -> Iterator[AbstractJob]:
        """The jobs that no job requires (forever ones left out by default)."""
        follow = graph.successors_map(self)
        return (job for job in self.jobs
                if not follow[job] and not (discard_forever and job.forever))

    def predecessors(self, *starts: AbstractJob) -> JobSet[AbstractJob]:
        """The jobs that ``starts`` require directly."""
        return graph.predecessors(self, starts)

    def successors(self, *starts: AbstractJob,
                   compute_backlinks: bool = True) -> JobSet[AbstractJob]:
        """The jobs that directly require one of ``starts``."""
        return graph.successors(self, starts)

    def predecessors_upstream(self, *starts: AbstractJob) -> JobSet[AbstractJob]:
        """Every job that ``starts`` need, directly or not."""
        return graph.predecessors_upstream(self, starts)

    def successors_downstream(self, *starts: AbstractJob,
                              compute_backlinks: bool = True) -> JobSet[AbstractJob]:
        """Every job that needs one of ``starts``, directly or not."""
        return graph.successors_downstream(self, starts)

    def bypass_and_remove(self, job: AbstractJob) -> None:
        """Remove ``job``, its successors inheriting its requirements."""
        graph.bypass_and_remove(self, job)

    def keep_only(self, remains: Iterable[AbstractJob]) -> None:
        """Keep only ``remains``, then ``sanitize()``."""
        graph.keep_only(self, remains)

    def keep_only_between(self, *, starts: Iterable[AbstractJob] | None = None,
                          ends: Iterable[AbstractJob] | None = None,
                          keep_starts: bool = True, keep_ends: bool = True) -> None:
        """Keep the jobs between ``starts`` and ``ends``, then ``sanitize()``."""
        graph.keep_only_between(self, starts, ends, keep_starts, keep_ends)

    def iterate_jobs(self, scan_schedulers: bool = False) -> Iterator[AbstractJob]:
        """Every leaf job, nested ones included (and the schedulers if asked)."""
        return graph.iterate_jobs(self, scan_schedulers)

    def close_idle_jobs(self) -> None:
        """Close the leaf jobs that never ran (see ``close_all_jobs()``)."""
        closing.close_jobs(closing.leaf_jobs(self, idle_only=True), self._forced)

    def close_all_jobs(self) -> None:
        """Close every leaf job: outside an event loop, their ``co_close()`` awaited on
        the thread's loop; inside one, their ``close()`` at once."""
        closing.close_jobs(closing.leaf_jobs(self, idle_only=False), self._forced)

    async def co_close_idle_jobs(self) -> None:
        """Await the ``co_close()`` of the leaf jobs that never ran."""
        await closing.co_close_jobs(closing.leaf_jobs(self, idle_only=True), self._forced)

    async def co_close_all_jobs(self) -> None:
        """Await the ``co_close()`` of every leaf job (concurrently)."""
        await closing.co_close_jobs(closing.leaf_jobs(self, idle_only=False), self._forced)

    # ----- pictures (see dot.py)
    def dot_format(self, show_outcome: bool = False) -> str:
        """The DOT text of the graph; ``show_outcome`` fills jobs by how they ended."""
        from . import dot

        return dot.dot_format(self, show_outcome)

    def export_as_dotfile(self, filename: str | Path, show_outcome: bool = False) -> str:
        """Write the DOT text to ``filename``."""
        from . import dot

        return dot.export_as_dotfile(self, filename, show_outcome)

    save_as_dotfile = export_as_dotfile
    store_as_dotfile = export_as_dotfile

    def export_as_graphic(self, filename: str | Path, suffix: str,
                          show_outcome: bool = False) -> str:
        """Write ``{filename}.dot`` and ``{filename}.{suffix}`` with graphviz's ``dot``."""
        from . import dot

        return dot.export_as_graphic(self, filename, suffix, show_outcome)

    def export_as_pngfile(self, filename: str | Path, show_outcome: bool = False) -> str:
        """``export_as_graphic(filename, "png")``."""
        from . import dot

        return dot.export_as_graphic(self, filename, "png", show_outcome)

    def export_as_svgfile(self, filename: str | Path, show_outcome: bool = False) -> str:
        """``export_as_graphic(filename, "svg")``."""
        from . import dot

        return dot.export_as_graphic(self, filename, "svg", show_outcome)

    def graph(self, show_outcome: bool = False) -> Any:
        """A ``graphviz.Source`` (needs the ``graphviz`` Python package)."""
        from . import dot

        return dot.graph_source(self, show_outcome)

    def _repr_svg_(self) -> str | None:
        from . import dot

        return dot.repr_svg(self)


class Scheduler(PureScheduler, AbstractJob):
    """A scheduler that is also a job: it can be nested in another scheduler.

    Its own ``critical`` flag says how it reports a failure: a critical scheduler
    (the default) raises the failed critical job's exception, or
    ``SchedulerTimeoutError`` (a ``TimeoutError``) on timeout; a non-critical one
    returns False. Other keywords go to ``AbstractJob``.
    """

    is_scheduler = True

    def __init__(
        self,
        *jobs_or_sequences: Any,
        jobs_window: int | None = None,
        timeout: float | None = None,
        shutdown_timeout: float | None = 1,
        watch: Watch | None = None,
        verbose: bool = False,
        **kwds: Any,
    ) -> None:
        PureScheduler.__init__(
            self, *jobs_or_sequences, jobs_window=jobs_window, timeout=timeout,
            shutdown_timeout=shutdown_timeout, watch=watch, verbose=verbose,
        )
        AbstractJob.__init__(self, **kwds)

    async def co_run(self) -> bool:
        """Run the nested jobs; raise on failure if critical, else return False."""
        if await PureScheduler.co_run(self):
            return True
        if not self.is_critical():
            return False
        if self._outcome == TIMEOUT:
            raise SchedulerTimeoutError(self._run_timeout or 0, self.label)
        failed = self._failed_job
        assert failed is not None and failed._exception is not None
        raise failed._exception

    def _reset(self) -> None:
        AbstractJob._reset(self)
        self._did_shutdown = False
        for job in self.jobs:
            job._reset()

    def _wants_shutdown(self) -> bool:
        return True

    def _name(self) -> str:
        return self.repr_main()

    def dot_cluster_name(self) -> str:
        """The name of this scheduler's cluster in a DOT graph."""
        return f"cluster_{self._sched_id}"


#: the historical name of the nestable scheduler (asynciojobs 0.9)
SchedulerJob = Scheduler
