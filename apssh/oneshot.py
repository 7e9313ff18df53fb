"""The synchronous one-shot runs (``Process.run_sync``, ``Group.run_sync``, the
copies'): a coroutine in an event loop of its own, whose connections close with it.

A connection belongs to its event loop. A one-shot run makes a loop, runs, and
closes that loop: the nodes it used (and the gateways behind them) are closed in
it first, so no connection is left to a closed loop (no "Event loop is closed"
when it is collected). The next use of those nodes, in any loop, reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from asynciojobs.loop import in_running_loop

__all__ = ["run_closing"]

T = TypeVar("T")


def run_closing(make: Callable[[], Awaitable[T]], nodes: Sequence[Any], what: str) -> T:
    """``await make()`` in an event loop of its own (for ``run_sync``), then close
    ``nodes`` and their gateways (the farthest first) in that loop: a connection
    belongs to its loop, and is never left to a closed one. ``what``: the class
    whose ``run_sync`` this is, for the error raised inside a running loop."""
    if in_running_loop():
        raise RuntimeError(f"{what}.run_sync() cannot be called from a running event loop "
                           f"(a notebook, an async function): use `await {what.lower()}.run()`")

    async def main() -> T:
        try:
            return await make()
        finally:
            await _close_all(nodes)

    with asyncio.Runner() as runner:
        return runner.run(main())


async def _close_all(nodes: Sequence[Any]) -> None:
    """Close ``nodes`` and the gateways behind them, by distance (farthest first)."""
    found: dict[int, Any] = {}
    for node in nodes:
        while node is not None and id(node) not in found:
            found[id(node)] = node
            node = getattr(node, "gateway", None)
    by_distance: dict[int, list[Any]] = {}
    for node in found.values():
        distance = node.distance() if hasattr(node, "distance") else 1
        by_distance.setdefault(distance, []).append(node)
    for distance in sorted(by_distance, reverse=True):
        await asyncio.gather(*(node.close() for node in by_distance[distance]),
                             return_exceptions=True)
