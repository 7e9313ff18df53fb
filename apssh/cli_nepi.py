"""The ``nepi-ng`` command: ``nepi-ng lab`` starts an embedded lab and says how to reach it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nepi-ng``; returns the exit code."""
    from asynciojobs import __version__

    parser = argparse.ArgumentParser(prog="nepi-ng", description="nepi-ng tools")
    parser.add_argument("-V", "--version", action="version", version=f"nepi-ng {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    lab = commands.add_parser("lab", help="serve virtual nodes over SSH on loopback")
    lab.add_argument("--nodes", type=int, default=5, help="how many nodes (default 5)")
    lab.add_argument("--gateway", action="store_true",
                     help="nodes named fitNN, reachable only through the lab gateway")
    lab.add_argument("--workdir", help="where the lab keeps its files (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.nodes < 1:
        parser.error("--nodes: at least 1")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a lab stops
        asyncio.run(serve_lab(args.nodes, args.gateway, args.workdir))
    return 0


async def serve_lab(nodes: int, gateway: bool, workdir: str | None) -> None:
    """Run a lab until interrupted, after printing how to reach each node."""
    from .lab import Lab

    async with Lab(nodes=nodes, gateway=gateway, workdir=workdir) as lab:
        print(f"nepi-ng lab: {nodes} nodes{' behind a gateway' if gateway else ''}, "
              f"files in {lab.workdir}")
        print(f"  ssh_config:  {lab.ssh_config}\n  known_hosts: {lab.known_hosts}\n"
              f"  client key:  {lab.client_key}")
        for node in [*([lab.gateway] if lab.gateway else []), *lab.nodes]:
            print(f"  {node.name:8} ssh -F {lab.ssh_config} {node.name}")
        print("Ctrl-C to stop", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
