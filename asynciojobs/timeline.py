"""The timeline of a recorded run: one row per job, a bar from its start to its end.

Drawn with matplotlib (an optional extra: ``pip install 'nepi-ng[plot]'``),
imported only here, without pyplot (no global state, no display needed). Bars
are coloured by outcome; a job still running when the record was written runs
to the end of the run; jobs that did not run have no bar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["COLOURS", "draw_timeline"]

#: the colour of each outcome (the graph uses the same meanings)
COLOURS = {
    "ok": "#4caf50",
    "failed": "#e53935",
    "cancelled": "#fb8c00",
    "timeout": "#8e24aa",
    "running": "#1e88e5",
    "stopped": "#90a4ae",
}

#: rows past this count are drawn without their labels (they would overlap)
MAX_LABELLED = 300


def draw_timeline(run: dict[str, Any], output: str | Path) -> Path:
    """Draw the jobs of ``run`` (a ``run.json`` as a dict) into ``output`` (SVG,
    or any format matplotlib knows by the suffix); returns the path.

    Raises ``ImportError`` with the install command when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError as exc:
        raise ImportError("matplotlib is needed for timelines: "
                          "pip install 'nepi-ng[plot]'") from exc
    origin = run.get("started") or 0.0
    finish = run.get("ended") or max(
        (job["end"] or job["start"] for job in run["jobs"] if job["start"]), default=origin)
    rows = sorted((job for job in run["jobs"] if job["start"] is not None),
                  key=lambda job: (job["start"], job["id"]))
    height = min(0.22 * len(rows) + 1.5, 400)
    figure = Figure(figsize=(10, height))
    axes = figure.add_subplot()
    # a job that took no time still shows, as a sliver
    sliver = max(finish - origin, 1e-3) / 400
    starts = [job["start"] - origin for job in rows]
    ends = [max((job["end"] if job["end"] is not None else finish) - origin, start + sliver)
            for job, start in zip(rows, starts, strict=True)]
    colours = [COLOURS.get(job["outcome"], "#9e9e9e") for job in rows]
    # one artist for all the bars (a thick line each): 1,000 patches take 0.4 s
    points_per_row = (height - 1.5) * 72 / max(len(rows), 1)
    axes.hlines(range(len(rows)), starts, ends, colors=colours,
                linewidth=max(points_per_row * 0.7, 0.5))
    axes.set_xlim(left=0)
    axes.set_ylim(len(rows) - 0.5, -0.5)
    if len(rows) <= MAX_LABELLED:
        axes.set_yticks(range(len(rows)))
        axes.set_yticklabels([_label(job) for job in rows], fontsize=7)
    else:
        axes.set_ylabel(f"{len(rows)} jobs, in start order")
    axes.set_xlabel("seconds since the start of the run")
    duration = run.get("duration")
    took = f" in {duration:.2f}s" if isinstance(duration, int | float) else ""
    axes.set_title(f"{len(rows)} jobs, {run.get('outcome', '?')}{took}")
    shown = sorted({job["outcome"] for job in rows} & set(COLOURS))
    if shown:
        axes.legend(handles=[Patch(color=COLOURS[name], label=name) for name in shown],
                    loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7)
    axes.grid(axis="x", linestyle=":", linewidth=0.5)
    figure.tight_layout()
    path = Path(output)
    figure.savefig(path)
    return path


def _label(job: dict[str, Any]) -> str:
    label = str(job.get("label") or "")
    if len(label) > 40:
        label = label[:39] + "…"
    node = f" @{job['node']}" if job.get("node") else ""
    return f"{job['id']} {label}{node}"
