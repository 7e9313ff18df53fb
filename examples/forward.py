"""Port forwarding as a job, on the embedded lab: a tunnel through the gateway.

    .venv/bin/python examples/forward.py

The lab's nodes (fit01, fit02) are reached only through its gateway. A
``ForwardJob`` listens on 127.0.0.1 here, on a port the system chooses, and
carries each connection through the gateway's ssh connection to fit02's ssh
port (``ssh -L 0:fit02:22 gateway``). The jobs that require it start as soon
as it listens: one reads fit02's ssh banner through the tunnel, one gets the
port as a variable for a ``Deferred`` command. The tunnel closes as soon as
both are done (``close_after``), and nothing listens on its port afterwards.
"""

from __future__ import annotations

import asyncio
import sys

from apssh import (
    Capture,
    Deferred,
    ForwardJob,
    HostFormatter,
    LocalNode,
    Run,
    SshJob,
    Variables,
    co_close_ssh_in_scheduler,
)
from apssh.lab import Lab
from asynciojobs import Job, Scheduler


async def read_banner(tunnel: ForwardJob) -> str:
    """The first line fit02's ssh server sends, read through the tunnel."""
    assert tunnel.port is not None  # the tunnel listens: this job requires it
    reader, writer = await asyncio.open_connection("127.0.0.1", tunnel.port)
    banner = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return banner.decode().strip()


async def listens(port: int) -> bool:
    """Whether anything accepts connections on 127.0.0.1:port."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def main() -> int:
    async with Lab(nodes=2, gateway=True) as lab:
        gateway = lab.ssh_node("gateway")
        env = Variables()
        scheduler = Scheduler()
        tunnel = ForwardJob(gateway, listen=0, to="fit02:22", capture=Capture("port", env),
                            label="tunnel to fit02", scheduler=scheduler)
        banner = Job(read_banner, tunnel, label="banner through the tunnel",
                     required=tunnel, scheduler=scheduler)
        deferred = SshJob(LocalNode(formatter=HostFormatter(verbose=False)),
                          command=Run(Deferred("echo the tunnel listens on port {{port}}", env)),
                          label="port as a variable", required=tunnel, scheduler=scheduler)
        tunnel.close_after(banner, deferred)  # else: when the scheduler ends
        ok = await scheduler.co_run()
        scheduler.list()
        print(f"fit02 says: {banner.result()}")
        port = tunnel.result()
        print(f"port {port} still listening after the run: {await listens(port)}")
        await co_close_ssh_in_scheduler(scheduler)  # the gateway's connection
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
