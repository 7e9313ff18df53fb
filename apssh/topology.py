"""Closing the connections of a scenario, and drawing which node is reached through which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asynciojobs import PureScheduler
from asynciojobs.dot import run_dot
from asynciojobs.dotstyle import dot_quote
from asynciojobs.loop import run_in_thread_loop

from .sshproxy import SshProxy


def nodes_in(scheduler: PureScheduler) -> list[SshProxy]:
    """The ssh nodes the scheduler's jobs use, their gateways included (creation order)."""
    found: dict[SshProxy, None] = {}
    for job in scheduler.iterate_jobs():
        node = getattr(job, "node", None)
        while isinstance(node, SshProxy):
            found[node] = None
            node = node.gateway
    return list(found)


async def co_close_ssh_in_scheduler(scheduler: PureScheduler) -> None:
    """Close every ssh connection the scheduler's jobs use, remotest nodes first."""
    nodes = nodes_in(scheduler)
    for distance in sorted({node.distance() for node in nodes}, reverse=True):
        for node in nodes:
            if node.distance() == distance:
                await node.close()


def close_ssh_in_scheduler(scheduler: PureScheduler) -> None:
    """Synchronous ``co_close_ssh_in_scheduler``, in the loop ``run()`` uses."""
    run_in_thread_loop(co_close_ssh_in_scheduler(scheduler))


def topology_dot(scheduler: PureScheduler) -> str:
    """A DOT graph: the local node, each ssh node, and an edge from each gateway."""
    nodes = nodes_in(scheduler)
    ids = {node: index for index, node in enumerate(nodes, 1)}
    lines = ["digraph asynciojobs_topology {", '0 [label="Local Node"]']
    for node, index in ids.items():
        lines.append(f"{index} [label={dot_quote(node.__user_host__())},shape=box]")
    for node, index in ids.items():
        lines.append(f"{ids[node.gateway] if node.gateway is not None else 0} -> {index}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def topology_graph(scheduler: PureScheduler) -> Any:
    """A ``graphviz.Source`` of the topology (needs the graphviz package)."""
    import graphviz  # type: ignore[import-untyped]

    return graphviz.Source(topology_dot(scheduler))


def topology_as_dotfile(scheduler: PureScheduler, filename: str | Path) -> str:
    """Write the topology's DOT text to ``filename``."""
    Path(filename).write_text(topology_dot(scheduler))
    return f"(Over)wrote {filename}"


def topology_as_pngfile(scheduler: PureScheduler, filename: str | Path) -> str:
    """Write ``{filename}.dot`` and ``{filename}.png``; returns the png's name."""
    source = topology_dot(scheduler)
    Path(f"{filename}.dot").write_text(source)
    run_dot(source, "png", Path(f"{filename}.png"))
    return f"{filename}.png"
