"""A record of a run: a directory of its own with what ran, what it printed, how it ended.

``Scheduler.run(record=DIR)`` (or ``co_orchestrate(record=DIR)``) subscribes a
``Record`` to the run's events (see ``events.py``). It makes a new directory
under ``DIR``, named by the time the run started so that runs sort by time, and
never reused (``2026-11-30@15-04-05``, then ``.002``...). It holds:

- ``run.json``: the run, its jobs, their commands, the nodes (schema in
  docs/records.md, versioned by its ``schema`` field), rewritten as jobs end
  (at most once a second) and at the end, so that a run killed half-way still
  tells what it did;
- ``output/<node>.stdout`` and ``output/<node>.stderr``: what the commands on that
  node printed, bytes as received, in the order they came (one file per node and
  stream: a record of 1,000 commands does not create 1,000 files). Each command's
  share is listed in ``run.json`` as ``[offset, length]`` segments of that file
  (one segment unless commands on the node printed at the same time);
  ``command_output()`` reads it back, ``nepi-ng report DIR --output ID`` prints it;
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
from typing import IO, TYPE_CHECKING, Any, ClassVar

import orjson

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
    node_of,
)

if TYPE_CHECKING:
    from .job import AbstractJob

__all__ = ["SCHEMA", "Record", "RecordError", "command_output", "draw", "new_run_dir",
           "read_run"]

#: the ``schema`` of the ``run.json`` written here; tools check it before reading
SCHEMA = "nepi-ng.run/1"

#: how often (seconds) ``run.json`` is rewritten while jobs end, at most: also never
#: more than 5% of the time (a big run.json is written less often)
SAVE_EVERY = 1.0

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class RecordError(ValueError):
    """A directory that holds no record this version reads; the message is one line."""


def read_run(path: str | Path) -> dict[str, Any]:
    """The ``run.json`` of the record at ``path`` (``RecordError`` if there is none
    this version reads)."""
    where = Path(path) / "run.json"
    try:
        run = json.loads(where.read_text())
    except (OSError, ValueError) as exc:
        raise RecordError(f"{where}: cannot read a record: {exc}") from None
    schema = run.get("schema") if isinstance(run, dict) else None
    if schema != SCHEMA:
        raise RecordError(f"{where}: not a nepi-ng run record this version reads "
                          f"(schema {schema!r}, expected {SCHEMA!r})")
    return run


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


class Record:
    """Keeps one run in a new directory under ``parent`` (see the module's doc).

    ``scenario``: the scenario's text as run, saved as ``scenario_name``;
    ``variables``: a mapping read each time ``run.json`` is written (so captured
    values show), saved in ``variables.json`` and in ``run.json``.
    """

    #: what each kind of event does to a record (filled below the class)
    handlers: ClassVar[dict[type[Event], Callable[[Record, Any], None]]]

    def __init__(self, parent: str | Path, *, scenario: str | None = None,
                 scenario_name: str = "scenario.txt",
                 variables: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
                 argv: list[str] | None = None, previous: dict[str, Any] | None = None,
                 draw: bool = True) -> None:
        #: with ``previous`` (its ``run.json``), ``parent`` is the record a run resumes
        self.previous = previous
        #: the jobs of ``previous``, by id
        self._kept = {old["id"]: old for old in previous["jobs"]} if previous else {}
        self.path = Path(parent) if previous is not None else new_run_dir(parent)
        #: draw the graph and the timeline at the end (False: ``nepi-ng report
        #: --draw`` does it later; matplotlib's import alone takes about 0.5 s)
        self.draw = draw
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
        self._files: dict[tuple[str, str], IO[bytes]] = {}
        self._sizes: dict[tuple[str, str], int] = {}
        self._relative: dict[tuple[str, str], str] = {}
        #: each job's entry as encoded when it ended (or by the last save), until an
        #: event changes it: a save encodes only the others
        self._encoded: dict[AbstractJob, bytes] = {}
        self._next_save = 0.0
        self.drawings: dict[str, str] = {}

    # ----- events
    def __call__(self, event: Event) -> None:
        """The subscriber: record ``event``."""
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(self, event)

    def _command_started(self, event: CommandStarted) -> None:
        entry = self._command(event.job, event.node, event.index, event.command)
        entry["start"], entry["attempts"], entry["outcome"] = (
            event.time, event.attempt, "running")

    def _command_ended(self, event: CommandEnded) -> None:
        entry = self._command(event.job, event.node, event.index, event.command)
        entry["end"], entry["duration"], entry["outcome"] = (
            event.time, event.duration, event.outcome)
        entry["status"], entry["reason"], entry["attempts"] = (
            event.status, event.reason, event.attempt)

    def _job_started(self, event: JobStarted) -> None:
        self._encoded.pop(event.job, None)
        entry = self._job(event.job)
        entry["start"], entry["outcome"] = event.time, "running"

    def _job_ended(self, event: JobEnded) -> None:
        entry = self._job(event.job)
        entry["end"], entry["duration"], entry["outcome"], entry["reason"] = (
            event.time, event.duration, event.outcome, event.reason)
        # encoded once, as it ends: a save then encodes only the jobs still running
        self._encoded[event.job] = _dumps(entry)
        if event.time >= self._next_save:
            self.save()

    def _run_started(self, event: RunStarted) -> None:
        if self.scheduler is None:
            self._open(event)

    def _run_ended(self, event: RunEnded) -> None:
        if event.scheduler is self.scheduler:
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
        for job in graph.jobs_in_order(self.scheduler, plans):
            self._job(job)
        self._next_save = self.started + SAVE_EVERY  # a run of a second writes it once

    def _job(self, job: AbstractJob) -> dict[str, Any]:
        entry = self._jobs.get(job)
        if entry is None and self.previous is not None and job in self.scheduler._skip:
            kept = self._kept.get(job.repr_id())
            if kept is not None:
                entry = self._jobs[job] = kept
        if entry is None:
            parent = job.scheduler
            entry = self._jobs[job] = {
                "id": job.repr_id(), "label": job._get_text_label(),
                "type": type(job).__name__, "node": node_of(job),
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
        """The entry of a command, made on first sight; its job's is to encode again."""
        self._encoded.pop(job, None)
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
        key = (event.node, event.stream)
        out = self._files.get(key)
        if out is None:
            relative = self._relative[key] = (
                f"output/{safe_name(event.node)}.{safe_name(event.stream)}")
            (self.path / "output").mkdir(exist_ok=True)
            out = self._files[key] = open(self.path / relative, "ab")  # noqa: SIM115
            self._sizes[key] = out.tell()
        offset = self._sizes[key]
        out.write(event.data)
        self._sizes[key] = offset + len(event.data)
        entry = self._command(event.job, event.node, event.index, "")
        kept = entry[event.stream]
        if kept is None:
            kept = entry[event.stream] = {"file": self._relative[key], "segments": []}
        segments = kept["segments"]
        if segments and segments[-1][0] + segments[-1][1] == offset:
            segments[-1][1] += len(event.data)  # what follows its own last bytes
        else:
            segments.append([offset, len(event.data)])

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
        return {**self._head(), "jobs": list(self._jobs.values())}

    def _head(self) -> dict[str, Any]:
        """``as_dict()`` but its jobs."""
        variables = self.variables() if callable(self.variables) else self.variables
        first = self.previous or {}
        return {
            "schema": SCHEMA,
            "argv": self.argv,
            # a resumed record: from the start of its first run, the runs' time added
            "started": first.get("started", self.started),
            "ended": self.ended,
            "duration": (self.ended - self.started + (first.get("duration") or 0.0)
                         if self.started is not None and self.ended is not None else None),
            "outcome": self.outcome or "running",
            "reason": self.reason,
            "scenario": self.scenario_name,
            "variables": dict(variables) if variables is not None else None,
            "nodes": self._nodes,
            "drawings": self.drawings,
            "runs": self._runs(),
        }

    def _runs(self) -> list[dict[str, Any]]:
        """Each run this record holds (more than one once resumed)."""
        earlier = list(self.previous.get("runs", [])) if self.previous is not None else []
        this = {"started": self.started, "ended": self.ended,
                "outcome": self.outcome or "running", "reason": self.reason,
                # the jobs resume picked from this tree to complete without running
                "skipped": len(self.scheduler._skip) if self.scheduler is not None else 0}
        return [*earlier, this]

    def save(self) -> None:
        """Write ``run.json`` (atomically: a reader never sees half a file), after
        the outputs received so far."""
        began = time.time()
        for out in self._files.values():
            out.flush()
        head, encoded = self._head(), self._encoded
        jobs = b",".join(encoded.get(job) or encoded.setdefault(job, _dumps(entry))
                         for job, entry in self._jobs.items())
        # the jobs last: they are most of the file, and most are encoded already
        _write(self.path / "run.json", _dumps(head)[:-1] + b',"jobs":[' + jobs + b"]}\n")
        if head["variables"] is not None:
            _write(self.path / "variables.json", _dumps(head["variables"]) + b"\n")
        now = time.time()
        self._next_save = now + max(SAVE_EVERY, 20 * (now - began))

    def close(self) -> None:
        """Close the output files, draw the graph and the timeline, save ``run.json``."""
        for out in self._files.values():
            out.close()
        self._files.clear()
        if self.scheduler is not None and self.draw:
            self.drawings.update(draw(self.path, self.as_dict()))
        self.save()


#: what each kind of event does to a record
Record.handlers = {
    Output: Record._output, CommandStarted: Record._command_started,
    CommandEnded: Record._command_ended, JobStarted: Record._job_started,
    JobEnded: Record._job_ended, ConnectionOpened: Record._connection,
    ConnectionFailed: Record._connection, ConnectionClosed: Record._connection,
    RunStarted: Record._run_started, RunEnded: Record._run_ended,
}


def draw(record: str | Path, run: dict[str, Any]) -> dict[str, str]:
    """Draw ``graph.svg`` (from ``graph.dot``) and ``timeline.svg`` (from ``run``)
    in ``record``; what was drawn, or why not, by drawing."""
    from .dot import run_dot
    from .timeline import COLOURS, draw_timeline

    where, drawings = Path(record), {}
    try:
        (where / "graph.dot").write_text(graph_of(run, COLOURS))
        run_dot((where / "graph.dot").read_text(), "svg", where / "graph.svg")
        drawings["graph"] = "graph.svg"
    except Exception as exc:
        drawings["graph"] = f"not drawn: {exc}"
    try:
        draw_timeline(run, where / "timeline.svg")
        drawings["timeline"] = "timeline.svg"
    except Exception as exc:
        drawings["timeline"] = f"not drawn: {exc}"
    return drawings


def graph_of(run: dict[str, Any], colours: dict[str, str]) -> str:
    """The DOT text of a recorded run: its jobs filled with the colour of their
    outcome, nested schedulers as clusters, an edge per requirement."""
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    inside: dict[str | None, list[dict[str, Any]]] = {}
    for job in run["jobs"]:
        inside.setdefault(job["scheduler"], []).append(job)
    lines = ["digraph run {", "node [shape=box, style=\"rounded,filled\", fontsize=10];"]

    def walk(parent: str | None) -> None:
        for job in inside.get(parent, []):
            if job["id"] in inside:  # a nested scheduler
                lines.append(f"subgraph cluster_{job['id']} {{ label={quoted(job['label'])};")
                walk(job["id"])
                lines.append("}")
                continue
            where = f"\\n@{job['node']}" if job.get("node") else ""
            label = quoted(f"{job['id']} {job['label']}") [:-1] + where + '"'
            colour = colours.get(job["outcome"], "#eeeeee")
            lines.append(f"j{job['id']} [label={label}, fillcolor=\"{colour}\"];")
    walk(None)

    def anchor(job_id: str) -> tuple[str, str | None]:
        """The node an edge of ``job_id`` attaches to, and its cluster if nested."""
        if job_id not in inside:
            return f"j{job_id}", None
        first = anchor(inside[job_id][0]["id"])[0] if inside[job_id] else f"j{job_id}"
        return first, f"cluster_{job_id}"

    for job in run["jobs"]:
        for required in job["requires"]:
            (tail, ltail), (head, lhead) = anchor(required), anchor(job["id"])
            extra = [f"ltail={ltail}"] * bool(ltail) + [f"lhead={lhead}"] * bool(lhead)
            lines.append(f"{tail} -> {head}" + (f" [{', '.join(extra)}]" if extra else "")
                         + ";")
    lines.insert(1, "compound=true;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def command_output(record: str | Path, command: dict[str, Any], stream: str = "stdout"
                   ) -> bytes:
    """What ``command`` (an entry of ``run.json``) printed on ``stream``, as received."""
    kept = command.get(stream)
    if not kept:
        return b""
    outputs = (Path(record) / "output").resolve()
    where = (Path(record) / kept["file"]).resolve()
    if outputs not in where.parents:  # a run.json written by hand, or tampered with
        raise RecordError(f"{record}: run.json names {kept['file']!r}, outside output/")
    parts = []
    with open(where, "rb") as source:
        for offset, length in kept["segments"]:
            source.seek(offset)
            parts.append(source.read(length))
    return b"".join(parts)


def _dumps(data: Any) -> bytes:
    """``data`` as JSON on one line (what JSON cannot say as itself, as its
    ``str()``): orjson encodes a job's entry 14 times faster than json's C encoder,
    which remains for what orjson refuses (an integer beyond 64 bits)."""
    try:
        return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(data, default=str).encode()


def _write(path: Path, data: bytes) -> None:
    """``data`` in ``path``, atomically: a reader never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
