"""AbstractJob, the contract every job honours, and Job, a job made of a coroutine.

A job knows its own state (idle, scheduled, running, done); the scheduler moves it
from one state to the next. Nothing here touches asyncio's private attributes.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from .dotstyle import DotStyle
from .errors import InvalidScenarioError, JobNotFinishedError, JobReuseError, SchedulerError
from .graph import number_jobs
from .jobset import JobSet
from .listing import ids
from .readiness import Readiness
from .symbols import legend

if TYPE_CHECKING:
    from .scheduler import PureScheduler

# lifecycle states; a job that raised is DONE with an exception
IDLE, SCHEDULED, RUNNING, DONE = 0, 1, 2, 3


def flatten_jobs(
    items: Iterable[Any], where: str, *, sequence_as_last: bool = False,
    conditions: list[Readiness] | None = None,
) -> list[AbstractJob]:
    """Flatten jobs, sequences, schedulers and nested iterables into a list of jobs.

    ``None`` is skipped; a ``Sequence`` stands for its jobs, or for its last job
    with ``sequence_as_last`` (the meaning of a sequence given as a requirement);
    anything that is not a job (a coroutine, a string, a number) raises a
    ``TypeError`` naming ``where``. A ``Readiness`` stands for its job when
    ``conditions`` is given (and is appended to it).
    """
    found: list[AbstractJob] = []
    append = found.append

    def walk(item: Any) -> None:
        if isinstance(item, AbstractJob):
            append(item)
        elif type(item) in _CONTAINERS:
            for sub in item:
                if isinstance(sub, AbstractJob):
                    append(sub)
                else:
                    walk(sub)
        elif item is None:
            return
        elif conditions is not None and isinstance(item, Readiness):
            conditions.append(item)
            append(item.job)
        elif hasattr(item, "as_requirement"):  # a Sequence
            if sequence_as_last:
                walk(item.as_requirement())
            else:
                walk(item.jobs)
        elif isinstance(item, str | bytes) or inspect.isawaitable(item):
            raise TypeError(_not_a_job(item, where))
        elif isinstance(item, Iterable):
            for sub in item:
                walk(sub)
        else:
            raise TypeError(_not_a_job(item, where))

    for item in items:
        walk(item)
    return found


_CONTAINERS = (list, tuple, set, frozenset)


def _not_a_job(item: object, where: str) -> str:
    hint = " (wrap it: Job(...))" if inspect.isawaitable(item) else ""
    if inspect.iscoroutine(item):
        item.close()  # it will never run: do not let it warn about that
    return f"{where}: expected a job, got {type(item).__name__} {item!r:.60}{hint}"


class AbstractJob:
    """The base of every job: requirements, flags, state, and how it is shown.

    Subclasses define ``async co_run()`` (the job itself) and may define
    ``async co_shutdown()`` (called once when the scheduler ends), ``close()`` and
    ``async co_close()`` (release what the job holds: at once, or politely),
    ``details()``, ``text_label()``, ``graph_label()``, ``repr_result()`` and
    ``failure_lines()``.

    ``critical=None`` (the default) lets the enclosing scheduler decide: schedulers
    treat such jobs as critical, the historical ``Engine`` uses its own flag.
    """

    # slots keep 100k jobs light; __dict__ still lets subclasses and users add attributes
    __slots__ = (
        "__dict__", "__weakref__", "_conditions", "_exception", "_required", "_result",
        "_sched_id", "_state", "critical", "ended_at", "forever", "label", "scheduler",
        "started_at",
    )

    #: True on schedulers that are jobs (nested schedulers)
    is_scheduler = False

    def __init__(
        self,
        *,
        forever: bool = False,
        critical: bool | None = None,
        label: object = None,
        required: Any = None,
        scheduler: PureScheduler | None = None,
    ) -> None:
        self.forever = forever
        self.critical = critical
        self.label = label
        self._required: JobSet[AbstractJob] | None = None
        #: required jobs met by a readiness rather than by their end (see readiness.py)
        self._conditions: dict[AbstractJob, Readiness] | None = None
        #: the scheduler this job was added to, if any
        self.scheduler: PureScheduler | None = None
        self._state = IDLE
        self._result: Any = None
        self._exception: BaseException | None = None
        self._sched_id: str | None = None
        #: when the job started and ended in its last run (``time.time()``), or None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        if required is not None:
            self.requires(required)
        if scheduler is not None:
            scheduler.add(self)

    # ----- requirements
    @property
    def required(self) -> JobSet[AbstractJob]:
        """The jobs that must be done before this one starts (insertion-ordered)."""
        if self._required is None:
            self._required = JobSet()
        return self._required

    @required.setter
    def required(self, jobs: Iterable[AbstractJob]) -> None:
        conditions: list[Readiness] = []
        self._required = JobSet(flatten_jobs([jobs], "required", sequence_as_last=True,
                                             conditions=conditions))
        self._conditions = {cond.job: cond for cond in conditions} or None

    def requires(self, *requirements: Any, remove: bool = False) -> AbstractJob:
        """Add (or with ``remove=True`` remove) requirements; returns ``self``.

        Each item can be a job, ``None`` (ignored), a ``Sequence`` (its last job at
        this moment), a ``Readiness`` (``job.when(...)``: met when it fires, not
        when its job ends), or any nesting of lists, tuples, sets and generators of
        those. A job requiring itself is ignored. Removing an absent job raises
        ``KeyError``. One edge per required job: a later plain requirement on a job
        replaces a readiness on it, and the other way round.
        """
        conditions: list[Readiness] = []
        try:
            jobs = flatten_jobs(requirements, "requires()", sequence_as_last=True,
                                conditions=conditions)
        except TypeError as exc:
            raise TypeError(f"{self.repr_main()}.{exc}") from None
        required = self.required
        by_job = {readiness.job: readiness for readiness in conditions}
        for job in jobs:
            if job is self:
                continue
            if remove:
                required.remove(job)
            else:
                required.add(job)
            if self._conditions is not None:
                self._conditions.pop(job, None)
            if not remove and job in by_job:
                if self._conditions is None:
                    self._conditions = {}
                self._conditions[job] = by_job[job]
        return self

    def when(self, condition: str, timeout: float | None = None) -> Readiness:
        """A requirement met when this job fires it, while it keeps running.

        ``other.requires(job.when("listening"))``: ``other`` starts once the job
        calls ``readiness.fire(**values)`` (the values then read as
        ``readiness["name"]``); with ``timeout``, counted from the job's start,
        ``other`` fails with one line if it has not fired by then, and at once if
        the job ends without firing. Subclasses fire it themselves (apssh's
        ``SshJob.when(pattern)`` on a matching output line).
        """
        return Readiness(self, condition, timeout)

    # ----- state
    def is_idle(self) -> bool:
        """True when the job has not been scheduled in the current (or last) run."""
        return self._state == IDLE

    def is_scheduled(self) -> bool:
        """True once the job's requirements were met (it may wait for a window slot)."""
        return self._state != IDLE

    def is_running(self) -> bool:
        """True once the job has started; stays True after it ends or is cancelled."""
        return self._state >= RUNNING

    def is_done(self) -> bool:
        """True when ``co_run()`` returned or raised (a cancelled job is not done)."""
        return self._state == DONE

    def is_critical(self) -> bool:
        """This job's criticality: its own ``critical`` flag, else its scheduler's default."""
        if self.critical is not None:
            return bool(self.critical)
        if self.scheduler is not None:
            return self.scheduler.default_critical()
        return True

    def result(self) -> Any:
        """The value ``co_run()`` returned (``None`` if it raised).

        Raises ``JobNotFinishedError`` (a ``ValueError``) when the job is not done.
        """
        if self._state != DONE:
            raise JobNotFinishedError(self)
        return self._result

    def raised_exception(self) -> BaseException | bool | None:
        """The exception ``co_run()`` raised; ``None`` if it did not (yet); ``False`` if idle."""
        if self._state == IDLE:
            return False
        return self._exception

    # ----- to be defined by subclasses
    async def co_run(self) -> Any:
        """The job itself; subclasses must define it."""
        raise NotImplementedError(f"{type(self).__name__}.co_run() needs to be implemented")

    async def co_shutdown(self) -> Any:
        """Called once when the enclosing scheduler ends, whatever this job's state."""
        return None

    def close(self) -> None:
        """Release what the job holds, at once and without waiting (no-op here).

        Synchronous and callable anywhere, inside a running event loop or not; it
        may be abrupt (drop a connection rather than close it politely).
        """

    async def co_close(self) -> None:
        """Release what the job holds, politely, and wait until it is done.

        Calls ``close()`` here (and awaits it, should a subclass make it a coroutine).
        """
        close = getattr(self, "close", None)  # a subclass may have set it to None
        result: Any = close() if callable(close) else None
        if inspect.isawaitable(result):
            await result

    def details(self) -> str | None:
        """Extra text shown under the job by ``list(details=True)``."""
        return None

    def failure_lines(self, exc: BaseException) -> list[str] | None:
        """How ``debrief()`` shows ``exc``, raised by this job: a few lines for an
        expected failure, or None for its traceback (a bug, as far as we know).

        An exception with a ``debrief_lines()`` method gives those lines (apssh's
        ``CommandFailedError`` does); asynciojobs' own errors give one line.
        """
        lines = getattr(exc, "debrief_lines", None)
        if callable(lines):
            return [str(line) for line in lines()]
        if isinstance(exc, SchedulerError):
            return [f"{type(exc).__name__}: {exc}"]
        return None

    def text_label(self) -> str | None:
        """A label to show when none was given."""
        return None

    def graph_label(self) -> str | None:
        """A label for graphs; takes precedence over ``label`` when not None."""
        return None

    def standalone_run(self) -> Any:
        """Run this job alone, outside any scheduler, and return what ``co_run()`` returns."""
        from .loop import run_in_thread_loop

        return run_in_thread_loop(self.co_run())

    # ----- scheduler hooks (private)
    def _coroutine(self) -> Awaitable[Any]:
        """The awaitable a scheduler runs for this job."""
        return self.co_run()

    def _wants_shutdown(self) -> bool:
        """False when ``co_shutdown()`` is known to do nothing (saves a task per job)."""
        return type(self).co_shutdown is not AbstractJob.co_shutdown

    def _reset(self) -> None:
        """Forget the outcome of a previous run."""
        self._state = IDLE
        self._result = None
        self._exception = None
        self.started_at = self.ended_at = None

    @property
    def duration(self) -> float | None:
        """How long the job ran in its last run (seconds), None if it did not end."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    # ----- how a job is shown
    def _get_text_label(self) -> str:
        if self.label is not None:
            return str(self.label)
        text = self.text_label()
        return text if text is not None else "NOLABEL"

    def _get_graph_label(self) -> str:
        graph = self.graph_label()
        if graph is not None:
            return graph
        return f"{self.repr_id()}: {self._get_text_label()}"

    def repr_id(self) -> str:
        """The job's id in its scheduler's listing (``??`` outside any scheduler).

        Ids are given on demand: the first one asked for numbers the whole tree,
        and so does the first asked for by a job added since (``list()`` always
        renumbers).
        """
        if self._sched_id is None and self.scheduler is not None:
            root = self.scheduler
            while isinstance(root, AbstractJob) and root.scheduler is not None:
                root = root.scheduler
            with contextlib.suppress(InvalidScenarioError):  # a cycle: no ids
                number_jobs(root)
        return self._sched_id or "??"

    def repr_short(self) -> str:
        """Four status symbols: critical, outcome, lifecycle, forever."""
        sym = legend()
        crit = sym.critical if self.is_critical() else sym.not_critical
        state = self._state
        if state == DONE and self._exception is not None:
            outcome = sym.raised
        elif state >= RUNNING:
            outcome = sym.went_fine
        else:
            outcome = sym.no_outcome
        life = (sym.idle, sym.scheduled, sym.running, sym.done)[state]
        forever = sym.forever if self.forever else sym.finite
        return f"{crit} {outcome} {life} {forever}"

    def repr_main(self) -> str:
        """``<ClassName `label`>``."""
        return f"<{type(self).__name__} `{self._get_text_label()}`>"

    def repr_result(self) -> str:
        """The outcome in brackets: the result, the exception, or ``[not done]``."""
        if self._state == DONE:
            exc = self._exception
            if exc is not None:
                kind = "CRIT. EXC." if self.is_critical() else "exception"
                return f"!! {kind} => {type(exc).__name__}:{exc}!!"
            return f"[[ -> {self._result}]]"
        return "[not done]"

    def repr_requires(self) -> str:
        """``requires={1, 2}`` (ids of the required jobs), or an empty string."""
        if not self._required:
            return ""
        return "requires=" + ids(self._required, self._conditions)

    def __repr__(self) -> str:
        return (
            f"{self.repr_short()} {self.repr_main()} {self.repr_result()} {self.repr_requires()}"
        )

    def dot_style(self) -> DotStyle:
        """The graphviz attributes of this job's node."""
        style = DotStyle()
        shapes = [] if self.is_scheduler else ["rounded"]
        if self.forever:
            shapes.append("dashed")
        style["style"] = shapes
        label = self._get_graph_label()
        if label != "NOLABEL":
            style["label"] = label
        style["shape"] = "box"
        if self.is_critical():
            style["color"] = "red"
            style["penwidth"] = 2
        else:
            style["penwidth"] = 0.5
        return style


