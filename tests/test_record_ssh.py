"""Records and events of ssh jobs against the real sshd: commands, outputs, connections."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sshd import free_port
from test_ssh_core import close_nodes, node  # noqa: F401 - the fixture closes nodes

from apssh import Run, RunString, SshJob
from apssh.nodes import LocalNode
from asynciojobs import Scheduler
from asynciojobs.events import (
    CommandEnded,
    CommandStarted,
    ConnectionFailed,
    ConnectionOpened,
    Event,
)
from asynciojobs.record import command_output


def only_dir(parent: Path) -> Path:
    (one,) = [p for p in parent.iterdir() if p.is_dir()]
    return one


def test_ssh_commands_are_recorded_with_their_outputs(lab, tmp_path: Path) -> None:
    ssh = node(lab)
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(range(256)) * 4000)  # binary, no line structure
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    job = SshJob(ssh, commands=[
        Run("echo out; echo err >&2"),
        Run(f"cat {blob}"),
        Run("exit 3", allowed_exits=[]),
    ], critical=False, label="three")
    local = SshJob(LocalNode(), command=Run("echo here"), label="local")
    sched = Scheduler(job, local)
    seen: list[Event] = []
    sched.subscribe(seen.append)
    sched.run(record=tmp_path / "runs")
    record = only_dir(tmp_path / "runs")
    run = json.loads((record / "run.json").read_text())
    jobs = {entry["label"]: entry for entry in run["jobs"]}
    three = jobs["three"]
    # not critical: its failed command is ignored (0.27), the job ends ok
    assert three["outcome"] == "ok" and three["node"] == "127.0.0.1"
    commands = three["commands"]
    assert [(c["index"], c["status"], c["outcome"]) for c in commands] == [
        (0, 0, "ok"), (1, 0, "ok"), (2, 3, "failed")]
    assert commands[2]["reason"] == "exit 3"
    assert command_output(record, commands[0]) == b"out\n"
    assert command_output(record, commands[0], "stderr") == b"err\n"
    copied = command_output(record, commands[1])
    assert hashlib.sha256(copied).hexdigest() == digest
    assert commands[2]["stdout"] is None  # printed nothing
    (local_command,) = jobs["local"]["commands"]
    assert command_output(record, local_command) == b"here\n"
    nodes = run["nodes"]
    assert nodes["127.0.0.1"]["connections"] == 1
    assert nodes["127.0.0.1"]["connect_duration"] > 0
    kinds = [type(e) for e in seen]
    assert kinds.count(CommandStarted) == kinds.count(CommandEnded) == 4
    assert ConnectionOpened in kinds


def test_an_unreachable_node_is_recorded_with_its_reason(lab, tmp_path: Path) -> None:
    down = node(lab, port=free_port(), timeout=5)  # nothing listens: refused at once
    job = SshJob(down, command=Run("true"), critical=False, label="down")
    seen: list[Event] = []
    sched = Scheduler(job)
    sched.subscribe(seen.append)
    sched.run(record=tmp_path)
    run = json.loads((only_dir(tmp_path) / "run.json").read_text())
    failed = run["nodes"]["127.0.0.1"]["failed"]
    assert failed and "refused" in failed
    (failure,) = [e for e in seen if isinstance(e, ConnectionFailed)]
    assert failure.node == "127.0.0.1"
    (command,) = run["jobs"][0]["commands"]
    assert command["outcome"] == "failed" and command["status"] is None


def test_a_script_command_and_retries_show_attempts(lab, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    script = f"#!/bin/sh\nif [ -e {flag} ]; then echo second; exit 0; fi\ntouch {flag}; exit 1\n"
    job = SshJob(node(lab), command=RunString(script, retries=1, retry_on_exit=True),
                 label="flaky")
    assert Scheduler(job).run(record=tmp_path)
    run = json.loads((only_dir(tmp_path) / "run.json").read_text())
    (command,) = run["jobs"][0]["commands"]
    assert command["attempts"] == 2 and command["outcome"] == "ok"
    assert command_output(only_dir(tmp_path), command) == b"second\n"
