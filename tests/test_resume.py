"""Resume a recorded run: only what did not complete runs again, in the same record."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from asynciojobs import Job, PureScheduler, Scheduler
from asynciojobs.record import RecordError
from asynciojobs.resume import ResumeError


def load(path: Path) -> dict:
    return json.loads((path / "run.json").read_text())


def only_dir(parent: Path) -> Path:
    (one,) = [p for p in parent.iterdir() if p.is_dir()]
    return one


def scenario(calls: list[str], broken: bool) -> PureScheduler:
    async def step(name: str) -> str:
        calls.append(name)
        if name == "b" and broken:
            raise RuntimeError("b is broken")
        return name

    a = Job(step, "a", label="prepare")
    b = Job(step, "b", label="measure", required=a)
    c = Job(step, "c", label="collect", required=b)
    return PureScheduler(a, b, c)


def test_only_what_did_not_complete_runs_again(tmp_path: Path) -> None:
    calls: list[str] = []
    assert not scenario(calls, broken=True).run(record=tmp_path)
    record = only_dir(tmp_path)
    first = load(record)
    assert [job["outcome"] for job in first["jobs"]] == ["ok", "failed", "not run"]
    assert calls == ["a", "b"]
    calls.clear()
    assert scenario(calls, broken=False).run(resume=record)
    assert calls == ["b", "c"]
    second = load(record)
    assert only_dir(tmp_path) == record  # the same record, no new one
    assert [job["outcome"] for job in second["jobs"]] == ["ok", "ok", "ok"]
    assert second["jobs"][0]["start"] == first["jobs"][0]["start"]  # kept as it was
    assert [run["outcome"] for run in second["runs"]] == ["critical", "ok"]
    assert second["runs"][1]["skipped"] == 1
    # a third time: nothing left to do
    calls.clear()
    assert scenario(calls, broken=False).run(resume=record)
    assert calls == []


def test_a_readiness_needed_again_runs_its_job_again(tmp_path: Path) -> None:
    calls: list[str] = []

    def build(broken: bool) -> PureScheduler:
        async def server() -> None:
            calls.append("server")
            ready.fire(port=1234)

        async def client() -> None:
            calls.append("client")
            if broken:
                raise RuntimeError("client failed")

        serve = Job(server, label="server")
        ready = serve.when("listening")
        return PureScheduler(serve, Job(client, label="client", required=ready,
                                        critical=False))

    assert build(broken=True).run(record=tmp_path)
    calls.clear()
    assert build(broken=False).run(resume=only_dir(tmp_path))
    assert calls == ["server", "client"]


def test_other_jobs_are_refused_in_one_line(tmp_path: Path) -> None:
    calls: list[str] = []
    scenario(calls, broken=True).run(record=tmp_path)
    other = Scheduler(Job(asyncio.sleep, 0, label="something else"))
    with pytest.raises(ResumeError) as info:
        other.run(resume=only_dir(tmp_path))
    message = str(info.value)
    assert "\n" not in message and "not the recorded ones" in message
    with pytest.raises(RecordError, match="cannot read a record"):
        other.run(resume=tmp_path / "nothing")


def test_a_long_chain_of_skipped_jobs_is_no_recursion(tmp_path: Path) -> None:
    def build(fail_last: bool) -> PureScheduler:
        async def step(number: int) -> None:
            if fail_last and number == 2999:
                raise RuntimeError("last")

        jobs: list[Job] = []
        for number in range(3000):
            jobs.append(Job(step, number, label=f"step {number}",
                            required=jobs[-1] if jobs else None))
        return PureScheduler(*jobs)

    assert not build(fail_last=True).run(record=tmp_path)
    assert build(fail_last=False).run(resume=only_dir(tmp_path))
    run = load(only_dir(tmp_path))
    assert run["runs"][-1]["skipped"] == 2999


def test_record_and_resume_do_not_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="do not go together"):
        Scheduler(Job(asyncio.sleep, 0)).run(record=tmp_path, resume=tmp_path)


def test_a_record_of_a_killed_run_resumes(tmp_path: Path) -> None:
    """A run killed outright leaves run.json as it was last saved: running, no
    duration. Resuming it still keeps the record."""
    calls: list[str] = []
    assert not scenario(calls, broken=True).run(record=tmp_path)
    record = only_dir(tmp_path)
    killed = load(record)
    killed.update(outcome="running", ended=None, duration=None)
    (record / "run.json").write_text(json.dumps(killed))
    assert scenario(calls, broken=False).run(resume=record)
    run = load(record)
    assert run["outcome"] == "ok" and run["duration"] is not None
