"""execo's netcat example, on the embedded lab: a receiver on one node, a sender on another.

    .venv/bin/python examples/netcat.py

The receiver (``nc -lv``) starts as a ``Process`` on node1; instead of sleeping
and hoping, the script waits until netcat says it listens (``expect()`` on its
stderr, where OpenBSD's netcat says so), then runs the sender on node2, waits
for the receiver to end and prints what it got. ``async with`` kills the
receiver whatever happens inside. Needs netcat (Debian: netcat-openbsd) on the
nodes; the lab's nodes run their commands on this machine, on loopback.
"""

from __future__ import annotations

import asyncio
import socket
import sys

from apssh import HostFormatter
from apssh.lab import Lab


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def main() -> int:
    port = free_port()
    async with Lab(nodes=2) as lab:
        host1, host2 = (lab.ssh_node(name, formatter=HostFormatter(verbose=False))
                        for name in ("node1", "node2"))
        async with host1.process(f"nc -lv 127.0.0.1 {port}") as receiver:
            await receiver.expect(r"(?i)^listening on", timeout=10, stream="stderr")
            sender = host2.process(f"echo 'hi there!' | nc -N 127.0.0.1 {port}")
            await sender.start()
            sent = await sender.wait(timeout=10)
            received = await receiver.wait(timeout=10)
        print(f"sender exit status: {sent}, receiver exit status: {received}")
        print(f"the receiver got: {receiver.stdout_text!r}")
        for node in (host1, host2):
            await node.close()
    return 0 if receiver.stdout == b"hi there!\n" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
