#!/usr/bin/env python3
"""Talking to 100 remote processes: nepi-ng's ``node.process()`` against one ``ssh`` each.

    .venv/bin/python bench/bench_process.py                       # 5 rounds, 100 nodes
    .venv/bin/python bench/bench_process.py --quick --nodes 10    # 2 rounds, while developing

On each node the same dialogue: start ``sh -c 'echo ready; read x; echo got $x'``,
wait for its banner (``ready``), write a line, wait for its end (and its answer).

- nepi-ng: one asyncio program, one ``SshNode`` (one connection) per node, all
  the dialogues at once (``asyncio.gather``), from a regular install in a throwaway venv;
- ssh per node: one Python program that starts one OpenSSH ``ssh`` per node with
  pipes, reads every banner, writes every line, then waits for every ``ssh``.

Both check host keys against the same known_hosts. Each contender runs as its own
process; its whole-process CPU (user + system, its ``ssh`` children included) and
wall time are measured from outside, medians of rounds in which the contenders
take turns. The nodes are 127.0.x.y addresses of a few sshd (16 addresses each),
``MaxStartups 200`` so that no handshake is dropped: both do the same work.
``nodes ok``: dialogues that went through (banner, answer, exit 0), in the worst round.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from _timing import timed  # noqa: E402
from _venvs import installed_nepi_ng  # noqa: E402
from sshd import Keys, Sshd  # noqa: E402

REMOTE = "sh -c 'echo ready; read x; echo got $x'"

#: argv: key known_hosts hosts-file remote-command; one "ok" line per dialogue that went through
OURS = """
import asyncio, sys
from apssh import SshNode
key, known, hosts = sys.argv[1], sys.argv[2], [l.split() for l in open(sys.argv[3])]
REMOTE = sys.argv[4]
async def one(host, port):
    node = SshNode(host, port=int(port), username="root", keys=[key], known_hosts=known,
                   ssh_config=None)
    try:
        async with node.process(REMOTE, show=False) as proc:
            await proc.expect(r"^ready$", timeout=60)
            await proc.write(f"{host}\\n")
            status = await proc.wait(timeout=60)
        return status == 0 and proc.stdout == f"ready\\ngot {host}\\n".encode()
    finally:
        await node.close()
async def main():
    found = await asyncio.gather(*(one(h, p) for h, p in hosts), return_exceptions=True)
    sys.stdout.write("".join("ok\\n" for f in found if f is True))
asyncio.run(main())
"""

#: argv: key known_hosts hosts-file remote-command; the same dialogues, one ssh process per node
SSH_PER_NODE = """
import subprocess, sys
key, known, hosts = sys.argv[1], sys.argv[2], [l.split() for l in open(sys.argv[3])]
REMOTE = sys.argv[4]
procs = [(h, subprocess.Popen(
    ["ssh", "-F", "none", "-p", p, "-i", key, "-o", f"UserKnownHostsFile={known}",
     "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
     f"root@{h}", REMOTE],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
    for h, p in hosts]
banners = [proc.stdout.readline() == b"ready\\n" for _, proc in procs]
for (h, proc), banner in zip(procs, banners):
    try:
        proc.stdin.write(f"{h}\\n".encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
ok = 0
for (h, proc), banner in zip(procs, banners):
    rest = proc.stdout.read()
    if proc.wait() == 0 and banner and rest == f"got {h}\\n".encode():
        ok += 1
sys.stdout.write("ok\\n" * ok)
"""


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (children included), nodes whose dialogue went through."""
    with tempfile.TemporaryFile() as out:
        wall, cpu, _ = timed(command, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.DEVNULL, env=env)
        out.seek(0)
        ok = out.read().count(b"ok\n")
    return wall, cpu, ok


def pytest_running() -> bool:
    return subprocess.run(["pgrep", "-f", "pytest"], capture_output=True,
                          check=False).returncode == 0


def wait_for_quiet(limit: float = 600, every: float = 5) -> None:
    """Wait until no pytest runs on the machine (at most ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while True:
        if not pytest_running():
            return
        if time.monotonic() > deadline:
            print("pytest still running after the wait: measuring anyway", file=sys.stderr)
            return
        print("pytest is running: waiting", file=sys.stderr, flush=True)
        time.sleep(every)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--nodes", type=int, default=100)
    args = parser.parse_args()
    rounds = 2 if args.quick else 5
    ours_python = str(installed_nepi_ng() / "python")
    # nepi-ng as users install it (modules compiled), not this checkout's sources
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    work = Path(tempfile.mkdtemp(prefix="nepi-ng-bench-process-"))
    keys = Keys(work)
    daemons: list[Sshd] = []
    try:
        for d in range((args.nodes + 15) // 16):
            daemons.append(Sshd(keys, f"d{d}", [f"127.0.{50 + d}.{i}" for i in range(1, 17)],
                                max_startups="200:30:400"))
        known = work / "known_hosts"
        known.write_text("".join(f"{line}\n" for d in daemons for line in d.known_hosts_lines()))
        pairs = [(a, d.port) for d in daemons for a in d.addresses][: args.nodes]
        hosts = work / "hosts"
        hosts.write_text("".join(f"{a} {p}\n" for a, p in pairs))
        ours, theirs = work / "ours.py", work / "ssh_per_node.py"
        ours.write_text(textwrap.dedent(OURS))
        theirs.write_text(textwrap.dedent(SSH_PER_NODE))
        common = [str(keys.client_key), str(known), str(hosts), REMOTE]
        contenders = {
            "nepi-ng process": [ours_python, str(ours), *common],
            "ssh per node": [sys.executable, str(theirs), *common],
        }
        if not args.quick:
            wait_for_quiet()
        runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in contenders}
        disturbed = False
        for _ in range(rounds):
            for name, command in contenders.items():
                runs[name].append(measure(command, env))
                disturbed = disturbed or pytest_running()
        print(f"{args.nodes} nodes ({len(daemons)} sshd) x (start, expect banner, write a line,"
              f" wait), median of {rounds} rounds: whole-process client CPU and wall")
        print(f"{'':16} {'CPU s':>7} {'wall s':>7} {'nodes ok':>9} {'CPU/ssh':>8} {'wall/ssh':>9}")
        medians = {name: (statistics.median(r[1] for r in found),
                          statistics.median(r[0] for r in found),
                          min(r[2] for r in found)) for name, found in runs.items()}
        base_cpu, base_wall, _ = medians["ssh per node"]
        for name, (cpu, wall, ok) in medians.items():
            print(f"{name:16} {cpu:7.2f} {wall:7.2f} {ok:>5}/{args.nodes}"
                  f" {cpu / base_cpu:8.2f} {wall / base_wall:9.2f}", flush=True)
        if disturbed:
            print("(a pytest ran during the measurement: these figures are disturbed)")
    finally:
        for daemon in daemons:
            daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
