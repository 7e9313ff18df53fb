"""A record of a run: a directory of its own with what ran, what it printed, how it ended.

``Scheduler.run(record=DIR)`` (or ``co_orchestrate(record=DIR)``) subscribes a
``Record`` to the run's events (see ``events.py``). It makes a new directory
under ``DIR``, named by the time the run started so that runs sort by time, and
never reused (``2026-11-30@15-04-05``, then ``.002``...). It holds:

- ``run.json``: the run, its jobs, their commands, the nodes (schema in
  docs/records.md, versioned by its ``schema`` field), rewritten as jobs end
  (at most once a second) and at the end, so that a run killed half-way still
  tells what it did;
- ``output/<node>/<job id>.<command index>.stdout`` (and ``.stderr``): what each
  command printed, bytes as received;
- ``scenario.*``: the scenario as run (given by the caller, e.g. the rendered
  YAML; else the jobs' listing) and ``variables.json`` when there are variables;
- ``graph.dot`` and ``graph.svg``: the jobs coloured by outcome (the SVG needs
  graphviz's ``dot``); ``timeline.svg``: one row per job, bars from start to end
  (needs matplotlib: ``pip install 'nepi-ng[plot]'``). What could not be drawn is
  said in ``run.json``'s ``drawings``, never fails the run.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .events import (
    CommandEnded,
    CommandStarted,
    ConnectionClosed,
    ConnectionFailed,
    ConnectionOpened,
    Event,
    JobEnded,
    JobStarted,
    Output,
    RunEnded,
    RunStarted,
)

if TYPE_CHECKING:
    from .job import AbstractJob

__all__ = ["SCHEMA", "Record", "new_run_dir"]

#: the ``schema`` of the ``run.json`` written here; tools check it before reading
SCHEMA = "nepi-ng.run/1"

#: how often (seconds) ``run.json`` is rewritten while jobs end
SAVE_EVERY = 1.0

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def new_run_dir(parent: str | Path | None = None) -> Path:
    """A new directory under ``parent``, never one of an earlier run: named by the
    time to the second (``2026-11-30@15-04-05``, no ``:``), with ``.002``,
    ``.003``... when several runs start in the same second: names sort by time."""
    base = Path(parent or ".") / time.strftime("%Y-%m-%d@%H-%M-%S")
    path, number = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            number += 1
            path = base.with_name(f"{base.name}.{number:03d}")


def safe_name(name: str) -> str:
    """``name`` as one path component that stays where it is put."""
    cleaned = _UNSAFE.sub("_", name) or "_"
    return "_" if cleaned.strip(".") == "" else cleaned


def _job_node(job: AbstractJob) -> str | None:
    node = getattr(job, "node", None)
    name = getattr(node, "hostname", None)
    return str(name) if name is not None else None


class Record:
    """Keeps one run in a new directory under ``parent`` (see the module's doc).

    ``scenario``: the scenario's text as run, saved as ``scenario_name``;
    ``variables``: a mapping read each time ``run.json`` is written (so captured
    values show), saved in ``variables.json`` and in ``run.json``.
    """

    def __init__(self, parent: str | Path, *, scenario: str | None = None,
                 scenario_name: str = "scenario.txt",
                 variables: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
                 argv: list[str] | None = None, previous: dict[str, Any] | None = None
                 ) -> None:
        #: with ``previous`` (its ``run.json``), ``parent`` is the record a run resumes
        self.previous = previous
        self.path = Path(parent) if previous is not None else new_run_dir(parent)
        self.scenario = scenario
        self.scenario_name = safe_name(scenario_name)
        self.variables = variables
        self.argv = argv
        self.scheduler: Any = None
        self.started: float | None = None
        self.ended: float | None = None
        self.outcome: str | None = None
        self.reason: str | None = None
        self._jobs: dict[AbstractJob, dict[str, Any]] = {}
        self._commands: dict[tuple[Any, str, int], dict[str, Any]] = {}
        self._nodes: dict[str, dict[str, Any]] = {}
        self._files: dict[tuple[Any, str, int, str], IO[bytes]] = {}
        self._saved = 0.0
        self.drawings: dict[str, str] = {}

    # ----- events
    def __call__(self, event: Event) -> None:
        """The subscriber: record ``event``."""
        if type(event) is Output:
            self._output(event)
        elif isinstance(event, CommandStarted):
            entry = self._command(event.job, event.node, event.index, event.command)
            entry.update(start=event.time, attempts=event.attempt, outcome="running")
        elif isinstance(event, CommandEnded):
            entry = self._command(event.job, event.node, event.index, event.command)
            entry.update(end=event.time, duration=event.duration, outcome=event.outcome,
                         status=event.status, reason=event.reason, attempts=event.attempt)
            self._close_files(event.job, event.node, event.index)
        elif isinstance(event, JobStarted):
            self._job(event.job).update(start=event.time, outcome="running")
        elif isinstance(event, JobEnded):
            self._job(event.job).update(end=event.time, duration=event.duration,
                                        outcome=event.outcome, reason=event.reason)
            if event.time - self._saved >= SAVE_EVERY:
                self.save()
        elif isinstance(event, ConnectionOpened | ConnectionFailed | ConnectionClosed):
            self._connection(event)
        elif isinstance(event, RunStarted):
            if self.scheduler is None:
                self._open(event)
        elif isinstance(event, RunEnded) and event.scheduler is self.scheduler:
            self.ended, self.outcome, self.reason = event.time, event.outcome, event.reason
            self.close()

    def _open(self, event: RunStarted) -> None:
        from . import graph, listing

        self.scheduler, self.started = event.scheduler, event.time
        plans = graph.plan_tree(self.scheduler)
        if self.scenario is None:
            lines = listing.list_lines(self.scheduler, plans, True, False)
            self.scenario = "".join(line + "\n" for line in lines)
        scenario = self.path / self.scenario_name
        if self.previous is None or not scenario.exists():
            scenario.write_text(self.scenario)

        def walk(scheduler: Any) -> None:
            for job in plans[scheduler].order:
                self._job(job)
                if job.is_scheduler:
                    walk(job)
        walk(self.scheduler)
        self.save()

    def _job(self, job: AbstractJob) -> dict[str, Any]:
        entry = self._jobs.get(job)
        if entry is None and self.previous is not None and job in self.scheduler._skip:
            kept = {old["id"]: old for old in self.previous["jobs"]}.get(job.repr_id())
            if kept is not None:
                entry = self._jobs[job] = kept
        if entry is None:
            parent = job.scheduler
            entry = self._jobs[job] = {
                "id": job.repr_id(), "label": job._get_text_label(),
                "type": type(job).__name__, "node": _job_node(job),
                "scheduler": (parent.repr_id()  # type: ignore[union-attr]
                              if parent is not self.scheduler
                              and getattr(parent, "is_scheduler", False) else None),
                "requires": [req.repr_id() for req in job.required],
                "critical": job.is_critical(), "forever": job.forever,
                "start": None, "end": None, "duration": None,
                "outcome": "not run", "reason": None, "commands": [],
            }
        return entry

    def _command(self, job: Any, node: str, index: int, command: str) -> dict[str, Any]:
        key = (job, node, index)
        entry = self._commands.get(key)
        if entry is None:
            entry = self._commands[key] = {
                "index": index, "node": node, "command": command, "start": None,
                "end": None, "duration": None, "outcome": "not run", "status": None,
                "reason": None, "attempts": 0, "stdout": None, "stderr": None,
            }
            if job is not None:
                self._job(job)["commands"].append(entry)
        return entry

    def _output(self, event: Output) -> None:
        key = (event.job, event.node, event.index, event.stream)
        out = self._files.get(key)
        if out is None:
            prefix = event.job.repr_id() if event.job is not None else "process"
            relative = (Path("output") / safe_name(event.node)
                        / f"{safe_name(prefix)}.{event.index}.{safe_name(event.stream)}")
            (self.path / relative).parent.mkdir(parents=True, exist_ok=True)
            out = self._files[key] = open(self.path / relative, "ab")  # noqa: SIM115
            entry = self._command(event.job, event.node, event.index, "")
            entry[event.stream] = str(relative)
        out.write(event.data)

    def _close_files(self, job: Any, node: str, index: int) -> None:
        for stream in ("stdout", "stderr"):
            out = self._files.pop((job, node, index, stream), None)
            if out is not None:
                out.close()

    def _connection(self, event: ConnectionOpened | ConnectionFailed | ConnectionClosed
                    ) -> None:
        entry = self._nodes.setdefault(event.node, {
            "connected": None, "connect_duration": None, "failed": None, "closed": None,
            "close_reason": None, "connections": 0})
        if isinstance(event, ConnectionOpened):
            entry.update(connected=event.time, connect_duration=event.duration)
            entry["connections"] += 1
        elif isinstance(event, ConnectionFailed):
            entry.update(failed=event.reason)
        else:
            entry.update(closed=event.time, close_reason=event.reason)

    # ----- the files
    def as_dict(self) -> dict[str, Any]:
        """What ``run.json`` holds now."""
        variables = self.variables() if callable(self.variables) else self.variables
        return {
            "schema": SCHEMA,
            "argv": self.argv,
            "started": self.started,
            "ended": self.ended,
            "duration": (self.ended - self.started
                         if self.started is not None and self.ended is not None else None),
            "outcome": self.outcome or "running",
            "reason": self.reason,
            "scenario": self.scenario_name,
            "variables": dict(variables) if variables is not None else None,
            "jobs": list(self._jobs.values()),
            "nodes": self._nodes,
            "drawings": self.drawings,
            "runs": self._runs(),
        }

    def _runs(self) -> list[dict[str, Any]]:
        """Each run this record holds (more than one once resumed)."""
        earlier = list(self.previous.get("runs", [])) if self.previous is not None else []
        this = {"started": self.started, "ended": self.ended,
                "outcome": self.outcome or "running", "reason": self.reason,
                "skipped": sum(1 for job in self._jobs
                               if self.scheduler is not None and job in self.scheduler._skip)}
        return [*earlier, this]

    def save(self) -> None:
        """Write ``run.json`` (atomically: a reader never sees half a file)."""
        self._saved = time.time()
        data = self.as_dict()
        _write_json(self.path / "run.json", data)
        if data["variables"] is not None:
            _write_json(self.path / "variables.json", data["variables"])

    def close(self) -> None:
        """Close the output files, draw the graph and the timeline, save ``run.json``."""
        for out in self._files.values():
            out.close()
        self._files.clear()
        if self.scheduler is not None:
            self._draw()
        self.save()

    def _draw(self) -> None:
        from . import dot

        (self.path / "graph.dot").write_text(
            dot.dot_format(self.scheduler, show_outcome=True))
        try:
            dot.run_dot((self.path / "graph.dot").read_text(), "svg",
                        self.path / "graph.svg")
            self.drawings["graph"] = "graph.svg"
        except Exception as exc:
            self.drawings["graph"] = f"not drawn: {exc}"
        try:
            from .timeline import draw_timeline
        except ImportError as exc:  # pragma: no cover - the module itself is ours
            self.drawings["timeline"] = f"not drawn: {exc}"
            return
        try:
            draw_timeline(self.as_dict(), self.path / "timeline.svg")
            self.drawings["timeline"] = "timeline.svg"
        except Exception as exc:
            self.drawings["timeline"] = f"not drawn: {exc}"


def _write_json(path: Path, data: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1, default=str) + "\n")
    os.replace(temporary, path)
