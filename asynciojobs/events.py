"""What happens during a run, as data, for whoever subscribes.

A run emits one stream of events: the scheduler's (``RunStarted``, ``RunEnded``),
the jobs' (``JobStarted``, ``JobEnded``), and what jobs report about their own
work: commands on nodes (``CommandStarted``, ``CommandEnded``, ``Output``) and
connections to nodes (``ConnectionOpened``, ``ConnectionFailed``,
``ConnectionClosed``). The vocabulary lives here so that a subscriber (a record,
a live view, a log) depends on asynciojobs only; apssh emits the command and
connection events.

Subscribe a callable that takes an event, for one scheduler
(``scheduler.subscribe(callback)``) or for every run in the process
(``events.subscribe(callback)``). ``output=True`` also delivers ``Output`` (the
bytes commands print), which costs a little on every chunk; without it, nothing
is built for output. A run that nobody listens to builds no event at all.

Subscribers are called synchronously, in the event loop, in the order they
subscribed; one that raises is reported once on the ``asynciojobs`` logger and
dropped for the rest of the run, never failing a job. Events of a nested
scheduler reach the subscribers of the schedulers around it too. Every subscriber
gets the same event object: read it, never change it (events are plain
dataclasses on purpose: freezing one doubles what building it costs, and orjson
encodes a slotted one several times slower than one with a ``__dict__``).
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .job import AbstractJob

__all__ = [
    "CommandEnded",
    "CommandStarted",
    "ConnectionClosed",
    "ConnectionFailed",
    "ConnectionOpened",
    "Event",
    "JobEnded",
    "JobStarted",
    "Output",
    "RunEnded",
    "RunStarted",
    "Subscriber",
    "emit",
    "emitting",
    "node_of",
    "subscribe",
    "wants_output",
]

#: a subscriber: called with each event
Subscriber = Callable[["Event"], None]

logger = logging.getLogger("asynciojobs")


@dataclass(kw_only=True, eq=False)
class Event:
    """Something that happened, at ``time`` (seconds since the epoch)."""

    #: a short dotted name: ``job.ended``, ``command.started``..., given by the
    #: class (never pass it); a field of each event, not a class constant, so that
    #: encoders of dataclasses (orjson) write it with the others
    kind: str = field(default="event", repr=False)
    time: float = field(default_factory=time.time)


@dataclass(kw_only=True, eq=False)
class RunStarted(Event):
    """A scheduler starts running its jobs."""

    kind: str = field(default="run.started", repr=False)
    scheduler: Any


@dataclass(kw_only=True, eq=False)
class RunEnded(Event):
    """A scheduler's run ended: ``outcome`` is ``ok``, ``critical``, ``timeout``,
    ``cancelled`` or ``aborted``; ``reason`` says why in one line when not ok."""

    kind: str = field(default="run.ended", repr=False)
    scheduler: Any
    outcome: str
    reason: str | None = None


@dataclass(kw_only=True, eq=False)
class JobStarted(Event):
    """A job's requirements are met and it starts."""

    kind: str = field(default="job.started", repr=False)
    job: AbstractJob


@dataclass(kw_only=True, eq=False)
class JobEnded(Event):
    """A job ended: ``outcome`` is ``ok``, ``failed``, ``cancelled`` (stopped with
    its run) or ``stopped`` (a forever job stopped at the end of a run that went
    well); ``reason`` is the failure in one line."""

    kind: str = field(default="job.ended", repr=False)
    job: AbstractJob
    outcome: str
    reason: str | None = None
    duration: float | None = None


@dataclass(kw_only=True, eq=False)
class CommandStarted(Event):
    """A job starts its ``index``-th command (from 0) on ``node``."""

    kind: str = field(default="command.started", repr=False)
    job: AbstractJob | None
    node: str
    index: int
    command: str
    attempt: int = 1


@dataclass(kw_only=True, eq=False)
class CommandEnded(Event):
    """A command ended: ``status`` is its exit status (a number), a signal name, or
    None when it did not get that far; ``outcome`` is ``ok``, ``failed``,
    ``timeout`` or ``cancelled``; ``reason`` the failure in one line."""

    kind: str = field(default="command.ended", repr=False)
    job: AbstractJob | None
    node: str
    index: int
    command: str
    outcome: str
    status: int | str | None = None
    reason: str | None = None
    duration: float | None = None
    attempt: int = 1


@dataclass(kw_only=True, eq=False)
class Output(Event):
    """Bytes a command printed, as received (``stream``: ``stdout`` or ``stderr``)."""

    kind: str = field(default="output", repr=False)
    job: AbstractJob | None
    node: str
    index: int
    stream: str
    data: bytes


@dataclass(kw_only=True, eq=False)
class ConnectionOpened(Event):
    """A connection to ``node`` is up (``duration``: how long it took)."""

    kind: str = field(default="connection.opened", repr=False)
    node: str
    user: str | None = None
    duration: float | None = None


