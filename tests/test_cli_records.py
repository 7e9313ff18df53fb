"""``nepi-ng report``: the table, --json, --failed, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apssh.cli.nepi import main
from asynciojobs import Job, Scheduler, events
from asynciojobs.events import CommandEnded, CommandStarted, ConnectionFailed


def recorded_run(parent: Path) -> None:
    """A run on four made-up nodes: fit01 and fit03 fail, fit05 is unreachable."""

    async def command(node: str, status: int) -> None:
        me = jobs[node]
        events.emit(CommandStarted(job=me, node=node, index=0, command="hostname"))
        events.emit(CommandEnded(job=me, node=node, index=0, command="hostname",
                                 outcome="ok" if status == 0 else "failed", status=status,
                                 duration=0.01, reason=None if status == 0 else "exit 1"))
        if status:
            raise RuntimeError(f"{node}: exit {status}")

    async def unreachable() -> None:
        events.emit(ConnectionFailed(node="fit05", reason="connection refused"))

    statuses = {"fit01": 1, "fit02": 0, "fit03": 1}
    jobs = {node: Job(command(node, status), label=f"on {node}", critical=False)
            for node, status in statuses.items()}
    Scheduler(*jobs.values(), Job(unreachable())).run(record=parent)


def test_the_table_shows_jobs_and_commands(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    recorded_run(tmp_path)
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "4 jobs: 2 failed, 2 ok" in out
    assert "fit01: hostname: exit 1" in out
    assert "exit 0" in out
    assert "node fit05: connection refused" in out


def test_failed_prints_what_t_accepts(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    recorded_run(tmp_path)
    assert main(["report", "--failed", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "fit[01,03,05]\n"


def test_json_is_run_json_and_the_latest_record_is_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Scheduler(Job(_nothing())).run(record=tmp_path)
    recorded_run(tmp_path)
    assert main(["report", "--json", str(tmp_path)]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["schema"] == "nepi-ng.run/2" and len(run["jobs"]) == 4


async def _nothing() -> None:
    return None


def test_a_directory_without_record_is_one_line_and_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0] and "run.json" in err[0]
    (tmp_path / "run.json").write_text('{"schema": "other"}')
    assert main(["report", str(tmp_path)]) == 2
    assert "not a nepi-ng run record" in capsys.readouterr().err


def test_output_refuses_a_path_outside_the_record(tmp_path, capsys):
    recorded_run(tmp_path)
    record = next(p for p in tmp_path.iterdir() if p.is_dir())
    run_json = json.loads((record / "run.json").read_text())
    job = run_json["jobs"][0]
    job["commands"][0]["stdout"] = {"file": "../../../etc/passwd", "segments": [[0, 10]]}
    (record / "run.json").write_text(json.dumps(run_json))
    assert main(["report", "--output", job["id"], str(record)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outside output/" in err
    assert main(["report", "--stderr", str(record)]) == 2
    assert "--output" in capsys.readouterr().err
