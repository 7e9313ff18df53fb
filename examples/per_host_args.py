"""Per-host arguments: each node of a group gets its own words, on the embedded lab.

    .venv/bin/python examples/per_host_args.py

Ten lab nodes (node1..node10, ssh on 127.0.0.1) run ``echo {host} rank {rank} got
{args}``, first as an ``apssh.Group`` with ``args=[...]`` (node ``rank`` gets item
``rank % len(args)``), then with the command-line tool, in-process
(``Apssh().main(...)``), reading the same arguments from an ``--args FILE``: one line
naming a host, the other lines taken in turn by rank.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from apssh import Group
from apssh.cli import Apssh
from apssh.lab import Lab

COMMAND = "echo {host} rank {rank} got {args}"
#: one item per node; a list is several words, a str one word (quoted: blanks kept)
ARGS: list[str | list[str]] = [["--channel", str(channel)] for channel in range(1, 11)]
ARGS[3] = "the odd one"  # node4

#: the same for the CLI: node3 by its name; the others by rank, among the unnamed lines
ARGS_FILE = "# node3 is special\nnode3: --channel 33 --name 'the odd one'\n" + "".join(
    f"--channel {channel}\n" for channel in range(1, 11))


async def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="per-host-args-"))
    async with Lab(nodes=10) as lab:
        nodes = [lab.ssh_node(node.name) for node in lab.nodes]
        print("----- Group, args=[...]", flush=True)
        async with Group(nodes, COMMAND, args=ARGS) as group:
            await group.wait(timeout=30)
        for rank, process in enumerate(group.processes):
            print(f"rank {rank}: {process.stdout.decode().strip()}")
        print(group.report().rstrip("\n"), flush=True)
        await asyncio.gather(*(node.close() for node in nodes))

        print("----- apssh --args FILE", flush=True)
        args_file = workdir / "channels"
        args_file.write_text(ARGS_FILE)
        # the CLI runs its own event loop: in a thread, while the lab serves on this one
        code = await asyncio.to_thread(
            Apssh().main, "-F", str(lab.ssh_config), "-t", "node[1-10]",
            "--args", str(args_file), COMMAND)
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"(exit code {code})", flush=True)
    return 0 if group.ok and code == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
