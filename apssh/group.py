"""The same command on many nodes, as one object (execo's ``Remote`` action).

``Group(nodes, command)`` makes one ``Process`` per node and drives them together:
``start()``, ``expect()`` on every one, ``write()`` to every one, ``wait()``,
``kill()``; ``results`` tells how each node ended (ok, failed, timed out, killed,
with its exit status and duration) and ``report()`` says it as text, one line per
node and the summary line of the command-line tools (``4 ok, 1 failed: fit02``).
``async with`` starts the group and kills what still runs on the way out.

Each node's command is the group's command filled with that node's values
(``apssh.pernode``, the rules of ``apssh -t``): ``{host}``, ``{fqdn}``, ``{user}``,
``{port}``, ``{rank}`` (the node's index in the group, from 0) and ``{args}`` (the
item ``rank % len(args)`` of ``args``); each value is shell-quoted, other braces
stay as written, ``{{host}}`` is the literal ``{host}``.

``write()`` sends the same data to every node, or each node its own (a sequence
by rank, or a function of the rank). ``run()`` is the one-shot form (start, write
``input``, close stdin, wait) and ``run_sync()`` the same for a script without
asyncio. Copies for a group (execo's ``Put``/``Get``) are in ``apssh.groupcopy``,
with the same results and report.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self, cast

from .errors import ApsshError, reason
from .formatters import Formatter
from .names import fold
from .node import Node
from .oneshot import run_closing
from .pernode import NodeValues, expand_command
from .process import Process, Status, Stream

__all__ = ["STATES", "Group", "GroupExpectError", "NodeResult", "Outcome", "State",
           "WriteData"]

State = Literal["not started", "running", "ok", "failed", "timed out", "killed"]
Data = bytes | str
#: what ``Group.write`` takes: the same data for every node, one item per rank
#: (None: nothing for that node), or a function of the rank
WriteData = Data | Sequence[Data | None] | Callable[[int], Data | None]
#: the states, in the order the summary line gives them
STATES: tuple[State, ...] = ("ok", "failed", "timed out", "killed", "running", "not started")


class GroupExpectError(ApsshError, TimeoutError):
    """``Group.expect()``: some nodes did not show the pattern (in time, or before
    their end). ``missing`` names them, ``matches`` holds the others' matches (by
    rank); the processes go on."""

    def __init__(self, pattern: str, stream: str, timeout: float | None,
                 missing: list[str], matches: dict[int, re.Match[Any]]) -> None:
        self.pattern, self.stream, self.timeout = pattern, stream, timeout
        self.missing, self.matches = missing, matches
        within = f" within {timeout:g}s" if timeout is not None else ""
        super().__init__(f"pattern {pattern!r} not seen on {stream}{within} on "
                         f"{len(missing)} node(s): {fold(missing)}")


@dataclass(frozen=True)
class NodeResult:
    """How one node of a group did."""

    #: the node's name in the group (its hostname, ``#rank`` added if it is there twice)
    label: str
    rank: int
    #: the command as sent to this node (its values filled in)
    command: str
    state: State
    #: the exit code, or the signal name; None while running or if it never ran
    exit_status: Status
    #: seconds from its start to its end (None until it ended)
    duration: float | None
    #: why it is not ok, in a few words (None when ok or running)
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the command ran and returned 0."""
        return self.state == "ok"

    def line(self) -> str:
        """``127.0.0.2: failed (exit 3) in 0.05s``."""
        text = f"{self.label}: {self.state}"
        if self.reason:
            text += f" ({self.reason})"
        if self.duration is not None:
            text += f" in {self.duration:.2f}s"
        return text


