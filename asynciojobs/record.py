"""A record of a run: a directory of its own with what ran, what it printed, how it ended.

``Scheduler.run(record=DIR)`` (or ``co_orchestrate(record=DIR)``) subscribes a
``Record`` to the run's events (see ``events.py``). It makes a new directory
under ``DIR``, named by the time the run started so that runs sort by time, and
never reused (``2026-11-30@15-04-05``, then ``.002``...). It holds:

- ``run.json``: the run, its jobs, their commands, the nodes (schema in
  docs/records.md, versioned by its ``schema`` field). Written when the run
  starts, rewritten at most once a second while jobs end, and at the end;
- ``events.jsonl``: the run's events, each line a JSON array of them, appended
  at each of these writes. A record that draws folds them into ``run.json``'s
  jobs at the end; otherwise (or when the run is killed) ``read_run()`` folds
  them (see ``runfile.py``): either way, the record tells what the run did;
- ``output/<node>.stdout`` and ``output/<node>.stderr``: what the commands on that
  node printed, bytes as received, in the order they came (one file per node and
  stream: a record of 1,000 commands does not create 1,000 files). Each command's
  share is listed in ``run.json`` as ``[offset, length]`` segments of that file
  (one segment unless commands on the node printed at the same time);
  ``command_output()`` reads it back, ``nepi-ng report DIR --output ID`` prints it;
- ``scenario.*``: the scenario as run (given by the caller, e.g. the rendered
  YAML; else the jobs as planned, see ``planned()``) and ``variables.json`` when
  there are variables;
- ``graph.dot`` and ``graph.svg``: the jobs coloured by outcome (the SVG needs
  graphviz's ``dot``); ``timeline.svg``: one row per job, bars from start to end
  (needs matplotlib: ``pip install 'nepi-ng[plot]'``). What could not be drawn is
  said in ``run.json``'s ``drawings``, never fails the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

import orjson

from .events import (
    ConnectionClosed,
    ConnectionFailed,
    ConnectionOpened,
    Event,
    JobEnded,
    Output,
    RunEnded,
    RunStarted,
    node_of,
)
from .runfile import (
    LOG,
    SCHEMA,
    RecordError,
    command_output,
    draw,
    dumps,
    fold,
    loads,
    output_file,
    read_log,
    read_run,
    safe_name,
    write_atomically,
)

if TYPE_CHECKING:
    from .job import AbstractJob

__all__ = ["SCHEMA", "Record", "RecordError", "command_output", "draw", "new_run_dir",
           "read_run"]

#: how many events are encoded together (into one line of the log), about: few
#: enough that they are not kept long (Python's collector would go through them
#: again); checked as jobs end and output comes, so a burst of starts can add more
BATCH = 256

#: how often (seconds) the log is appended to and ``run.json`` rewritten while
#: jobs end, at most: also never more than 5% of the time
SAVE_EVERY = 1.0

_NEWLINE = orjson.OPT_APPEND_NEWLINE


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


class _Ids(dict[Any, Any]):
    """Jobs (and schedulers) to the ids the log names them by; orjson asks it for
    what it cannot encode itself (a dict lookup, in C, for every known job)."""

    def __missing__(self, key: Any) -> Any:
        repr_id = getattr(key, "repr_id", None)
        return repr_id() if callable(repr_id) else str(key)


class Record:
    """Keeps one run in a new directory under ``parent`` (see the module's doc).

    ``scenario``: the scenario's text as run, saved as ``scenario_name``;
    ``variables``: a mapping read each time ``run.json`` is written (so captured
    values show), saved in ``variables.json`` and in ``run.json``.

    Events are delivered in the run's event loop, one at a time (as the bus
    does): a record is not made to be fed from other threads.
    """

    #: the kinds of event that do more than wait in the batch (filled below the class)
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
        #: the jobs' entries of ``run.json`` as encoded (before the log is folded in)
        self._jobs = b"[]"
        self._ids = _Ids({None: None})
        #: the events not encoded yet, and those encoded but not in the log yet
        self._batch: list[Any] = []
        self._lines: list[bytes] = []
        self._log: IO[bytes] | None = None
        #: how many bytes of the log ``_jobs`` holds already
        self._folded = 0
        self._nodes: dict[str, dict[str, Any]] = {}
        self._files: dict[tuple[str, str], IO[bytes]] = {}
        self._sizes: dict[tuple[str, str], int] = {}
        self._next_save = 0.0
        self.drawings: dict[str, str] = {}

    # ----- events
    def __call__(self, event: Event) -> None:
        """The subscriber: record ``event``. Most events are only kept, to be
        encoded by the batch (see ``_encode()``); a few also change the record."""
        handler = self.handlers.get(type(event))
        if handler is None:
            self._batch.append(event)
        else:
            handler(self, event)

    def _encode(self) -> None:
        """Encode the events kept so far as one line of the log: one orjson call
        for the batch, jobs named by their ids."""
        batch, self._batch = self._batch, []
        try:
            line = orjson.dumps(batch, default=self._ids.__getitem__, option=_NEWLINE)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits
            values = [{item.name: getattr(event, item.name) for item in fields(event)}
                      if not isinstance(event, dict) else event for event in batch]
            line = json.dumps(values, default=self._ids.__getitem__).encode() + b"\n"
        self._lines.append(line)

    def _job_ended(self, event: JobEnded) -> None:
        batch = self._batch
        batch.append(event)
        if event.time >= self._next_save:
            self.save()
        elif len(batch) >= BATCH:
            self._encode()

    def _output(self, event: Output) -> None:
        key = (event.node, event.stream)
        out = self._files.get(key)
        if out is None:
            (self.path / "output").mkdir(exist_ok=True)
            out = self._files[key] = open(  # noqa: SIM115
                self.path / output_file(event.node, event.stream), "ab")
            self._sizes[key] = out.tell()
        offset = self._sizes[key]
        out.write(event.data)
        self._sizes[key] = offset + len(event.data)
        # the event without its bytes, but where they are
        batch = self._batch
        batch.append({"kind": "output", "time": event.time, "job": event.job,
                      "node": event.node, "index": event.index, "stream": event.stream,
                      "offset": offset, "length": len(event.data)})
        if len(batch) >= BATCH:
            self._encode()

    def _connection(self, event: ConnectionOpened | ConnectionFailed | ConnectionClosed
                    ) -> None:
        self._batch.append(event)
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

    def _run_started(self, event: RunStarted) -> None:
        if self.scheduler is None:
            self._open(event)
        self._batch.append(event)

    def _run_ended(self, event: RunEnded) -> None:
        self._batch.append(event)
        if event.scheduler is self.scheduler:
            self.ended, self.outcome, self.reason = event.time, event.outcome, event.reason
            self.close()

    def _open(self, event: RunStarted) -> None:
        from . import graph

        self.scheduler, self.started = event.scheduler, event.time
        self._ids[self.scheduler] = None
        jobs = graph.jobs_in_order(self.scheduler, graph.plan_tree(self.scheduler))
        entries = []
        for job in jobs:
            entry = self._entry(job)
            self._ids[job] = entry["id"]
            entries.append(entry)
        self._jobs = dumps(entries)
        if self.scenario is None:
            self.scenario = planned(entries, [job.details() for job in jobs])
        scenario = self.path / self.scenario_name
        if self.previous is None or not scenario.exists():
            # UTF-8 whatever the locale; what it cannot encode (a lone surrogate in a
            # label, from a badly encoded file name) written as its escape
            scenario.write_text(self.scenario, encoding="utf-8", errors="backslashreplace")
        self._log = open(self.path / LOG, "ab")  # noqa: SIM115
        self._folded = self._log.tell()  # a resumed record's log is in its jobs
        self.save()
        self._next_save = self.started + SAVE_EVERY  # a run of a second writes it twice

    def _entry(self, job: AbstractJob) -> dict[str, Any]:
        """A job's entry in ``run.json`` as the run starts: as the record kept it
        for a job a resumed run skips, else as planned (its state comes with the
        fold of the log, see ``runfile.fold()``)."""
        if self.previous is not None and job in self.scheduler._skip:
            kept = self._kept.get(job.repr_id())
            if kept is not None:
                return kept
        parent = job.scheduler
        return {
            "id": job.repr_id(), "label": job._get_text_label(),
            "type": type(job).__name__, "node": node_of(job),
            "scheduler": (parent.repr_id()  # type: ignore[union-attr]
                          if parent is not self.scheduler
                          and getattr(parent, "is_scheduler", False) else None),
            "requires": [req.repr_id() for req in job._required or ()],
            "critical": job.is_critical(), "forever": job.forever,
        }

    # ----- the files
    def as_dict(self) -> dict[str, Any]:
        """What ``run.json`` holds now, with the events so far folded in."""
        self._append()
        jobs = loads(self._jobs)
        events, folded = read_log(self.path / LOG, self._folded)
        fold(jobs, events)
        return {**self._head(), "events_folded": folded, "jobs": jobs}

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
            "events": LOG,
            "events_folded": self._folded,
        }

    def _runs(self) -> list[dict[str, Any]]:
        """Each run this record holds (more than one once resumed)."""
        earlier = list(self.previous.get("runs", [])) if self.previous is not None else []
        this = {"started": self.started, "ended": self.ended,
                "outcome": self.outcome or "running", "reason": self.reason,
                # the jobs resume picked from this tree to complete without running
                "skipped": len(self.scheduler._skip) if self.scheduler is not None else 0}
        return [*earlier, this]

    def _append(self) -> None:
        """Append the events so far to the log, after the outputs received so far."""
        for out in self._files.values():
            out.flush()
        if self._batch:
            self._encode()
        if self._log is not None and self._lines:
            self._log.write(b"".join(self._lines))
            self._lines.clear()
            self._log.flush()

    def save(self) -> None:
        """Append the events so far to the log and write ``run.json`` (atomically:
        a reader never sees half a file)."""
        began = time.time()
        self._append()
        head = self._head()
        write_atomically(self.path / "run.json",
                         dumps(head)[:-1] + b',"jobs":' + self._jobs + b"}\n")
        if head["variables"] is not None:
            write_atomically(self.path / "variables.json", dumps(head["variables"]) + b"\n")
        now = time.time()
        self._next_save = now + max(SAVE_EVERY, 20 * (now - began))

    def close(self) -> None:
        """Close the files; with drawings, fold the log into ``run.json``'s jobs
        (the drawings need it folded) and draw the graph and the timeline; save
        ``run.json``.

        Without drawings the log stays as it is: folding it costs about as much
        as the rest of the record (~8 us per job), and whoever reads the record
        folds it (``read_run()``, ``nepi-ng report``)."""
        self._append()
        if self._log is not None:
            self._log.close()
            self._log = None
        for out in self._files.values():
            out.close()
        self._files.clear()
        if self.scheduler is not None and self.draw:
            run = self.as_dict()
            self.drawings.update(draw(self.path, run))
            self._jobs, self._folded = dumps(run["jobs"]), run["events_folded"]
        self.save()


def planned(entries: list[dict[str, Any]], details: list[str | None]) -> str:
    """The jobs of ``run.json`` (``entries``) as a listing, one line each like
    ``list()`` before a run: id, class, label, requirements, then the job's
    ``details`` (an SSH job's commands) when it has some; jobs of a nested
    scheduler after it, marked by their depth. The scenario of a run made in
    Python: made from the entries, it says what they say."""
    depths: dict[str, int] = {}
    lines = []
    for entry, more in zip(entries, details, strict=True):
        parent = entry["scheduler"]
        depth = depths[entry["id"]] = depths.get(parent, -1) + 1 if parent else 0
        indent = ">" * depth + " " if depth else ""
        requires = f" requires={{{', '.join(entry['requires'])}}}" if entry["requires"] else ""
        lines.append(f"{entry['id']} {indent}<{entry['type']} `{entry['label']}`>{requires}\n")
        if more:
            lines.append(more + "\n")
    return "".join(lines)


#: the events that change a record beyond being logged (the others are only kept
#: for the log: job and command starts and ends, any other kind)
Record.handlers = {
    Output: Record._output, JobEnded: Record._job_ended,
    ConnectionOpened: Record._connection, ConnectionFailed: Record._connection,
    ConnectionClosed: Record._connection, RunStarted: Record._run_started,
    RunEnded: Record._run_ended,
}
