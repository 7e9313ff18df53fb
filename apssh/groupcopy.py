"""Copies to and from many nodes, as one object (execo's ``Put`` and ``Get`` actions).

``Put(nodes, localpaths, remotepath)`` copies local files onto every node,
``Get(nodes, remotepaths, localpath)`` fetches files from every node; both copy on
all the nodes at once and have the shape of ``Group``: ``start()``, ``wait()``,
``kill()``, ``run()`` (start and wait) and ``run_sync()`` (the same without
asyncio), ``async with``; ``results`` (a ``NodeResult`` per node: ok, failed,
timed out, killed, with its duration and why), ``summary()`` and ``report()``.

Each path may hold the node's values (``apssh.pernode``, the rules of
``appush``/``appull``): ``{host}``, ``{fqdn}``, ``{user}``, ``{port}``, ``{rank}``,
``{args}``; each value must be one safe path component, so a path that stays in
its directory still does once filled: ``Get(nodes, "/var/log/x.log",
"logs/{host}.log")``. Each node's copy is a ``Push`` or a ``Pull`` run on it (the
node's ``put_file_s``/``get_file_s``: an ``SshNode`` or a ``LocalNode``); a node
that fails (unreachable, a missing file) is marked failed, the others go on.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any, cast

from .errors import reason
from .filecopy import Pull, Push
from .group import NodeResult, Outcome, State
from .node import Node
from .pernode import expand_path

__all__ = ["Get", "Put"]

Paths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def _filled(paths: Paths, values: dict[str, Any]) -> str | list[str]:
    """``paths`` (one, or several) with the node's ``values`` filled in."""
    if isinstance(paths, str | os.PathLike):
        return expand_path(os.fspath(paths), values)
    return [expand_path(os.fspath(path), values) for path in paths]


class _Copies(Outcome):
    """What ``Put`` and ``Get`` share: one copy per node, run together."""

    def __init__(self, nodes: Sequence[Node], sources: Paths, destination: str | os.PathLike[str],
                 args: Sequence[str | Sequence[str]] | None, kwds: dict[str, Any]) -> None:
        super().__init__(nodes, args)
        #: each node's copy (a ``Push`` or a ``Pull``, its paths filled in), by rank
        self.copies: list[Push | Pull] = [
            self._copy(_filled(sources, values), _filled(destination, values), kwds)
            for values in (self.values(rank) for rank in range(len(self.nodes)))]
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._started_at: dict[int, float] = {}
        self._ended_at: dict[int, float] = {}

    def _copy(self, sources: str | list[str], destination: str | list[str],
              kwds: dict[str, Any]) -> Push | Pull:
        raise NotImplementedError

    def __repr__(self) -> str:
        first = self.copies[0].label_line() if self.copies else "nothing"
        return f"<{type(self).__name__} {first!r} on {len(self.nodes)} node(s)>"

    # ----- its life
    async def start(self) -> Any:
        """Start the copy on every node at once; returns this object (the copies go
        on: ``wait()`` for them)."""
        if self._tasks:
            raise RuntimeError(f"{self!r} was started already")
        for rank in range(len(self.nodes)):
            self._tasks[rank] = asyncio.ensure_future(self._one(rank))
        return self

    async def _one(self, rank: int) -> None:
        self._started_at[rank] = time.time()
        try:
            await self.copies[rank].co_run(self.nodes[rank])
        except Exception as exc:  # this node's failure: the others go on
            self._errors[rank] = reason(exc)
        finally:
            self._ended_at[rank] = time.time()

    def _has_started(self) -> bool:
        return bool(self._tasks)

    def _running_ranks(self) -> list[int]:
        if not self._tasks and self.nodes:
            raise RuntimeError(f"{self!r}: start() it first")
        return [rank for rank, task in self._tasks.items() if not task.done()]

    async def _end(self, rank: int) -> None:
        await asyncio.wait([self._tasks[rank]])  # its errors: recorded by _one

    async def _stop_one(self, rank: int) -> None:
        task = self._tasks[rank]
        task.cancel()
        await asyncio.wait([task])  # a cancelled copy writes nothing after

    # ----- what it did
    def result(self, rank: int) -> NodeResult:
        """How the copy of the node of index ``rank`` did, so far."""
        started, ended = self._started_at.get(rank), self._ended_at.get(rank)
        duration = ended - started if started is not None and ended is not None else None
        task = self._tasks.get(rank)
        state: State
        why: str | None = None
        if task is None or started is None:
            state = "not started"
        elif not task.done():
            state = "running"
        elif rank in self._marks:
            state = self._marks[rank]
            if state == "timed out":
                why = f"still copying after {self._timeouts[rank]:g}s"
        elif rank in self._errors:
            state, why = "failed", self._errors[rank]
        elif task.cancelled():  # by someone else (its loop ending)
            state = "killed"
        else:
            state = "ok"
        return NodeResult(self.labels[rank], rank, self.copies[rank].label_line(), state,
                          None, duration, why)


