"""--record, --resume and --monitor in nepi-ng run and apssh."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import H, base, run

from apssh.cli import Apssh
from apssh.cli.nepi import main
from asynciojobs.record import command_output

SCENARIO = """\
nodes:
  - id: here
    localnode: true
jobs:
  - id: first
    node: here
    commands:
      - type: Run
        command: echo ran >> {count}; echo hello
        capture: greeting
  - id: second
    node: here
    required: first
    commands: ['test -e {flag} && echo "{{{{ greeting }}}} again"']
"""


def only_dir(parent: Path) -> Path:
    (one,) = [p for p in parent.iterdir() if p.is_dir()]
    return one


def test_record_then_resume_runs_what_is_left_with_its_variables(tmp_path, capsys):
    count, flag = tmp_path / "count", tmp_path / "flag"
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.format(count=count, flag=flag))
    records = tmp_path / "records"
    assert main(["run", str(scenario), "--record", str(records)]) == 1
    record = only_dir(records)
    err = capsys.readouterr().err
    assert f"nepi-ng: record in {record}" in err
    run_json = json.loads((record / "run.json").read_text())
    assert [job["outcome"] for job in run_json["jobs"]] == ["ok", "failed"]
    assert run_json["variables"]["greeting"] == "hello"
    assert (record / "scenario.yaml").read_text() == scenario.read_text()
    flag.touch()
    assert main(["run", str(scenario), "--resume", str(record)]) == 0
    out = capsys.readouterr().out
    assert "hello again" in out  # the captured variable, restored
    assert count.read_text() == "ran\n"  # the first job did not run again
    run_json = json.loads((record / "run.json").read_text())
    assert [r["outcome"] for r in run_json["runs"]] == ["critical", "ok"]
    assert [job["outcome"] for job in run_json["jobs"]] == ["ok", "ok"]
    # another scenario cannot resume it
    other = tmp_path / "other.yaml"
    other.write_text("nodes: []\njobs: []\n")
    assert main(["run", str(other), "--resume", str(record)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the recorded ones" in err


def test_monitor_without_a_terminal_prints_plain_lines(tmp_path, capsys):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.format(count=tmp_path / "count", flag=tmp_path))
    assert main(["run", str(scenario), "--monitor"]) == 0
    out = capsys.readouterr().err  # the view on stderr: stdout carries the output
    assert "started  1 first @LOCALNODE" in out
    assert "ok       2 second @LOCALNODE" in out
    assert "run ok (2 done, 0 running, 0 failed, 0 waiting" in out


def test_apssh_record_and_report_failed(lab, tmp_path, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "--record", str(tmp_path), "-t",
                         f"{H}.[1-3]",
                         "echo $SSH_CONNECTION; exit $(echo $SSH_CONNECTION | cut -d. -f7"
                         " | cut -d' ' -f1 | sed 's/^1$/0/')")
    record = only_dir(tmp_path)
    assert f"apssh: record in {record}" in err
    run_json = json.loads((record / "run.json").read_text())
    assert len(run_json["jobs"]) == 3
    by_node = {c["node"]: c for job in run_json["jobs"] for c in job["commands"]}
    assert set(by_node) == {f"{H}.1", f"{H}.2", f"{H}.3"}
    assert by_node[f"{H}.1"]["status"] == 0
    assert command_output(record, by_node[f"{H}.2"]).split()[2] == f"{H}.2".encode()
    assert "--record" in (record / "command.txt").read_text()
    assert main(["report", "--failed", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{H}.[2-3]\n"


def test_per_host_options_do_not_go_with_a_chain(lab, tmp_path, capsys):
    from apssh.cli import Appush

    payload = tmp_path / "payload"
    payload.write_bytes(b"x")
    for option in (["--record", str(tmp_path)], ["--monitor"], ["-w", "2"]):
        code, out, err = run(capsys, Appush, *base(lab), "--chain", *option, "-t",
                             f"{H}.[1-2]", str(payload), "@:")
        assert code == 2 and err.count("\n") == 1 and "does not go with --chain" in err
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # no record was made