class Outcome:
    """What ``Group`` and the copies share: ``nodes`` with their per-node values
    (``args``), a life (``wait()``, ``kill()``, ``run()``, ``run_sync()``, ``async
    with``) and what it says of itself from its ``results``: ``ok``, ``summary()``,
    ``report()``.

    A subclass gives its ``start()``, ``result(rank)`` and the hooks of one rank:
    ``_has_started()``, ``_running_ranks()``, ``_end(rank)``, ``_stop_one(rank)``,
    and ``_settle()`` (the end of ``wait()``). The marks (``killed``, ``timed
    out``), the timeouts and the errors are kept here, by rank; each subclass's
    ``result()`` reads them by its own rules."""

    def __init__(self, nodes: Sequence[Node], args: Sequence[str | Sequence[str]] | None) -> None:
        self.args = args_of(args)
        self.nodes = list(nodes)
        #: each node's name in messages and the report
        self.labels = labels_of(self.nodes)
        self._errors: dict[int, str] = {}  # rank -> why it could not start or run
        self._marks: dict[int, State] = {}  # rank -> "timed out" | "killed"
        self._timeouts: dict[int, float] = {}  # rank -> the timeout it ran past

    def __len__(self) -> int:
        return len(self.nodes)

    def values(self, rank: int) -> dict[str, str | tuple[str, ...]]:
        """The per-node values of the node of index ``rank`` (``pernode.NodeValues``)."""
        return node_values(self.nodes[rank], rank, self.args)

    # ----- the hooks
    async def start(self) -> Any:
        """Start on every node at once; returns this object."""
        raise NotImplementedError

    def _has_started(self) -> bool:
        """Whether ``start()`` began (``async with`` starts it, or kills on the way out)."""
        raise NotImplementedError

    def _running_ranks(self) -> list[int]:
        """The ranks still running; ``RuntimeError`` when not started."""
        raise NotImplementedError

    async def _end(self, rank: int) -> None:
        """Wait for the end of rank ``rank``; its errors are recorded, not raised."""
        raise NotImplementedError

    async def _stop_one(self, rank: int) -> None:
        """Stop rank ``rank`` (kill its command, cancel its copy) and wait for its end;
        its errors are recorded, not raised."""
        raise NotImplementedError

    async def _settle(self) -> None:
        """Called at the end of ``wait()``, every rank being over."""

    def result(self, rank: int) -> NodeResult:
        """How the node of index ``rank`` did, so far."""
        raise NotImplementedError

    # ----- its life
    async def wait(self, timeout: float | None = None) -> list[NodeResult]:
        """Wait for every node's end; returns ``results``. A node still running after
        ``timeout`` seconds is stopped (its command killed, its copy cancelled) and
        marked ``timed out`` (no exception: the outcome is per node, as in the
        report)."""
        await asyncio.gather(*(self._wait_one(rank, timeout) for rank in self._running_ranks()))
        await self._settle()
        return self.results

    async def _wait_one(self, rank: int, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._end(rank)
        except TimeoutError:
            self._marks[rank] = "timed out"
            self._timeouts[rank] = timeout or 0
            await self._stop_one(rank)

    async def kill(self) -> list[NodeResult]:
        """Stop what still runs on every node (a command: its whole process group, as
        ``Process.kill``; a copy: cancelled); those are marked ``killed``. Returns
        ``results``."""
        running = self._running_ranks()
        for rank in running:
            self._marks.setdefault(rank, "killed")
        await asyncio.gather(*(self._stop_one(rank) for rank in running))
        return self.results

    async def run(self, timeout: float | None = None) -> list[NodeResult]:
        """The one-shot form: ``start()`` then ``wait(timeout)``; returns ``results``.
        Cancelled (or failing) on the way: what still runs is killed."""
        return await self._run_once(timeout)

    async def _run_once(self, timeout: float | None,
                        before: Callable[[], Awaitable[None]] | None = None) -> list[NodeResult]:
        """``run()``: ``start()``, ``await before()`` when given, ``wait(timeout)``."""
        await self.start()
        try:
            if before is not None:
                await before()
            return await self.wait(timeout)
        except BaseException:
            await asyncio.shield(self.kill())
            raise

    def run_sync(self, timeout: float | None = None) -> list[NodeResult]:
        """``run()`` for a script or a notebook cell without asyncio: in an event
        loop of its own, which closes the nodes' connections before it ends.
        ``RuntimeError`` inside a running loop (``await run()`` there)."""
        return self._sync(lambda: self.run(timeout))

    def _sync(self, make: Callable[[], Awaitable[list[NodeResult]]]) -> list[NodeResult]:
        return run_closing(make, self.nodes, type(self).__name__)

    async def __aenter__(self) -> Self:
        if not self._has_started():
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._has_started():
            await self.kill()

    # ----- what it did
    @property
    def results(self) -> list[NodeResult]:
        """How each node did so far, by rank."""
        return [self.result(rank) for rank in range(len(self.nodes))]

    @property
    def ok(self) -> bool:
        """Whether every node did it and ended well."""
        return all(result.ok for result in self.results)

    def summary(self) -> str:
        """``3 ok, 1 failed: fit02``, then the other states there are (``1 timed
        out: fit03``), as the command-line tools say it."""
        results = self.results
        parts = []
        for state in STATES:
            labels = [result.label for result in results if result.state == state]
            if labels or state in ("ok", "failed"):
                part = f"{len(labels)} {state}"
                if labels and state != "ok":
                    part += f": {fold(labels)}"
                parts.append(part)
        return ", ".join(parts)

    def report(self) -> str:
        """One line per node (``NodeResult.line``), then ``summary()``; each line
        ends with a newline."""
        return "".join(result.line() + "\n" for result in self.results) + self.summary() + "\n"


def labels_of(nodes: Sequence[Node]) -> list[str]:
    """Each node's name in messages and reports: its hostname, ``#rank`` added
    when that name is there twice."""
    names = [node.hostname for node in nodes]
    return [name if names.count(name) == 1 else f"{name}#{rank}"
            for rank, name in enumerate(names)]


def args_of(args: Sequence[str | Sequence[str]] | None) -> list[tuple[str, ...]] | None:
    """Per-node arguments as words, checked (``TypeError``/``ValueError``)."""
    if isinstance(args, str | bytes):
        raise TypeError("args is a sequence with one item per rank, not a string")
    if args is not None and not args:
        raise ValueError("args is empty: give None, or at least one item")
    return None if args is None else [_words(item) for item in args]


def node_values(node: Node, rank: int,
                args: list[tuple[str, ...]] | None) -> dict[str, str | tuple[str, ...]]:
    """The per-node values of ``node`` at ``rank`` (``pernode.NodeValues``);
    ``args``: as ``args_of`` gives them."""
    port = getattr(node, "port", None)
    words = () if args is None else args[rank % len(args)]
    return NodeValues(node.hostname, str(getattr(node, "username", "") or ""),
                      port if isinstance(port, int) else None, rank, words).as_dict()


class Group(Outcome):
    """``command`` on each of ``nodes`` (see the module's docstring).

    ``args``: per-node arguments, ``{args}`` in the command: node ``rank`` gets item
    ``rank % len(args)``, a str as one word, a sequence of str as several words.
    ``formatter``/``show``: as ``Process``'s, for every node (default: each node's
    own formatter).
    """

    def __init__(self, nodes: Sequence[Node], command: str,
                 args: Sequence[str | Sequence[str]] | None = None, *,
                 formatter: Formatter | None = None, show: bool = True) -> None:
        super().__init__(nodes, args)
        self.command = command
        kwds: dict[str, Any] = {"show": show}
        if formatter is not None:
            kwds["formatter"] = formatter
        #: one process per node, by rank
        self.processes: list[Process] = [
            node.process(expand_command(command, self.values(rank)), **kwds)
            for rank, node in enumerate(self.nodes)]
        self._started = False
        self._ran: list[int] = []  # the ranks whose command started

    def __repr__(self) -> str:
        return f"<Group {self.command!r} on {len(self.nodes)} node(s)>"

    # ----- its life
    async def start(self) -> Group:
        """Start the command on every node at once. A node where it cannot start
        (unreachable, refused) is recorded as failed, with the reason; the others
        run. Cancelled while starting: what did start is killed."""
        if self._started:
            raise RuntimeError(f"{self!r} was started already")
        self._started = True
        try:
            outcomes = await asyncio.gather(*(proc.start() for proc in self.processes),
                                            return_exceptions=True)
        except BaseException:
            await self._kill_started()
            raise
        for rank, outcome in enumerate(outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    await self._kill_started()
                    raise outcome
                self._errors[rank] = reason(outcome)
            else:
                self._ran.append(rank)
        return self

    def _live(self) -> list[tuple[int, Process]]:
        """The processes that started and still run, with their rank."""
        if not self._started:
            raise RuntimeError(f"{self!r}: start() it first")
        return [(rank, proc) for rank, proc in enumerate(self.processes) if proc.running]

    async def _kill_started(self) -> None:
        """Cancelled while starting: kill what did start (marked ``killed``)."""
        live = [(rank, proc) for rank, proc in enumerate(self.processes) if proc.running]
        for rank, _ in live:
            self._marks.setdefault(rank, "killed")
        await asyncio.gather(*(proc.kill() for _, proc in live), return_exceptions=True)

    def _has_started(self) -> bool:
        return self._started

    def _running_ranks(self) -> list[int]:
        return [rank for rank, _ in self._live()]

    async def _end(self, rank: int) -> None:
        try:
            await self.processes[rank].wait()
        except Exception as exc:  # the connection went away under it
            self._errors.setdefault(rank, reason(exc))

    async def _stop_one(self, rank: int) -> None:
        try:
            await self.processes[rank].kill()
        except Exception as exc:
            self._errors.setdefault(rank, reason(exc))

    async def _settle(self) -> None:
        """The processes that ended on their own, with an error: recorded."""
        for rank, proc in enumerate(self.processes):
            if rank in self._ran and not proc.running and rank not in self._errors:
                try:
                    await proc.wait()
                except Exception as exc:
                    self._errors[rank] = reason(exc)

    async def write(self, data: WriteData) -> None:
        """Send ``data`` to the stdin of every running process: bytes or a str (in
        UTF-8) go to all; a sequence (a list, a tuple) gives node ``rank`` its item
        ``rank`` (it has one item per node; None sends nothing to that node); a
        function is called with each running node's rank (``values(rank)`` gives
        its host...) and returns what that node gets, or None."""
        if isinstance(data, bytes | bytearray | memoryview | str):
            same = bytes(data) if not isinstance(data, str) else data
            await asyncio.gather(*(proc.write(same) for _, proc in self._live()))
            return
        if callable(data):
            of = data
        elif isinstance(data, Sequence):
            if len(data) != len(self.processes):
                raise ValueError(f"write() got {len(data)} items for {len(self.processes)} "
                                 "nodes: give one per node (None for nothing)")
            items = cast(Sequence[Data | None], data)  # bytes and str went above

            def of(rank: int) -> Data | None:
                return items[rank]
        else:
            raise TypeError(f"write() takes bytes, a str, a sequence or a function, not "
                            f"{type(data).__name__}")
        each = [(proc, of(rank)) for rank, proc in self._live()]
        await asyncio.gather(*(proc.write(item) for proc, item in each if item is not None))

    async def close(self) -> None:
        """Close the stdin of every running process: each reads end-of-file."""
        await asyncio.gather(*(proc.close() for _, proc in self._live()))

    async def expect(self, pattern: str | bytes | re.Pattern[Any], timeout: float | None = None,
                     stream: Stream = "stdout") -> list[re.Match[Any]]:
        """``Process.expect`` on every node at once, within one ``timeout``; returns
        the matches, by rank. Nodes that did not match (in time, or before their
        end, or that did not start): ``GroupExpectError`` naming them, with the
        others' matches; every process goes on."""
        if not self._started:
            raise RuntimeError(f"{self!r}: start() it first")
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.MULTILINE)
        shown = regex.pattern if isinstance(regex.pattern, str) else repr(regex.pattern)
        ranks = [rank for rank in self._ran if rank not in self._errors]
        outcomes = await asyncio.gather(
            *(self.processes[rank].expect(regex, timeout, stream) for rank in ranks),
            return_exceptions=True)
        matches = {rank: found for rank, found in zip(ranks, outcomes, strict=True)
                   if isinstance(found, re.Match)}
        for found in outcomes:
            if isinstance(found, BaseException) and not isinstance(found, Exception):
                raise found
        if len(matches) < len(self.processes):
            missing = [self.labels[rank] for rank in range(len(self.processes))
                       if rank not in matches]
            raise GroupExpectError(shown, stream, timeout, missing, matches)
        return [matches[rank] for rank in range(len(self.processes))]

    async def run(self, timeout: float | None = None,
                  input: WriteData | None = None) -> list[NodeResult]:
        """The one-shot form: ``start()``, ``write(input)`` when given, ``close()``
        (the commands read end-of-file), ``wait(timeout)``; returns ``results``.
        Cancelled (or failing) on the way: what still runs is killed."""
        return await self._run_once(timeout, lambda: self._feed(input))

    async def _feed(self, input: WriteData | None) -> None:
        if input is not None:
            await self.write(input)
        await self.close()

    def run_sync(self, timeout: float | None = None,
                 input: WriteData | None = None) -> list[NodeResult]:
        """``run(timeout, input)`` for a script or a notebook cell without asyncio, as
        ``Outcome.run_sync``: in an event loop of its own, which closes the nodes'
        connections before it ends; ``RuntimeError`` inside a running loop."""
        return self._sync(lambda: self.run(timeout, input))

    # ----- what it did
    def result(self, rank: int) -> NodeResult:
        """How the node of index ``rank`` did, so far."""
        proc = self.processes[rank]
        duration = (proc.ended_at - proc.started_at
                    if proc.ended_at is not None and proc.started_at is not None else None)
        state: State
        reason: str | None = None
        if rank in self._errors:
            state, reason = "failed", self._errors[rank]
        elif not self._started or proc.started_at is None:
            state = "not started"
        elif proc.running:
            state = "running"
        elif proc.ended_at is None:  # its start was cancelled, or is under way
            state = "not started"
        elif rank in self._marks:
            state = self._marks[rank]
            reason = (f"still running after {self._timeouts[rank]:g}s" if state == "timed out"
                      else _status(proc.exit_status))
        elif proc.exit_status == 0:
            state = "ok"
        else:
            state, reason = "failed", _status(proc.exit_status)
        return NodeResult(self.labels[rank], rank, proc.command, state, proc.exit_status,
                          duration, reason)


def _words(item: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(item, str):
        return (item,)
    return tuple(str(word) for word in item)


def _status(status: Status) -> str:
    if isinstance(status, str):
        return f"signal {status}"
    if status is None:
        return "no exit status"
    return f"exit {status}"



