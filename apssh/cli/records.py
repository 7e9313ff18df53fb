"""``nepi-ng report DIR``: read a run's record (``run.json``) back, for people or tools.

DIR is a record (it holds ``run.json``) or a directory of records (the latest is
read: names sort by time). The table has one line per job, then one per command
under it; ``--json`` prints ``run.json`` with its event log folded in;
``--failed`` prints the nodes where something failed, folded (``fit[01-03,07]``),
in a form ``-t`` accepts, so that ``apssh -t "$(nepi-ng report DIR --failed)" ...``
runs again on them only;
``--output ID`` prints what job ID's commands printed (``--stderr``: their stderr);
``--draw`` draws the graph and the timeline of a record made without them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from asynciojobs.record import RecordError, read_run

from .errors import OK, USAGE

__all__ = ["failed_nodes", "find_record", "job_output", "report_main", "table"]


def find_record(path: Path) -> Path:
    """The record at ``path``, or the latest record under it."""
    if (path / "run.json").is_file():
        return path
    if not path.is_dir():
        raise RecordError(f"{path}: no such directory")
    found = sorted(p for p in path.iterdir() if (p / "run.json").is_file())
    if not found:
        raise RecordError(f"{path}: no run.json here nor in its subdirectories")
    return found[-1]


def failed_nodes(run: dict[str, Any]) -> list[str]:
    """The nodes where a command or a job failed, or that could not be reached."""
    nodes: dict[str, None] = {}
    bad = ("failed", "timeout", "cancelled")
    for job in run["jobs"]:
        if job["outcome"] == "stopped":  # a forever job, at the end of a good run
            continue
        for command in job["commands"]:
            if command["outcome"] in bad:
                nodes.setdefault(command["node"])
        if job["outcome"] in bad and job.get("node"):
            nodes.setdefault(job["node"])
    for name, node in run.get("nodes", {}).items():
        if node.get("failed"):
            nodes.setdefault(name)
    return list(nodes)


def _seconds(value: Any) -> str:
    return f"{value:.2f}s" if isinstance(value, int | float) else "-"


def _status(command: dict[str, Any]) -> str:
    status = command.get("status")
    if status is None:
        return command["outcome"]
    return f"exit {status}" if isinstance(status, int) else f"signal {status}"


def table(run: dict[str, Any], name: str) -> list[str]:
    """The lines of the report of ``run`` (recorded in directory ``name``)."""
    origin = run.get("started")
    counts: dict[str, int] = {}
    for job in run["jobs"]:
        counts[job["outcome"]] = counts.get(job["outcome"], 0) + 1
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(origin)) if origin else "?"
    tally = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
    lines = [f"{name}: {run['outcome']} in {_seconds(run.get('duration'))}, started {when}; "
             f"{len(run['jobs'])} jobs: {tally}"]
    if run.get("reason"):
        lines.append(f"  {run['reason']}")
    lines.append(f"{'id':>4} {'outcome':<9} {'start':>8} {'took':>8}  job")

    def offset(value: Any) -> str:
        if isinstance(value, int | float) and isinstance(origin, int | float):
            return f"+{value - origin:.2f}s"
        return "-"

    for job in run["jobs"]:
        where = f" @{job['node']}" if job.get("node") else ""
        why = f": {job['reason']}" if job.get("reason") else ""
        lines.append(f"{job['id']:>4} {job['outcome']:<9} {offset(job['start']):>8} "
                     f"{_seconds(job['duration']):>8}  {job['label']}{where}{why}")
        for command in job["commands"]:
            tries = f" ({command['attempts']} attempts)" if command.get("attempts", 1) > 1 else ""
            why = f": {command['reason']}" if command.get("reason") else ""
            lines.append(f"{'':>4} {_status(command):<9} {offset(command['start']):>8} "
                         f"{_seconds(command['duration']):>8}    [{command['index']}] "
                         f"{command['node']}: {command['command']}{tries}{why}")
    for node_name, node in sorted(run.get("nodes", {}).items()):
        if node.get("failed"):
            lines.append(f"node {node_name}: {node['failed']}")
    return lines


def job_output(where: Path, run: dict[str, Any], job_id: str, stream: str) -> bytes:
    """What the commands of job ``job_id`` printed on ``stream``, in order."""
    from asynciojobs.record import command_output

    for job in run["jobs"]:
        if job["id"] == job_id or job["id"].lstrip("0") == job_id.lstrip("0"):
            return b"".join(command_output(where, command, stream)
                            for command in job["commands"])
    raise RecordError(f"{where}: no job {job_id} (ids are in the first column of the table)")


def report_main(path: str, *, as_json: bool = False, failed: bool = False,
                output: str | None = None, stderr: bool = False, draw: bool = False) -> int:
    """``nepi-ng report``: 0, or 2 with one line when ``path`` holds no record."""
    try:
        where = find_record(Path(path))
        run = read_run(where)
        if output is not None:
            data = job_output(where, run, output, "stderr" if stderr else "stdout")
    except RecordError as exc:
        print(f"nepi-ng report: {exc}", file=sys.stderr)
        return USAGE
    if output is not None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return OK
    if draw:
        from asynciojobs.record import draw as draw_record

        for name, what in draw_record(where, run).items():
            print(f"{name}: {where / what if what.endswith('.svg') else what}")
        return OK
    if as_json:
        print(json.dumps(run, indent=1))
    elif failed:
        from ..names import fold

        nodes = failed_nodes(run)
        if nodes:
            print(fold(nodes))
    else:
        print("\n".join(table(run, where.name)))
    return OK