class Put(_Copies):
    """Copy ``localpaths`` (one path or several; directories with
    ``recurse=True``) onto each of ``nodes``, at ``remotepath`` (see the module's
    docstring for the per-node values in paths). ``args``: per-node arguments, as
    ``Group``'s; the other keywords go to the node's ``put_file_s`` (``recurse``,
    ``preserve``...), as ``Push``'s do.

    ``chain=True`` (or a dict of ``apssh.chain.Chain`` keywords: ``ssh_options``,
    ``agent_forwarding``...): files only, sent once by the client, each node
    forwarding them to the next (``apssh.chain``; ``chain`` is then the ``Chain``,
    with its ``bytes_sent``)."""

    def __init__(self, nodes: Sequence[Node], localpaths: Paths,
                 remotepath: str | os.PathLike[str] = ".", *,
                 args: Sequence[str | Sequence[str]] | None = None,
                 chain: bool | dict[str, Any] = False, **kwds: Any) -> None:
        super().__init__(nodes, localpaths, remotepath, args, kwds)
        self.chain: Any = None
        if chain:
            from .chain import Chain

            if kwds:
                raise ValueError(f"Put(chain=...) sends files as they are: no {', '.join(kwds)}")
            if len({repr(copy.sources) for copy in self.copies}) > 1:
                raise ValueError("Put(chain=...): the local files must be the same for all nodes")
            sources = self.copies[0].sources if self.copies else []
            self.chain = Chain(cast(Any, self.nodes), sources,
                               [os.fspath(copy.destination) for copy in self.copies],
                               **(chain if isinstance(chain, dict) else {}))

    async def _one(self, rank: int) -> None:
        if self.chain is None:
            return await super()._one(rank)
        self._started_at[rank] = time.time()
        try:
            why = await self.chain.outcome(rank)
            if why is not None:
                self._errors[rank] = why
        finally:
            self._ended_at[rank] = time.time()

    def _copy(self, sources: str | list[str], destination: str | list[str],
              kwds: dict[str, Any]) -> Push:
        return Push(sources, destination, **kwds)


class Get(_Copies):
    """Fetch ``remotepaths`` (one path or several; directories with
    ``recurse=True``) from each of ``nodes`` into ``localpath``, usually named
    after the node: ``"logs/{host}.log"``, ``"results/{host}/"``. The local
    directory is made when missing (``mkdir=False``: not), as ``Pull(mkdir=True)``
    does; a failed copy removes what it wrote. Two nodes whose copies would write
    the same local files are refused (``ValueError``): put ``{host}`` or ``{rank}``
    in ``localpath`` or ``remotepaths``. ``args`` and the other keywords: as
    ``Put``'s (for the node's ``get_file_s``)."""

    def __init__(self, nodes: Sequence[Node], remotepaths: Paths,
                 localpath: str | os.PathLike[str] = ".", *,
                 args: Sequence[str | Sequence[str]] | None = None, mkdir: bool = True,
                 **kwds: Any) -> None:
        super().__init__(nodes, remotepaths, localpath, args, {**kwds, "mkdir": mkdir})
        seen: dict[str, int] = {}
        for rank, copy in enumerate(self.copies):
            key = repr((copy.sources, copy.destination))
            if key in seen:
                raise ValueError(
                    f"Get: {self.labels[seen[key]]} and {self.labels[rank]} would both write "
                    f"{os.fspath(copy.destination)}: put {{host}} or {{rank}} in the local path")
            seen[key] = rank

    def _copy(self, sources: str | list[str], destination: str | list[str],
              kwds: dict[str, Any]) -> Pull:
        return Pull(sources, destination, **kwds)
