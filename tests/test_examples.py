"""The examples (and the demo) run to completion and print what the docs show."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asynciojobs.record import command_output

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_demo(tmp_path):
    done = run("demo.py", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "---------- after the run: FINE" in done.stdout
    assert "6 ⚠ ☉ ↺ ∞ <SshJob `server on fit01`>  requires={5}" in done.stdout
    assert re.search(r"fit02 *:client done: 5 measures", done.stdout)
    assert len((tmp_path / "measures.txt").read_text().splitlines()) == 5
    assert (tmp_path / "demo.dot").exists()
    # the run is kept: its record has every job, the client's output, a timeline
    (record,) = (tmp_path / "records").iterdir()
    run_json = json.loads((record / "run.json").read_text())
    assert run_json["outcome"] == "ok"
    client = next(job for job in run_json["jobs"] if job["label"] == "client on fit02")
    assert client["outcome"] == "ok" and client["node"] == "fit02"
    output = command_output(record, client["commands"][0])
    assert output == b"client done: 5 measures\n"
    assert "<svg" in (record / "timeline.svg").read_text()[:2000]


def test_scheduler_basics():
    done = run("scheduler_basics.py")
    assert done.returncode == 0, done.stderr
    assert "results: ['a', 'b', 'c', 'd']" in done.stdout
    assert "why: TIMED OUT after 0.1s" in done.stdout
    assert "emergency exit: critical job 1 <Job `hard`>" in done.stderr


def test_nested(tmp_path):
    done = run("nested.py", str(tmp_path))
    assert done.returncode == 0, done.stderr
    docs = (EXAMPLES.parent / "docs" / "listings-and-graphs.md").read_text()
    listing = done.stdout.split("----- FINE\n")[1].split("=====")[0]
    assert listing in docs  # the docs quote the real output
    assert (tmp_path / "nested.dot").exists()
    if shutil.which("dot"):
        assert "<svg" in (tmp_path / "nested.svg").read_text()
    else:
        pytest.importorskip("no such module: dot is missing, svg not written")


def test_tutorial():
    done = run("tutorial.py")
    assert done.returncode == 0, done.stderr
    assert "node1:hello from node1" in done.stdout
    assert "result: rate=11" in done.stdout
    assert "node2:node2 got 42" in done.stdout
    assert "2 ⚠ ☉ ☓   <SshJob `client`> OK " in done.stdout


def test_demo_in_yaml(tmp_path):
    done = run("demo_yaml.py", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "5 ⚠ ☉ ↺ ∞ <SshJob `server on fit01`>  requires={4}" in done.stdout
    assert (tmp_path / "measures.txt").read_text().splitlines() == [
        "pong ping 1", "pong ping 2", "pong ping 3"]
    assert "Connection failed" not in done.stdout + done.stderr


def test_cli_tour(tmp_path):
    done = run("cli_tour.py", str(tmp_path))
    assert done.returncode == 0, done.stderr
    out, err = done.stdout, done.stderr
    assert "fit03:I am fit03" in out
    assert "fit[01-02,04-05] (4)\n--------------------\nLinux\n" in out
    assert "apssh: 2 ok, 3 failed: fit[01,03,05]" in err
    assert "========== 3 hostnames selected (2 excluded):\nfit01\nfit03\nfit05\n" in out
    assert "['pulled/fit02/flag', 'pulled/fit04/flag']" in out
    assert "apssh: gateway:1: connection refused" in err
    assert out.rstrip().endswith("(exit code 255)")


def test_process_login():
    done = run("process_login.py")
    assert done.returncode == 0, done.stderr
    assert "logged in as alice" in done.stdout
    assert "the console heard: uptime" in done.stdout
    assert "node1:logout" in done.stdout
    assert "console exit status: 0" in done.stdout


def test_netcat():
    done = run("netcat.py")
    assert done.returncode == 0, done.stderr
    assert "the receiver got: 'hi there!\\n'" in done.stdout
    assert "sender exit status: 0, receiver exit status: 0" in done.stdout


def test_per_host_args():
    done = run("per_host_args.py")
    assert done.returncode == 0, done.stderr
    group, cli = done.stdout.split("----- apssh --args FILE\n")
    for rank in range(10):  # each node got its own argument
        node, got = f"node{rank + 1}", "the odd one" if rank == 3 else f"--channel {rank + 1}"
        assert f"rank {rank}: {node} rank {rank} got {got}\n" in group
        assert f"{node}:{node} rank {rank} got {got}\n" in group
        got = "--channel 33 --name the odd one" if rank == 2 else f"--channel {rank + 1}"
        assert re.search(rf"^{node} *:{node} rank {rank} got {got}$", cli, re.M)
    assert re.search(r"^node10: ok in \d+\.\d\ds\n10 ok, 0 failed\n", group, re.M)
    assert "apssh: 10 ok, 0 failed" in done.stderr
    assert cli.rstrip().endswith("(exit code 0)")


def test_forward():
    done = run("forward.py")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^LOCALNODE:the tunnel listens on port (\d+)$", out, re.M)
    port = re.search(r"port (\d+)$", out, re.M).group(1)  # type: ignore[union-attr]
    assert f"<ForwardJob `tunnel to fit02`> closed 127.0.0.1:{port}" in out
    assert "<Job `close tunnel to fit02`> [[ -> None]] requires={2, 3}" in out
    assert "fit02 says: SSH-2.0-" in out
    assert f"port {port} still listening after the run: False" in out
