"""nepi-ng sweep: every combination once, records, resume, failures, a killed sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from apssh.cli.nepi import main
from asynciojobs.sweep import Sweeper

SCENARIO = """\
nodes:
  - id: here
    localnode: true
jobs:
  - id: measure
    node: here
    commands: ['echo "{{{{ proto }}}} {{{{ rate }}}}" >> {log}; test "{{{{ proto }}}}" != bad']
"""


def write(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "log"
    scenario = tmp_path / "scenario.yaml.j2"
    scenario.write_text(SCENARIO.format(log=log))
    return scenario, log


def test_every_combination_runs_once_each_with_its_record(tmp_path, capsys):
    scenario, log = write(tmp_path)
    store = tmp_path / "store"
    assert main(["sweep", str(scenario), "-P", "rate=10,20", "-P", "proto=olsr,batman",
                 "--store", str(store)]) == 0
    assert sorted(log.read_text().splitlines()) == [
        "batman 10", "batman 20", "olsr 10", "olsr 20"]
    records = sorted((store / "runs").iterdir())
    assert len(records) == 4
    variables = [json.loads((r / "run.json").read_text())["variables"] for r in records]
    assert sorted((v["rate"], v["proto"]) for v in variables) == [
        (10, "batman"), (10, "olsr"), (20, "batman"), (20, "olsr")]
    err = capsys.readouterr().err
    assert "4 done, 0 failed, 0 left" in err
    # the same store again: refused without --resume, then only what is new runs
    assert main(["sweep", str(scenario), "-P", "rate=10", "--store", str(store)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["sweep", str(scenario), "-P", "rate=10,20,30", "-P", "proto=olsr,batman",
                 "--store", str(store), "--resume"]) == 0
    assert sorted(log.read_text().splitlines()) == [
        "batman 10", "batman 20", "batman 30", "olsr 10", "olsr 20", "olsr 30"]


def test_a_failed_combination_is_marked_failed_and_exits_1(tmp_path, capsys):
    scenario, log = write(tmp_path)
    store = tmp_path / "store"
    assert main(["sweep", str(scenario), "-P", "proto=good,bad", "-P", "rate=1",
                 "--store", str(store)]) == 1
    with Sweeper(store) as sweeper:
        states = {row.combination["proto"]: row.state for row in sweeper.rows()}
        reasons = [row.reason for row in sweeper.rows("failed")]
    assert states == {"good": "done", "bad": "failed"}
    assert reasons and "run failed" in reasons[0]
    assert "FAILED" in capsys.readouterr().err


def test_bad_parameters_are_one_line(tmp_path, capsys):
    scenario, _ = write(tmp_path)
    assert main(["sweep", str(scenario), "-P", "rate", "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rate" in err


KILLABLE = """\
nodes:
  - id: here
    localnode: true
jobs:
  - id: measure
    node: here
    commands:
      - >-
        echo {{{{ rate }}}} >> {log};
        if [ {{{{ rate }}}} = 2 ] && [ ! -e {mark} ];
        then touch {mark}; echo go > {fifo}; sleep 1000; fi
"""


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path):
    log, mark, fifo = tmp_path / "log", tmp_path / "mark", tmp_path / "fifo"
    os.mkfifo(fifo)
    scenario = tmp_path / "scenario.yaml.j2"
    scenario.write_text(KILLABLE.format(log=log, mark=mark, fifo=fifo))
    store = tmp_path / "store"
    command = [sys.executable, "-m", "apssh.cli.nepi", "sweep", str(scenario),
               "-P", "rate=1,2,3", "--store", str(store)]
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    with open(fifo) as reader:  # the combination rate=2 is running
        assert reader.read() == "go\n"
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM, err
    assert "--resume goes on from here" in err
    left = subprocess.run(["pgrep", "-f", "sleep 1000"], capture_output=True, text=True)
    assert left.stdout == ""  # the command was stopped with the sweep
    with Sweeper(store) as sweeper:
        assert sweeper.state({"rate": 2}) == "todo"
    assert main(["sweep", str(scenario), "--store", str(store), "--resume"]) == 0
    assert sorted(log.read_text().split()) == ["1", "2", "2", "3"]


def test_nodes_written_the_same_way_are_built_once_across_loads(tmp_path):
    from apssh.loader import YamlLoader

    scenario = tmp_path / "s.yaml.j2"
    scenario.write_text("nodes:\n  - id: a\n    hostname: host-{{ which }}\n"
                        "  - id: b\n    hostname: fixed\n"
                        "jobs:\n  - id: j\n    node: a\n    commands: ['true']\n")
    cache: dict = {}
    maps = []
    for which in (1, 1, 2):
        loader = YamlLoader(scenario)
        loader.node_cache = cache
        maps.append(loader.load_with_maps({"which": which})[0])
    assert maps[0]["a"] is maps[1]["a"] and maps[0]["b"] is maps[2]["b"]
    assert maps[2]["a"] is not maps[0]["a"] and maps[2]["a"].hostname == "host-2"


def test_a_broken_scenario_leaves_the_combination_to_do(tmp_path, capsys):
    scenario = tmp_path / "broken.yaml.j2"
    scenario.write_text("nodes: []\njobs: []\noops: {{ rate }}\n")
    store = tmp_path / "store"
    assert main(["sweep", str(scenario), "-P", "rate=1,2", "--store", str(store)]) == 2
    assert f"{scenario}:3: " in capsys.readouterr().err
    with Sweeper(store) as sweeper:
        assert sweeper.stats()["todo"] == 2 and sweeper.stats()["done"] == 0


def test_repeat_and_timeout_are_checked_as_elsewhere(tmp_path, capsys):
    scenario, _ = write(tmp_path)
    for bad in (["--timeout", "0"], ["--timeout", "-1"], ["--repeat", "x"]):
        assert main(["sweep", str(scenario), "-P", "rate=1", "--store", str(tmp_path / "s"),
                     *bad]) == 2
        assert capsys.readouterr().err.count("\n") == 1