class Job(AbstractJob):
    """A job that awaits a coroutine.

    ``corun`` is either a coroutine function (or any callable returning an
    awaitable), called with ``*args`` at each run so the job can run again, or a
    coroutine object, which runs once. ``coshutdown`` likewise, awaited by
    ``co_shutdown()``. Other keywords go to ``AbstractJob``.
    """

    __slots__ = ("_consumed", "args", "corun", "coshutdown")

    def __init__(
        self,
        corun: Callable[..., Awaitable[Any]] | Awaitable[Any],
        *args: Any,
        coshutdown: Callable[[], Awaitable[Any]] | Awaitable[Any] | None = None,
        **kwds: Any,
    ) -> None:
        if inspect.isawaitable(corun):
            if args:
                if inspect.iscoroutine(corun):
                    corun.close()
                raise TypeError(
                    "Job(): positional arguments go with a coroutine function, "
                    f"not with an awaitable {type(corun).__name__}: Job(func, *args)"
                )
        elif not callable(corun):
            raise TypeError(
                f"Job(): expected a coroutine function or a coroutine, got {corun!r:.60}"
            )
        if coshutdown is not None and not (
            inspect.isawaitable(coshutdown) or callable(coshutdown)
        ):
            raise TypeError(
                f"Job(): coshutdown must be a coroutine (function), got {coshutdown!r}"
            )
        self.corun = corun
        self.args = args
        self.coshutdown = coshutdown
        self._consumed = False
        super().__init__(**kwds)

    def _coroutine(self) -> Awaitable[Any]:
        if type(self).co_run is not Job.co_run:
            return self.co_run()
        corun = self.corun
        if callable(corun):
            return corun(*self.args)
        if self._consumed:
            raise JobReuseError(self)
        self._consumed = True
        return corun

    async def co_run(self) -> Any:
        """Await the job's coroutine and return its value."""
        return await Job._coroutine(self)

    async def co_shutdown(self) -> Any:
        """Await ``coshutdown`` if one was given."""
        coshutdown = self.coshutdown
        if coshutdown is None:
            return None
        if callable(coshutdown):
            return await coshutdown()
        return await coshutdown

    def _wants_shutdown(self) -> bool:
        return self.coshutdown is not None or type(self).co_shutdown is not Job.co_shutdown

    def _reuse_error(self) -> JobReuseError | None:
        """The error a new run would meet, for a coroutine object already used."""
        if self._consumed and not callable(self.corun):
            return JobReuseError(self)
        return None

    def close(self) -> None:
        """Close coroutine objects that were never awaited (no "never awaited" warning)."""
        for coro in (self.corun, self.coshutdown):
            if inspect.iscoroutine(coro):
                coro.close()

    def __del__(self, _coroutine: type = CoroutineType) -> None:
        # a coroutine object that never ran would warn "never awaited" when collected
        corun = getattr(self, "corun", None)
        if not getattr(self, "_consumed", True) and type(corun) is _coroutine:
            corun.close()  # type: ignore[attr-defined]

    def text_label(self) -> str:
        """``Job[name (...)]`` after the coroutine's name."""
        name = getattr(self.corun, "__name__", None)
        return f"Job[{name} (...)]" if name else "Job instance"

