"""The embedded lab: commands, SFTP, cancellation, a gateway, OpenSSH as a client."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
from test_ssh_core import Recorder, remote_processes

from apssh import HostFormatter, Pull, Push, Run, RunString, SshJob
from apssh.lab import Lab
from asynciojobs import Scheduler


async def test_lab_nodes_run_commands_in_their_own_directory():
    async with Lab(nodes=3) as lab:
        rec = Recorder()
        jobs = [SshJob(lab.ssh_node(f"node{i}", formatter=rec),
                       command=Run("echo $LAB_NODE; pwd; echo err >&2"))
                for i in (1, 2, 3)]
        assert await Scheduler(*jobs).co_run() is True
        lines = sorted(line for _, line in rec.out)
        assert [line for line in lines if line.startswith("node")] == \
            ["node1\n", "node2\n", "node3\n"]
        assert f"{lab.workdir}/nodes/node2\n" in lines
        assert [line for _, line in rec.err] == ["err\n"] * 3
        for job in jobs:
            await job.node.close()


async def test_lab_sftp_scripts_and_exit_codes(tmp_path):
    async with Lab(nodes=1) as lab:
        source = tmp_path / "data.txt"
        source.write_text("payload")
        node = lab.ssh_node("node1", formatter=Recorder())
        job = SshJob(node, commands=[
            Push(str(source), "data.txt"),
            Run("cat data.txt > copy.txt"),
            Pull("copy.txt", str(tmp_path / "back.txt")),
            RunString("#!/bin/sh\nexit 3\n", allowed_exits=[3]),
        ])
        assert await Scheduler(job).co_run() is True
        assert (tmp_path / "back.txt").read_text() == "payload"
        assert (lab.workdir / "nodes" / "node1" / "data.txt").read_text() == "payload"
        await node.close()


async def test_lab_kills_a_cancelled_command():
    async with Lab(nodes=1) as lab:
        node = lab.ssh_node("node1", formatter=Recorder())
        token = "25.3737"
        job = SshJob(node, command=Run(f"sleep {token}", timeout=0.5), critical=False)
        await Scheduler(job).co_run()
        assert job.raised_exception() is not None
        assert remote_processes(f"sleep {token}") == []
        await node.close()


async def test_lab_gateway_resolves_names_only_it_knows():
    async with Lab(nodes=2, gateway=True) as lab:
        rec = Recorder()
        gateway = lab.ssh_node("gateway", formatter=rec)
        nodes = [lab.ssh_node(name, formatter=rec, gateway=gateway) for name in ("fit01", "fit02")]
        jobs = [SshJob(n, command=Run("echo $LAB_NODE")) for n in nodes]
        assert await Scheduler(*jobs).co_run() is True
        assert sorted(line for _, line in rec.out) == ["fit01\n", "fit02\n"]
        assert rec.connects("gateway") == 1  # the gateway, shared
        for n in (*nodes, gateway):
            await n.close()


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client")
async def test_openssh_reaches_the_lab_with_its_ssh_config():
    async with Lab(nodes=1, gateway=True) as lab:
        for host in ("gateway", "fit01"):
            proc = await asyncio.create_subprocess_exec(
                "ssh", "-F", str(lab.ssh_config), "-o", "BatchMode=yes", host, "echo $LAB_NODE",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
            assert proc.returncode == 0, err
            assert out.decode() == f"{host}\n"


async def test_lab_stops_cleanly(tmp_path):
    lab = Lab(nodes=2, workdir=tmp_path / "lab")
    await lab.start()
    port = lab.nodes[0].port
    await lab.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


def test_nepi_ng_lab_command_serves_until_interrupted(tmp_path):
    import signal
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "apssh.cli.nepi", "lab", "--nodes", "2",
                             "--workdir", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = []
    while not (line := proc.stdout.readline()).startswith("Ctrl-C"):
        lines.append(line)
    assert lines[0].startswith("nepi-ng lab: 2 nodes")
    assert any(f"ssh -F {tmp_path}/ssh_config node2" in line for line in lines)
    done = subprocess.run(["ssh", "-F", str(tmp_path / "ssh_config"), "-o", "BatchMode=yes",
                           "node2", "echo $LAB_NODE"], capture_output=True, text=True,
                          timeout=30)
    assert done.stdout == "node2\n", done.stderr
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    proc.stdout.close()


def test_nepi_ng_refuses_bad_arguments(capsys):
    from apssh.cli.nepi import main

    assert main(["lab", "--nodes", "0"]) == 2  # an exit code, not SystemExit
    assert "--nodes: at least 1" in capsys.readouterr().err
    for bad in (["--timeout", "-1"], ["--timeout", "nan"], ["--window", "-2"]):
        assert main(["run", "scenario.yaml", *bad]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and bad[0] in err


async def test_lab_nodes_default_to_a_quiet_host_formatter(capsys, monkeypatch):
    """Without ``formatter=``: ``node1:hello`` lines, no warning, no event lines
    (through the gateway too); an explicit formatter is still the one used."""
    monkeypatch.setattr("apssh.formatters._warned_no_formatter", False)  # it would show
    async with Lab(nodes=1) as lab:
        node = lab.ssh_node("node1")
        assert isinstance(node.formatter, HostFormatter) and not node.formatter.verbose
        assert await Scheduler(SshJob(node, command=Run("echo hello; echo oops >&2"))).co_run()
        await node.close()
        assert capsys.readouterr() == ("node1:hello\n", "node1:oops\n")
        rec = Recorder()
        node = lab.ssh_node("node1", formatter=rec)
        assert node.formatter is rec
        assert await Scheduler(SshJob(node, command=Run("echo mine"))).co_run()
        await node.close()
        assert rec.out == [("node1", "mine\n")]
        assert capsys.readouterr() == ("", "")
    async with Lab(nodes=1, gateway=True) as lab:
        node = lab.ssh_node("fit01")
        assert node.gateway.formatter is not node.formatter  # each its own: no padding
        assert await Scheduler(SshJob(node, command=Run("echo $LAB_NODE"))).co_run()
        await node.close()
        await node.gateway.close()
        assert capsys.readouterr() == ("fit01:fit01\n", "")
