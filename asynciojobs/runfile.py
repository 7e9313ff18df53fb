"""A record on disk, read back: ``run.json`` with its event log folded in.

A record (written by ``record.Record``) keeps the run in two files. ``run.json``
holds the run (its head) and its jobs as planned; ``events.jsonl`` holds the
run's events, each line a JSON array of them, appended at most once a second.
``run.json``'s ``events_folded`` is how many bytes of the log its jobs hold
already: all of them once a record that draws has ended (the drawings needed
the fold), none for a record without drawings, or killed before its end.
``read_run()`` folds the rest, so every reader (``nepi-ng report``, resume, the
drawings) sees each job complete, whether the run ended or not.

Why a log: folding each event into its job's entry as it comes costs Python
work on every event; keeping events and encoding them in batches with orjson
(in C) costs a fraction of it. The run pays the log; the fold is paid by whoever
reads the record (or at the end, beside the drawings).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import orjson

__all__ = ["LOG", "SCHEMA", "RecordError", "command_output", "draw", "fold", "graph_of",
           "output_file", "read_log", "read_run", "safe_name"]

#: the ``schema`` of the ``run.json`` written here; tools check it before reading
SCHEMA = "nepi-ng.run/2"

#: the schema before the event log (its ``run.json`` is complete): still read
SCHEMA_1 = "nepi-ng.run/1"

#: the event log of a record, next to its ``run.json``
LOG = "events.jsonl"

#: the state of a job that did not run (``run.json`` holds jobs as planned without
#: it until the log is folded in)
NOT_RUN = {"start": None, "end": None, "duration": None, "outcome": "not run",
           "reason": None}

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class RecordError(ValueError):
    """A directory that holds no record this version reads; the message is one line."""


def read_run(path: str | Path) -> dict[str, Any]:
    """The ``run.json`` of the record at ``path``, with the events its run logged
    since it was written folded in (``RecordError`` if there is none this version
    reads)."""
    where = Path(path) / "run.json"
    try:
        run = loads(where.read_bytes())
    except (OSError, ValueError) as exc:
        raise RecordError(f"{where}: cannot read a record: {exc}") from None
    schema = run.get("schema") if isinstance(run, dict) else None
    if schema == SCHEMA_1:
        return run
    if schema != SCHEMA:
        raise RecordError(f"{where}: not a nepi-ng run record this version reads "
                          f"(schema {schema!r}, expected {SCHEMA!r})")
    events, run["events_folded"] = read_log(Path(path) / LOG, run.get("events_folded") or 0)
    fold(run["jobs"], events)
    return run


def read_log(path: Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The events of the log at ``path`` from byte ``start`` on (none if it is
    missing), and where they end. Each line of the log is a JSON array of events;
    a last line cut short by a killed run is left out."""
    try:
        with open(path, "rb") as log:
            log.seek(start)
            data = log.read()
    except FileNotFoundError:
        return [], start
    end = data.rfind(b"\n") + 1  # after the last whole line
    lines = [line for line in data[:end].split(b"\n") if line]
    try:
        batches = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:  # what json wrote when orjson could not
        batches = []
        for line in lines:
            with contextlib.suppress(ValueError):
                batches.append(loads(line))
    return list(itertools.chain.from_iterable(batches)), start + end


def loads(data: bytes) -> Any:
    """``data`` decoded from JSON: by orjson, else by json (which reads back what
    it wrote when orjson could not: a lone surrogate, an integer beyond 64 bits)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def fold(jobs: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """Apply ``events`` (as logged) to the entries of ``jobs`` (those of
    ``run.json``), in place: a job that starts again starts with no commands. An
    entry as planned (no state yet) gets the state of a job that did not run."""
    for planned in jobs:
        if "outcome" not in planned:
            planned.update(NOT_RUN, commands=[])
    by_id = {planned["id"]: planned for planned in jobs}
    #: each job's commands, by node and index, since it last started
    commands: dict[Any, dict[tuple[Any, Any], dict[str, Any]]] = {}

    def command(event: dict[str, Any]) -> dict[str, Any] | None:
        job_id, key = event["job"], (event["node"], event["index"])
        known = commands.get(job_id)
        if known is None:
            if job_id not in by_id:
                return None
            known = commands[job_id] = {}
        entry = known.get(key)
        if entry is None:
            entry = known[key] = new_command(event["index"], event["node"],
                                             event.get("command", ""))
            by_id[job_id]["commands"].append(entry)
        return entry

    for event in events:
        kind = event.get("kind")
        if kind == "output":
            entry = command(event)
            if entry is None:
                continue
            stream, offset, length = event["stream"], event["offset"], event["length"]
            kept = entry[stream]
            if kept is None:
                kept = entry[stream] = {"file": output_file(event["node"], stream),
                                        "segments": []}
            segments = kept["segments"]
            if segments and segments[-1][0] + segments[-1][1] == offset:
                segments[-1][1] += length  # what follows its own last bytes
            else:
                segments.append([offset, length])
        elif kind == "command.started":  # an attempt: what an earlier one ended with goes
            entry = command(event)
            if entry is not None:
                entry.update(command=event["command"], start=event["time"],
                             attempts=event["attempt"], outcome="running", end=None,
                             duration=None, status=None, reason=None)
        elif kind == "command.ended":
            entry = command(event)
            if entry is not None:
                entry.update(command=event["command"], end=event["time"],
                             duration=event["duration"], outcome=event["outcome"],
                             status=event["status"], reason=event["reason"],
                             attempts=event["attempt"])
        elif kind == "job.started":
            job = by_id.get(event["job"])
            if job is not None:
                commands.pop(event["job"], None)
                job.update(start=event["time"], end=None, duration=None,
                           outcome="running", reason=None, commands=[])
        elif kind == "job.ended":
            job = by_id.get(event["job"])
            if job is not None:
                job.update(end=event["time"], duration=event["duration"],
                           outcome=event["outcome"], reason=event["reason"])


def safe_name(name: str) -> str:
    """``name`` as one path component that stays where it is put."""
    cleaned = _UNSAFE.sub("_", name) or "_"
    return "_" if cleaned.strip(".") == "" else cleaned


def output_file(node: str, stream: str) -> str:
    """Where, in a record, what commands on ``node`` printed on ``stream`` goes."""
    return f"output/{safe_name(node)}.{safe_name(stream)}"


def new_command(index: int, node: str, command: str) -> dict[str, Any]:
    """A command's entry in ``run.json`` before anything is known of it."""
    return {"index": index, "node": node, "command": command, "start": None, "end": None,
            "duration": None, "outcome": "not run", "status": None, "reason": None,
            "attempts": 0, "stdout": None, "stderr": None}


def draw(record: str | Path, run: dict[str, Any]) -> dict[str, str]:
    """Draw ``graph.svg`` (from ``graph.dot``) and ``timeline.svg`` (from ``run``)
    in ``record``; what was drawn, or why not, by drawing."""
    from .dot import run_dot
    from .timeline import COLOURS, draw_timeline

    where, drawings = Path(record), {}
    try:
        text = graph_of(run, COLOURS).encode("utf-8", "backslashreplace").decode()
        (where / "graph.dot").write_text(text, encoding="utf-8")
        run_dot(text, "svg", where / "graph.svg")
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


def dumps(data: Any) -> bytes:
    """``data`` as JSON on one line (what JSON cannot say as itself, as its
    ``str()``): orjson encodes a job's entry 14 times faster than json's C encoder,
    which remains for what orjson refuses (an integer beyond 64 bits)."""
    try:
        return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(data, default=str).encode()


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` in ``path``, atomically: a reader never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
