"""A record's event log (events.jsonl) and its fold into run.json's jobs: what a
reader sees of a run killed outright, of a resumed one, of an older record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from test_resume import scenario

from asynciojobs import Job, events
from asynciojobs.record import Record, RecordError, read_run
from asynciojobs.runfile import fold, read_log
from asynciojobs.scheduler import Scheduler

KILLED_CHILD = textwrap.dedent("""
    import asyncio, sys
    from asynciojobs import Job, Scheduler, record
    record.SAVE_EVERY = 0  # every job that ends appends the log
    async def first():
        return 1
    async def second():
        print("ready", flush=True)
        await asyncio.Event().wait()
    a = Job(first, label="first")
    b = Job(second, label="second", required=a)
    keeper = record.Record(sys.argv[1], draw=False)
    print(keeper.path, flush=True)
    Scheduler(a, b).run(record=keeper)
""")


def test_a_run_killed_outright_is_read_from_its_log(tmp_path: Path) -> None:
    """SIGKILL leaves run.json as the run started it (the jobs as planned) and
    the log as last appended: read_run() and nepi-ng report fold the log in."""
    with subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(tmp_path)],
                          stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            where = Path(child.stdout.readline().strip())
            assert child.stdout.readline() == "ready\n"  # 'first' ended: the log has it
        finally:
            os.kill(child.pid, signal.SIGKILL)
    raw = json.loads((where / "run.json").read_text())
    assert raw["outcome"] == "running"
    assert [job.get("outcome") for job in raw["jobs"]] == [None, None]
    run = read_run(where)
    # 'second' started after the log was last appended to: the log does not say
    assert [(job["label"], job["outcome"]) for job in run["jobs"]] == [
        ("first", "ok"), ("second", "not run")]
    report = subprocess.run([sys.executable, "-m", "apssh.cli.nepi", "report", str(where)],
                            capture_output=True, text=True, check=True)
    (line,) = [line for line in report.stdout.splitlines() if "first" in line]
    assert " ok " in f" {line} "


def _log(path: Path, *batches: list[dict]) -> None:
    with open(path, "ab") as log:
        for batch in batches:
            log.write(orjson.dumps(batch) + b"\n")


def test_a_job_that_starts_again_starts_with_no_commands(tmp_path: Path) -> None:
    """The fold keeps a job's last run only; output that follows its own bytes in
    the node's file is one segment; events of unknown jobs are left out."""
    jobs: list[dict] = [{"id": "1"}]
    started = {"kind": "command.started", "job": "1", "node": "n", "index": 0,
               "command": "ls", "attempt": 1}
    ended = {"kind": "command.ended", "job": "1", "node": "n", "index": 0, "command": "ls",
             "outcome": "failed", "status": 2, "reason": "exit 2", "duration": 1.0,
             "attempt": 1}
    output = {"kind": "output", "job": "1", "node": "n", "index": 0, "stream": "stdout"}
    _log(tmp_path / "events.jsonl",
         [{"kind": "job.started", "job": "1", "time": 1.0}, {**started, "time": 1.0},
          {**output, "time": 1.5, "offset": 0, "length": 4}, {**ended, "time": 2.0},
          {"kind": "job.ended", "job": "1", "time": 2.0, "outcome": "failed",
           "reason": "boom", "duration": 1.0}],
         [{"kind": "job.started", "job": "1", "time": 5.0}, {**started, "time": 5.0},
          {**output, "time": 5.1, "offset": 4, "length": 3},
          {**output, "time": 5.2, "offset": 7, "length": 2},
          {**output, "time": 5.3, "offset": 20, "length": 1},
          {**output, "job": "9", "time": 5.3, "offset": 21, "length": 1},
          {**ended, "time": 6.0, "outcome": "ok", "status": 0, "reason": None}])
    events, end = read_log(tmp_path / "events.jsonl")
    assert end == (tmp_path / "events.jsonl").stat().st_size
    fold(jobs, events)
    (job,) = jobs
    assert (job["start"], job["outcome"], job["reason"]) == (5.0, "running", None)
    (command,) = job["commands"]
    assert (command["start"], command["end"], command["outcome"]) == (5.0, 6.0, "ok")
    assert command["stdout"] == {"file": "output/n.stdout", "segments": [[4, 5], [20, 1]]}


