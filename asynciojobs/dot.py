"""Graphs of a scheduler: DOT text, files, pictures (through graphviz's ``dot``).

The DOT text follows asynciojobs 0.21: nodes named by job ids, critical jobs in
red, forever jobs dashed, nested schedulers as clusters whose incoming and
outgoing edges point at their middle entry and exit jobs. With ``outcome=True``
each job is also filled with the colour of how it ended (done, failed, cancelled,
never ran), so one picture tells what happened.

``dot`` is run with an argument list, never through a shell.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import graph
from .dotstyle import DotStyle
from .errors import SchedulerError
from .listing import outcome
from .readiness import edge_label

if TYPE_CHECKING:
    from .job import AbstractJob
    from .scheduler import PureScheduler

#: fill colours of the outcome view (keys: ``listing.OUTCOMES``)
OUTCOME_COLOURS = {
    "done": "#b7e4c7",
    "failed": "#f4a3a3",
    "cancelled": "#ffe08a",
    "never ran": "#e0e0e0",
}


class GraphvizError(SchedulerError):
    """The ``dot`` program is missing or failed; the message says which and why."""


def _style(job: AbstractJob, show_outcome: bool) -> DotStyle:
    style = job.dot_style()
    if show_outcome:
        shapes = list(style.get("style", []))  # type: ignore[call-overload]
        style["style"] = [*shapes, "filled"]
        style["fillcolor"] = OUTCOME_COLOURS[outcome(job)]
    return style


def _middle(jobs: list[AbstractJob]) -> AbstractJob:
    return jobs[(len(jobs) - 1) // 2]


def entry_point(job: AbstractJob, plans: dict[PureScheduler, graph.Plan]) -> AbstractJob:
    """The atomic job an edge into ``job`` points at (inside nested clusters)."""
    while job.is_scheduler:
        entries = plans[job].entries  # type: ignore[index]
        if not entries:
            raise ValueError("no entry found")
        job = _middle(entries)
    return job


def exit_point(job: AbstractJob, plans: dict[PureScheduler, graph.Plan]) -> AbstractJob:
    """The atomic job an edge out of ``job`` starts from (finite exits preferred)."""
    while job.is_scheduler:
        plan = plans[job]  # type: ignore[index]
        exits = [j for j in plan.order if j not in plan.successors]
        finite = [j for j in exits if not j.forever]
        if not exits:
            raise ValueError("no exit found")
        job = _middle(finite or exits)
    return job


def dot_format(scheduler: PureScheduler, show_outcome: bool = False) -> str:
    """The DOT text of ``scheduler`` (jobs numbered first)."""
    plans = graph.plan_tree(scheduler)
    graph.number_jobs(scheduler, plans)
    lines = ["digraph asynciojobs{", "compound=true;", "graph [];"]

    def walk(sched: PureScheduler) -> None:
        for job in plans[sched].order:
            if job.is_scheduler:
                lines.append(f"subgraph {job.dot_cluster_name()}{{")  # type: ignore[attr-defined]
                lines.append("compound=true;")
                lines.append(f"graph [{_style(job, show_outcome)!r}];")
                walk(job)  # type: ignore[arg-type]
                lines.append("}")
            else:
                lines.append(f"{job.repr_id()} [{_style(job, show_outcome)!r}]")
            for req in job._required or ():
                attributes = []
                if req.is_scheduler:
                    attributes.append(f"ltail={req.dot_cluster_name()}")  # type: ignore[attr-defined]
                if job.is_scheduler:
                    attributes.append(f"lhead={job.dot_cluster_name()}")  # type: ignore[attr-defined]
                when = edge_label(job, req) if job._conditions else None
                if when is not None:  # a readiness edge: dashed, labelled
                    label = when.replace("\\", "\\\\").replace('"', '\\"')
                    attributes += ["style=dashed", f'label="{label}"']
                edge = (f"{exit_point(req, plans).repr_id()} -> "
                        f"{entry_point(job, plans).repr_id()}")
                lines.append(f"{edge} [{','.join(attributes)}];" if attributes else f"{edge};")

    walk(scheduler)
    lines.append("}")
    return "\n".join(lines) + "\n"


def export_as_dotfile(scheduler: PureScheduler, filename: str | Path,
                      show_outcome: bool = False) -> str:
    """Write the DOT text to ``filename``; returns ``(Over)wrote {filename}``."""
    Path(filename).write_text(dot_format(scheduler, show_outcome))
    return f"(Over)wrote {filename}"


def run_dot(source: str, suffix: str, output: Path | None = None) -> bytes:
    """Render DOT ``source`` in format ``suffix``; to ``output``, or returned as bytes."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizError(
            f"cannot export as {suffix}: the 'dot' program was not found "
            "(install graphviz, e.g. apt-get install graphviz)"
        )
    command = [dot, f"-T{suffix}"]
    if output is not None:
        command += ["-o", str(output)]
    done = subprocess.run(command, input=source.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise GraphvizError(
            f"dot -T{suffix} failed (exit {done.returncode}): {reason[0] if reason else '?'}"
        )
    return done.stdout


def export_as_graphic(scheduler: PureScheduler, filename: str | Path, suffix: str,
                      show_outcome: bool = False) -> str:
    """Write ``{filename}.dot`` and ``{filename}.{suffix}``; returns the latter's name.

    A ``filename`` that already ends in ``.{suffix}`` is not suffixed twice.
    Raises ``GraphvizError`` when ``dot`` is missing or fails.
    """
    base = str(filename)
    if base.endswith(f".{suffix}"):
        base = base[: -len(suffix) - 1]
    source = dot_format(scheduler, show_outcome)
    Path(f"{base}.dot").write_text(source)
    output = Path(f"{base}.{suffix}")
    run_dot(source, suffix, output)
    return str(output)


def graph_source(scheduler: PureScheduler, show_outcome: bool = False) -> Any:
    """A ``graphviz.Source`` of the scheduler (needs the ``graphviz`` package)."""
    try:
        import graphviz  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImportError(
            "graph() needs the graphviz package: pip install graphviz "
            "(or pip install 'nepi-ng[graph]')"
        ) from exc
    return graphviz.Source(source=dot_format(scheduler, show_outcome))


def repr_svg(scheduler: PureScheduler) -> str | None:
    """The scheduler as SVG for Jupyter (outcomes shown once it ran), or None."""
    ran = any(not job.is_idle() for job in graph.iterate_jobs(scheduler))
    try:
        return run_dot(dot_format(scheduler, show_outcome=ran), "svg").decode()
    except (GraphvizError, ValueError, SchedulerError):
        return None
