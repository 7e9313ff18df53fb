"""Readiness: a requirement met when a job signals it, not when the job ends.

``server.when("listening")`` returns a ``Readiness``; a job that requires it
(``Job(client, required=server.when(...))``) starts as soon as the server fires it
(``readiness.fire(port="5000")``), while the server keeps running. In the graph such
an edge is an ordinary requirement on ``server`` (so cycle checks, ids and
orderings stay what they are); the plan only records that its counter is
decremented when the readiness fires rather than when ``server`` completes.

A run arms each readiness of its plan (``ReadinessTable``): firing decrements the
waiting jobs' counters at once (no polling), a ``timeout`` (counted from the
moment the source job starts) fails the waiting jobs with one line naming the
condition and the job, and so does the source job ending without having fired.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import SchedulerError

if TYPE_CHECKING:
    from .job import AbstractJob
    from .runloop import Run


class ReadinessError(SchedulerError):
    """A job waited for a readiness that never came (timeout, or the source ended)."""


class ReadinessTimeoutError(ReadinessError):
    """A readiness did not fire within its timeout."""


class Readiness:
    """A condition of ``job`` that other jobs can require (see the module docstring).

    ``condition`` describes it (a pattern, a name); ``timeout`` bounds the wait,
    counted from the start of ``job``; once fired, ``matched`` holds the values
    given to ``fire()`` (``readiness["port"]`` reads one of them).
    """

    def __init__(self, job: AbstractJob, condition: str, timeout: float | None = None) -> None:
        self.job = job
        self.condition = condition
        self.timeout = timeout
        #: the values given by the last ``fire()`` of the current run
        self.matched: dict[str, Any] = {}
        self.fired = False
        #: functions called on each ``fire()`` with the values (apssh's Variables hook)
        self.on_fire: list[Callable[[Mapping[str, Any]], None]] = []
        self._run: Run | None = None
        self._waiting: list[AbstractJob] = []
        self._timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<Readiness {self.job.repr_main()} when {self.condition!r}>"

    def __getitem__(self, name: str) -> Any:
        return self.matched[name]

    def short(self) -> str:
        """``when 'listening on…'``: how listings show the edge (40 characters at most)."""
        text = self.condition if len(self.condition) <= 40 else self.condition[:39] + "…"
        return f"when '{text}'"

    def fire(self, values: Mapping[str, Any] | None = None, /, **kwds: Any) -> bool:
        """Signal the condition; the first call wins (returns False for later ones).

        The values become ``matched``; the jobs waiting for it in a run start now
        (if their other requirements are met).
        """
        if self.fired:
            return False
        self.fired = True
        self.matched = {**(values or {}), **kwds}
        for hook in self.on_fire:
            hook(self.matched)
        self._cancel_timer()
        run, self._run = self._run, None
        if run is not None:
            run.readiness.satisfied(self)
        return True

    # ----- the run's side (see ReadinessTable)
    def _arm(self, run: Run, waiting: AbstractJob) -> None:
        if self._run is not run:
            self._cancel_timer()
            self._run, self._waiting = run, []
            self.fired, self.matched = False, {}
        self._waiting.append(waiting)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _why(self, timed_out: bool) -> str:
        if timed_out:
            return f"waited {self.timeout}s for {self.job.repr_main()} {self.short()}"
        return f"{self.job.repr_main()} ended before {self.short()}"


class ReadinessTable:
    """The readiness edges of one run: armed at the start, O(1) per event."""

    def __init__(self, run: Run, edges: dict[AbstractJob, list[tuple[Readiness, AbstractJob]]]):
        self.run = run
        #: source job -> its readinesses (each once)
        self.by_source: dict[AbstractJob, list[Readiness]] = {}
        for source, pairs in edges.items():
            seen: list[Readiness] = []
            for readiness, waiting in pairs:
                readiness._arm(run, waiting)
                if readiness not in seen:
                    seen.append(readiness)
            self.by_source[source] = seen

    def launched(self, job: AbstractJob) -> None:
        """``job`` starts: the timeouts of its readinesses start counting."""
        for readiness in self.by_source.get(job, ()):
            if readiness.timeout is not None and not readiness.fired:
                readiness._timer = self.run.loop.call_later(
                    readiness.timeout, self.expire, readiness, True)

    def completed(self, job: AbstractJob) -> None:
        """``job`` ended: what it never fired never will."""
        for readiness in self.by_source.get(job, ()):
            if not readiness.fired and readiness._run is self.run:
                self.expire(readiness, False)

    def satisfied(self, readiness: Readiness) -> None:
        """``readiness`` fired: one requirement fewer for each job waiting for it."""
        run = self.run
        if run.outcome is not None:
            return
        run.release(readiness._waiting)

    def expire(self, readiness: Readiness, timed_out: bool) -> None:
        """Fail the jobs still waiting for ``readiness``, one line each."""
        readiness._timer = None
        readiness._run = None
        if self.run.outcome is not None:
            return
        kind = ReadinessTimeoutError if timed_out else ReadinessError
        for waiting in readiness._waiting:
            if waiting.is_idle():
                self.run.fail_unstarted(
                    waiting, kind(f"{waiting.repr_main()} {readiness._why(timed_out)}"))

    def stop(self) -> None:
        """The run ends: no timer outlives it."""
        for readinesses in self.by_source.values():
            for readiness in readinesses:
                readiness._cancel_timer()
                if readiness._run is self.run:
                    readiness._run = None


def edge_label(job: AbstractJob, req: AbstractJob) -> str | None:
    """``when '…'`` when ``job`` requires ``req`` through a readiness, else None."""
    conditions = job._conditions
    readiness = conditions.get(req) if conditions else None
    return readiness.short() if readiness is not None else None
