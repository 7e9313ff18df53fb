"""Records of runs (asynciojobs side): the directory, run.json, outputs, drawings."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from asynciojobs import Job, PureScheduler, Scheduler, events
from asynciojobs.events import CommandEnded, CommandStarted, Output
from asynciojobs.record import SCHEMA, Record, command_output, new_run_dir, read_run


async def value(x: object) -> object:
    return x


async def boom() -> None:
    raise ValueError("boom")


async def forever() -> None:
    await asyncio.Event().wait()


#: what run.json says of a job before the log is folded in
PLANNED = ("id", "label", "type", "node", "scheduler", "requires", "critical", "forever")


def load(path: Path) -> dict:
    return json.loads((path / "run.json").read_text())


def only_dir(parent: Path) -> Path:
    (one,) = [p for p in parent.iterdir() if p.is_dir()]
    return one


def test_a_recorded_run_keeps_jobs_times_outcomes_and_drawings(tmp_path: Path) -> None:
    a = Job(value(1), label="first")
    b = Job(boom(), label="second", required=a, critical=False)
    c = Job(value(3), label="third", required=b)
    sched = Scheduler(a, b, c)
    assert sched.run(record=tmp_path)
    run_dir = only_dir(tmp_path)
    run = load(run_dir)  # drawn: the log is folded into run.json itself
    assert run["schema"] == SCHEMA
    assert run["events_folded"] == (run_dir / "events.jsonl").stat().st_size
    assert run["outcome"] == "ok" and run["duration"] >= 0
    jobs = {job["label"]: job for job in run["jobs"]}
    assert [jobs[name]["outcome"] for name in ("first", "second", "third")] == [
        "ok", "failed", "ok"]
    assert jobs["second"]["reason"] == "ValueError: boom"
    assert jobs["third"]["requires"] == [jobs["second"]["id"]]
    assert jobs["first"]["scheduler"] is None
    assert jobs["first"]["start"] <= jobs["first"]["end"] <= jobs["third"]["start"]
    # the scenario as run: the listing, with the jobs' ids
    scenario = (run_dir / run["scenario"]).read_text()
    assert all(job["id"] in scenario for job in run["jobs"])
    assert (run_dir / "graph.dot").read_text().startswith("digraph")
    assert run["drawings"] == {"graph": "graph.svg", "timeline": "timeline.svg"}
    for name in ("graph.svg", "timeline.svg"):
        assert "<svg" in (run_dir / name).read_text()[:2000]


def test_command_output_is_kept_byte_for_byte(tmp_path: Path) -> None:
    payload = os.urandom(100_000)

    async def work() -> None:
        me = runner
        events.emit(CommandStarted(job=me, node="node1", index=0, command="cat"))
        for start in range(0, len(payload), 4096):
            events.emit(Output(job=me, node="node1", index=0, stream="stdout",
                               data=payload[start:start + 4096]))
        events.emit(Output(job=me, node="node1", index=0, stream="stderr", data=b"warn\n"))
        events.emit(CommandEnded(job=me, node="node1", index=0, command="cat",
                                 outcome="ok", status=0, duration=0.1))

    runner = Job(work(), label="cat")
    sched = Scheduler(runner)
    keeper = Record(tmp_path / "runs")
    assert sched.run(record=keeper)
    run = load(keeper.path)
    (job,) = run["jobs"]
    (command,) = job["commands"]
    assert (command["node"], command["status"], command["outcome"]) == ("node1", 0, "ok")
    assert command_output(keeper.path, command) == payload
    assert command_output(keeper.path, command, "stderr") == b"warn\n"
    # one file per node and stream, the command's share in one segment
    assert command["stdout"] == {"file": "output/node1.stdout",
                                 "segments": [[0, len(payload)]]}
    assert (keeper.path / "output/node1.stdout").read_bytes() == payload


def test_a_timed_out_run_says_so_and_what_was_cancelled(tmp_path: Path) -> None:
    done = Job(value(1), label="quick")
    stuck = Job(forever(), label="stuck")
    never = Job(value(2), label="never", required=stuck)
    sched = PureScheduler(done, stuck, never, timeout=0.1)
    assert not sched.run(record=tmp_path)
    run = load(only_dir(tmp_path))
    assert run["outcome"] == "timeout"
    assert "timed out" in run["reason"].lower()
    outcomes = {job["label"]: job["outcome"] for job in run["jobs"]}
    assert outcomes == {"quick": "ok", "stuck": "cancelled", "never": "not run"}


def test_nested_jobs_name_their_scheduler(tmp_path: Path) -> None:
    inner = Scheduler(Job(value(1), label="inside"), label="inner")
    assert PureScheduler(inner).run(record=tmp_path)
    jobs = {job["label"]: job for job in load(only_dir(tmp_path))["jobs"]}
    assert jobs["inside"]["scheduler"] == jobs["inner"]["id"]


def test_run_directories_are_new_and_sort_by_time(tmp_path: Path) -> None:
    made = [new_run_dir(tmp_path) for _ in range(5)]
    assert len(set(made)) == 5
    assert made == sorted(made)
    assert all(":" not in p.name for p in made)


def test_variables_are_read_when_saved(tmp_path: Path) -> None:
    variables: dict[str, object] = {"rate": 10}

    async def capture() -> None:
        variables["port"] = 8080

    keeper = Record(tmp_path, variables=lambda: variables, scenario="nodes: []\n",
                    scenario_name="scenario.yaml")
    assert Scheduler(Job(capture())).run(record=keeper)
    run = load(keeper.path)
    assert run["variables"] == {"rate": 10, "port": 8080}
    assert json.loads((keeper.path / "variables.json").read_text())["port"] == 8080
    assert (keeper.path / "scenario.yaml").read_text() == "nodes: []\n"


def test_the_subscription_ends_with_the_run(tmp_path: Path) -> None:
    sched = Scheduler(Job(value, 1))
    assert sched.run(record=tmp_path / "one")
    assert sched._subscribers == []
    assert sched.run()
    assert not (tmp_path / "two").exists()


def test_a_record_reads_the_same_at_every_save_and_after_its_end(tmp_path: Path) -> None:
    """While a run goes on, events are appended to the log and read_run() folds
    them into run.json's jobs; without drawings, they are left in the log at the
    end too (a record that draws folds them: the test above reads run.json raw)."""
    async def nothing() -> None:
        return None

    a = Job(nothing, label="a")  # a coroutine function: never run, nothing left unawaited
    b = Job(nothing, label="b", required=a)
    sched = Scheduler(a, b)
    record = Record(tmp_path, draw=False)
    record(events.RunStarted(scheduler=sched, time=1.0))
    assert [job["outcome"] for job in read_run(record.path)["jobs"]] == ["not run"] * 2
    record(events.JobStarted(job=a, time=2.0))
    record.save()
    assert [job["outcome"] for job in read_run(record.path)["jobs"]] == ["running", "not run"]
    assert ["outcome" in job for job in load(record.path)["jobs"]] == [False] * 2  # planned
    record(events.JobEnded(job=a, outcome="ok", time=3.0, duration=1.0))
    record(events.JobStarted(job=b, time=3.0))
    record.save()
    first, second = read_run(record.path)["jobs"]
    assert (first["outcome"], first["end"], second["outcome"]) == ("ok", 3.0, "running")
    record(Output(job=b, node="n1", index=0, stream="stdout", data=b"late\n"))
    record.save()
    (command,) = read_run(record.path)["jobs"][1]["commands"]
    assert command_output(record.path, command) == b"late\n"
    assert read_run(record.path) == json.loads(json.dumps(record.as_dict()))
    record(events.JobEnded(job=b, outcome="ok", time=4.0, duration=1.0))
    record(events.RunEnded(scheduler=sched, outcome="ok", time=4.0))
    raw, run = load(record.path), read_run(record.path)
    assert raw["events_folded"] == 0 and raw["outcome"] == run["outcome"] == "ok"
    assert [sorted(job) for job in raw["jobs"]] == [sorted(PLANNED)] * 2
    assert [job["outcome"] for job in run["jobs"]] == ["ok", "ok"]
    kinds = [event["kind"] for line in
             (record.path / "events.jsonl").read_text().splitlines()
             for event in json.loads(line)]
    assert kinds == ["run.started", "job.started", "job.ended", "job.started", "output",
                     "job.ended", "run.ended"]
