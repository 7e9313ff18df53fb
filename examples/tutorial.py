"""The tutorial's steps, from "hello node" to a scenario through a gateway, on the lab.

    .venv/bin/python examples/tutorial.py

Each step is a function quoted by docs/tutorial.md; all run against an embedded
lab, so nothing but loopback is used.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from apssh import (
    Capture,
    Deferred,
    HostFormatter,
    Pull,
    Push,
    Run,
    RunString,
    SshJob,
    Variables,
)
from apssh.lab import Lab
from asynciojobs import Scheduler, Sequence


async def step1_hello(lab: Lab) -> None:
    """One node, one command."""
    node = lab.ssh_node("node1", formatter=HostFormatter(verbose=False))
    scheduler = Scheduler(SshJob(node, command=Run("echo hello from $LAB_NODE")))
    await scheduler.co_run()
    await node.close()


async def step2_several_nodes(lab: Lab) -> None:
    """The same command on every node, in parallel; one connection per node."""
    formatter = HostFormatter(verbose=False)
    nodes = [lab.ssh_node(name, formatter=formatter) for name in ("node1", "node2", "node3")]
    scheduler = Scheduler(*(SshJob(node, command=Run("hostname; uname -s")) for node in nodes))
    await scheduler.co_run()
    for node in nodes:
        await node.close()


async def step3_requirements_and_files(lab: Lab, workdir: Path) -> None:
    """A sequence: push a file, use it, pull a result back."""
    node = lab.ssh_node("node1", formatter=HostFormatter(verbose=False))
    config = workdir / "config.txt"
    config.write_text("rate=54\n")
    scheduler = Scheduler(Sequence(
        SshJob(node, command=Push(str(config), "config.txt"), label="push config"),
        SshJob(node, command=Run("sed s/54/11/ config.txt > result.txt"), label="compute"),
        SshJob(node, command=Pull("result.txt", str(workdir / "result.txt")), label="pull"),
    ))
    await scheduler.co_run()
    print("result:", (workdir / "result.txt").read_text().strip())
    await node.close()


async def step4_capture_and_scripts(lab: Lab) -> None:
    """A value captured on one node feeds a script on another."""
    formatter = HostFormatter(verbose=False)
    node1, node2 = (lab.ssh_node(name, formatter=formatter) for name in ("node1", "node2"))
    env = Variables()
    first = SshJob(node1, command=Run("echo 42", capture=Capture("answer", env)))
    script = "#!/bin/sh\necho \"node2 got $1\"\n"
    second = SshJob(node2, command=RunString(script, Deferred("{{answer}}", env)),
                    required=first)
    await Scheduler(first, second).co_run()
    await node1.close()
    await node2.close()


async def step5_through_a_gateway() -> None:
    """Nodes only the gateway knows, a server (forever) and a client, a timeout."""
    async with Lab(nodes=2, gateway=True) as lab:
        formatter = HostFormatter(verbose=False)
        gateway = lab.ssh_node("gateway", formatter=formatter)
        fit01, fit02 = (lab.ssh_node(name, gateway=gateway, formatter=formatter)
                        for name in ("fit01", "fit02"))
        server = SshJob(fit01, command=Run("echo server up; sleep 3600"), forever=True,
                        label="server")
        client = SshJob(fit02, command=Run("echo client runs"), label="client")
        scheduler = Scheduler(server, client, timeout=20)
        await scheduler.co_run()
        scheduler.list()
        for node in (fit01, fit02, gateway):
            await node.close()


async def main() -> None:
    async with Lab(nodes=3) as lab:
        with tempfile.TemporaryDirectory() as workdir:
            for step in (step1_hello, step2_several_nodes):
                print(f"----- {step.__name__}")
                await step(lab)
            print("----- step3_requirements_and_files")
            await step3_requirements_and_files(lab, Path(workdir))
            print("----- step4_capture_and_scripts")
            await step4_capture_and_scripts(lab)
    print("----- step5_through_a_gateway")
    await step5_through_a_gateway()


if __name__ == "__main__":
    asyncio.run(main())