def test_a_line_cut_short_by_a_kill_is_left_out(tmp_path: Path) -> None:
    _log(tmp_path / "events.jsonl", [{"kind": "job.started", "job": "1", "time": 1.0}])
    with open(tmp_path / "events.jsonl", "ab") as log:
        log.write(b'[{"kind":"job.ended","job":"1","ti')
    events, end = read_log(tmp_path / "events.jsonl")
    assert [event["kind"] for event in events] == ["job.started"]
    assert end == len(orjson.dumps([{"kind": "job.started", "job": "1", "time": 1.0}])) + 1


def test_a_record_left_unfolded_resumes_into_the_same_log(tmp_path: Path) -> None:
    """A record without drawings keeps its log unfolded; resuming it reads it
    folded, skips what was done, and appends the new run's events to the log."""
    calls: list[str] = []
    first = Record(tmp_path, draw=False)
    assert not scenario(calls, broken=True).run(record=first)
    assert [job["outcome"] for job in read_run(first.path)["jobs"]] == [
        "ok", "failed", "not run"]
    size = (first.path / "events.jsonl").stat().st_size
    assert scenario(calls, broken=False).run(resume=first.path)
    assert calls == ["a", "b", "b", "c"]
    raw = json.loads((first.path / "run.json").read_text())  # drawn: folded
    assert raw["events_folded"] == (first.path / "events.jsonl").stat().st_size > size
    assert [job["outcome"] for job in raw["jobs"]] == ["ok", "ok", "ok"]
    assert [r["outcome"] for r in raw["runs"]] == ["critical", "ok"]
    assert raw == read_run(first.path)


def test_records_of_the_first_schema_are_still_read(tmp_path: Path) -> None:
    old = {"schema": "nepi-ng.run/1", "jobs": [{"id": "1", "outcome": "ok"}]}
    (tmp_path / "run.json").write_text(json.dumps(old))
    assert read_run(tmp_path) == old
    (tmp_path / "run.json").write_text(json.dumps({**old, "schema": "nepi-ng.run/9"}))
    with pytest.raises(RecordError, match=r"schema 'nepi-ng\.run/9'"):
        read_run(tmp_path)


def test_events_are_logged_with_their_kind_and_jobs_by_id(tmp_path: Path) -> None:
    async def nothing() -> None:
        return None

    sched = Scheduler(Job(nothing, label="only"), critical=False)
    keeper = Record(tmp_path, draw=False)
    assert sched.run(record=keeper)
    events, _ = read_log(keeper.path / "events.jsonl")
    assert [(e["kind"], e.get("job")) for e in events] == [
        ("run.started", None), ("job.started", "1"), ("job.ended", "1"), ("run.ended", None)]


def test_a_retried_command_shows_its_last_attempt() -> None:
    """A command started again (a retry) forgets how the attempt before ended."""
    jobs: list[dict] = [{"id": "1"}]
    command = {"job": "1", "node": "n", "index": 0, "command": "ls"}
    fold(jobs, [
        {"kind": "job.started", "job": "1", "time": 1.0},
        {**command, "kind": "command.started", "time": 1.0, "attempt": 1},
        {**command, "kind": "command.ended", "time": 2.0, "attempt": 1, "outcome": "failed",
         "status": 2, "reason": "exit 2", "duration": 1.0},
        {**command, "kind": "command.started", "time": 3.0, "attempt": 2}])
    (entry,) = jobs[0]["commands"]
    assert (entry["outcome"], entry["attempts"], entry["start"]) == ("running", 2, 3.0)
    assert (entry["end"], entry["status"], entry["reason"]) == (None, None, None)


def test_what_orjson_refuses_is_written_and_read_back_by_json(tmp_path: Path) -> None:
    """A label orjson cannot encode (a lone surrogate, from a badly encoded file
    name) and an exit status beyond 64 bits: json writes them, and the record
    still reads back, events included."""
    async def nothing() -> None:
        return None

    job = Job(nothing, label="bad \udcff name")
    sched = Scheduler(job, critical=False)
    keeper = Record(tmp_path, draw=False)
    keeper(events.RunStarted(scheduler=sched, time=1.0))
    keeper(events.JobStarted(job=job, time=1.0))
    keeper(events.CommandEnded(job=job, node="n", index=0, command="x", outcome="failed",
                               status=2**70, time=2.0, duration=1.0))
    keeper(events.JobEnded(job=job, outcome="ok", time=2.0, duration=1.0))
    keeper(events.RunEnded(scheduler=sched, outcome="ok", time=2.0))
    run = read_run(keeper.path)
    assert run["jobs"][0]["label"] == "bad \udcff name"
    assert run["jobs"][0]["outcome"] == "ok"
    assert run["jobs"][0]["commands"][0]["status"] == 2**70
    assert run["events_folded"] == (keeper.path / "events.jsonl").stat().st_size