@dataclass(kw_only=True, eq=False)
class ConnectionFailed(Event):
    """A connection to ``node`` could not be made."""

    kind: str = field(default="connection.failed", repr=False)
    node: str
    reason: str
    duration: float | None = None


@dataclass(kw_only=True, eq=False)
class ConnectionClosed(Event):
    """A connection to ``node`` ended: ``reason`` None when closed normally."""

    kind: str = field(default="connection.closed", repr=False)
    node: str
    reason: str | None = None


class Bus:
    """The subscribers of one run and of the runs around it, flattened: what each
    event reaches is decided once, not at each event."""

    __slots__ = ("everyone", "output", "parent", "quiet")

    def __init__(self, subscribers: list[tuple[Subscriber, bool]],
                 parent: Bus | None) -> None:
        self.parent = parent
        here = list(subscribers)
        #: (callback, wants output), here then around
        self.everyone: list[tuple[Subscriber, bool]] = here + (
            parent.everyone if parent is not None else [])
        self._split()

    def _split(self) -> None:
        #: who gets ``Output`` events, and who gets the others
        self.output: tuple[Subscriber, ...] = tuple(
            callback for callback, out in self.everyone if out)
        self.quiet: tuple[Subscriber, ...] = tuple(callback for callback, _ in self.everyone)

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber that wants it."""
        for callback in self.output if type(event) is Output else self.quiet:
            try:
                callback(event)
            except Exception:
                logger.exception("event subscriber %r raised; dropped for this run",
                                 callback)
                self.everyone = [item for item in self.everyone if item[0] is not callback]
                self._split()


#: subscribers of every run in this process
_everywhere: list[tuple[Subscriber, bool]] = []

#: the bus of the run whose task is running (None: nobody listens)
_current: contextvars.ContextVar[Bus | None] = contextvars.ContextVar(
    "asynciojobs_events", default=None)


def add_subscriber(subscribers: list[tuple[Subscriber, bool]], callback: Subscriber,
                   output: bool) -> Callable[[], None]:
    """Add ``callback`` to ``subscribers``; the function that takes it out again."""
    item = (callback, output)
    subscribers.append(item)

    def unsubscribe() -> None:
        if item in subscribers:
            subscribers.remove(item)
    return unsubscribe


def subscribe(callback: Subscriber, *, output: bool = False) -> Callable[[], None]:
    """Deliver the events of every run in this process to ``callback`` (``Output``
    too with ``output``); returns a function that unsubscribes."""
    return add_subscriber(_everywhere, callback, output)


def bus_for_run(own: list[tuple[Subscriber, bool]]) -> Bus | None:
    """The bus of a run starting now with its scheduler's ``own`` subscribers, or
    None when nobody listens (then nothing is built)."""
    parent = _current.get()
    subscribers = list(own)
    if parent is None:
        subscribers += _everywhere
        if logger.isEnabledFor(logging.DEBUG):
            subscribers.append((log_event, False))
    if not subscribers:
        return parent
    return Bus(subscribers, parent)


def listened() -> bool:
    """Whether a run starting now outside any other would have subscribers beyond
    its scheduler's own (process-wide ones, or the logger at DEBUG)."""
    return bool(_everywhere) or logger.isEnabledFor(logging.DEBUG)


def emitting() -> Bus | None:
    """The bus of the run this code runs in, or None when nobody listens: build an
    event only when it is not None (``if (bus := emitting()) is not None: ...``)."""
    return _current.get()


def emit(event: Event) -> None:
    """Deliver ``event`` to the subscribers of the current run, if any."""
    bus = _current.get()
    if bus is not None:
        bus.emit(event)


def wants_output() -> bool:
    """Whether a subscriber of the current run wants ``Output`` events."""
    bus = _current.get()
    return bus is not None and bool(bus.output)


def node_of(job: Any) -> str | None:
    """The name of the node a job runs on (its ``node.hostname``: apssh's jobs), or
    None for a job that has none: how records and views name a job's node."""
    name = getattr(getattr(job, "node", None), "hostname", None)
    return str(name) if name is not None else None


def describe(event: Event) -> str:
    """One line for a person: the event's kind and its fields."""
    parts = [event.kind]
    for item in fields(event):
        if item.name in ("kind", "time", "data"):
            continue
        name, value = item.name, getattr(event, item.name)
        if value is None:
            continue
        if name == "job":
            value = value.repr_main()
        elif name == "scheduler":
            value = type(value).__name__
        parts.append(f"{name}={value}")
    if isinstance(event, Output):
        parts.append(f"bytes={len(event.data)}")
    return " ".join(parts)


def log_event(event: Event) -> None:
    """The logging subscriber: each event as one DEBUG line on ``asynciojobs``."""
    logger.debug("%s", describe(event))
