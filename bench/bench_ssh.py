#!/usr/bin/env python3
"""ssh benchmark against real OpenSSH daemons on loopback, every figure in one run.

    .venv/bin/python bench/bench_ssh.py           # everything (installs apssh 0.27.0 in /tmp)
    .venv/bin/python bench/bench_ssh.py --quick   # fewer repeats, no apssh 0.27.0

Each contender runs as its own process; its whole-process CPU (user + system,
children included) and wall time are measured from outside, medians of the
repeats (the contenders take turns in each round). nepi-ng runs from a regular
install in a throwaway venv (compiled modules, as users get it). Daemons listen
on 127.0.x.y.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

sys.path.insert(0, str(REPO / "bench"))

from _timing import timed  # noqa: E402
from _venvs import installed_nepi_ng, throwaway_python  # noqa: E402
from sshd import Keys, Sshd  # noqa: E402

LEGACY = Path("/tmp/nepi-ng-bench-apssh-0.27.0")

OURS = """
import sys
from apssh import SshNode, SshJob, Run
from apssh.formatters import RawFormatter
from asynciojobs import Scheduler
key, known, hosts = sys.argv[1], sys.argv[2], [l.split() for l in open(sys.argv[3])]
fmt = RawFormatter(verbose=False)
jobs = [SshJob(SshNode(h, port=int(p), keys=[key], known_hosts=known, ssh_config=None,
                       formatter=fmt), command=Run(sys.argv[4])) for h, p in hosts]
Scheduler(*jobs, critical=False).run()
"""

RAW = """
import asyncio, sys
import asyncssh
key, known, hosts = sys.argv[1], sys.argv[2], [l.split() for l in open(sys.argv[3])]
async def one(h, p):
    async with asyncssh.connect(h, port=int(p), username="root", client_keys=[key],
                                known_hosts=known, config=None) as conn:
        result = await conn.run(sys.argv[4])
        sys.stdout.write(result.stdout)
        return result.exit_status
async def main():
    return await asyncio.gather(*(one(h, p) for h, p in hosts), return_exceptions=True)
asyncio.run(main())
"""

LEGACY_SCRIPT = """
import sys
import asyncssh
from apssh import SshNode, SshJob, Run
from apssh.formatters import RawFormatter
from asynciojobs import Scheduler
key, known, hosts = sys.argv[1], sys.argv[2], [l.split() for l in open(sys.argv[3])]
keys = [asyncssh.read_private_key(key)]
fmt = RawFormatter(verbose=False)
jobs = [SshJob(SshNode(h, port=int(p), keys=keys, known_hosts=known, formatter=fmt),
               command=Run(sys.argv[4]), critical=False) for h, p in hosts]
Scheduler(*jobs, critical=False).run()
"""


SCALE = """
import sys
from apssh import SshNode, SshJob, Run
from apssh.formatters import RawFormatter
from asynciojobs import Scheduler
key, known, hosts = sys.argv[1], sys.argv[2], [l.split() for l in open(sys.argv[3])]
nodes, per_node = int(sys.argv[4]), int(sys.argv[5])
fmt = RawFormatter(verbose=False)
jobs = []
for i in range(nodes):
    h, p = hosts[i % len(hosts)]
    node = SshNode(h, port=int(p), keys=[key], known_hosts=known, ssh_config=None, formatter=fmt,
                   timeout=120)
    jobs += [SshJob(node, command=Run("echo ok"), critical=False) for _ in range(per_node)]
Scheduler(*jobs, critical=False).run()
"""

PUSH = """
import sys
from apssh import SshNode, SshJob, Push
from asynciojobs import Scheduler
key, known, host, port, source, target = sys.argv[1:7]
node = SshNode(host, port=int(port), keys=[key], known_hosts=known, ssh_config=None)
Scheduler(SshJob(node, command=Push(source, target))).run()
print("pushed")
"""


def measure(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (children included), lines printed (one per host ok)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        wall, cpu, _ = timed(command, stdout=out, stderr=err, env=env)
        out.seek(0)
        lines = len(out.read().splitlines())
    return wall, cpu, lines


def median_of(command: list[str], repeats: int, env: dict[str, str] | None = None
              ) -> tuple[float, float, int]:
    """Medians of wall, CPU and hosts ok over ``repeats`` runs."""
    runs = [measure(command, env) for _ in range(repeats)]
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            int(statistics.median(r[2] for r in runs)))


def interleaved(commands: dict[str, list[str]], repeats: int,
                env: dict[str, str] | None = None) -> dict[str, tuple[float, float, int]]:
    """Medians of wall, CPU and hosts ok, the contenders taking turns in each round
    (so that a slow spell of the machine does not fall on one of them only)."""
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            runs[name].append(measure(command, env))
    return {name: (statistics.median(r[0] for r in found),
                   statistics.median(r[1] for r in found),
                   int(statistics.median(r[2] for r in found)))
            for name, found in runs.items()}


def print_table(rows: dict[str, tuple[float, float, int]], hosts: int) -> None:
    """CPU, wall, hosts ok and CPU per host ok for each contender, and the ratios
    to apssh 0.27.0's (which reaches fewer hosts, hence the per-host column)."""
    base = rows.get("apssh 0.27.0")
    print(f"{'':16} {'CPU s':>7} {'wall s':>7} {'hosts ok':>9} {'ms/host ok':>11}"
          + (f" {'CPU/0.27':>9} {'wall/0.27':>10} {'per host':>9}" if base else ""))
    for name, (wall, cpu, ok) in rows.items():
        per_host = 1000 * cpu / max(ok, 1)
        line = f"{name:16} {cpu:7.2f} {wall:7.2f} {ok:>5}/{hosts} {per_host:11.1f}"
        if base:
            base_per_host = 1000 * base[1] / max(base[2], 1)
            line += (f" {cpu / base[1]:9.2f} {wall / base[0]:10.2f}"
                     f" {per_host / base_per_host:9.2f}")
        print(line, flush=True)


def legacy_python() -> str | None:
    return throwaway_python(LEGACY, "apssh==0.27.0")


def scale(python: str, keys: Keys, daemons: list[Sshd], known: Path, hosts: Path, work: Path,
          env: dict[str, str], repeats: int) -> None:
    """500 nodes on one sshd, 100 commands on one node, many commands, a big push."""
    script = work / "scale.py"
    script.write_text(textwrap.dedent(SCALE))
    one = work / "one_daemon"
    one.write_text("".join(f"{a} {daemons[0].port}\n" for a in daemons[0].addresses))
    common = [python, str(script), str(keys.client_key), str(known)]
    wall, _, ok = measure([*common, str(one), "500", "1"], env)
    print(f"500 nodes on one sshd (MaxStartups 10:30:100), no window: {ok}/500 in {wall:.1f}s")
    single = work / "single"
    single.write_text(f"{daemons[0].addresses[0]} {daemons[0].port}\n")
    wall, _, ok = measure([*common, str(single), "1", "100"], env)
    print(f"100 concurrent commands on one node (MaxSessions 10): {ok}/100 in {wall:.1f}s")
    ours = median_of([*common, str(hosts), "50", "20"], repeats, env)
    per_command = work / "per_command"
    pairs = hosts.read_text().splitlines()[:50]
    per_command.write_text("".join(f"{pair}\n" for pair in pairs for _ in range(20)))
    ssh_each = ["sh", "-c",
                f"xargs -P 10 -n 2 sh -c 'ssh -n -p \"$1\" -i {keys.client_key}"
                f" -o UserKnownHostsFile={known} -o BatchMode=yes -o LogLevel=ERROR"
                f" root@\"$0\" echo ok || exit 0' < {per_command}"]
    theirs = median_of(ssh_each, 1)
    print(f"50 nodes x 20 commands: ours {ours[0]:.2f}s ({ours[2]}/1000 ok), one ssh per"
          f" command (xargs -P 10) {theirs[0]:.2f}s ({theirs[2]}/1000 ok):"
          f" {theirs[0] / ours[0]:.1f}x faster")
    big = work / "big.bin"
    with big.open("wb") as file:
        file.truncate(256 * 1024 * 1024)  # a sparse file reads as zeros: no disk needed
    address, port = daemons[0].addresses[0], str(daemons[0].port)
    push = work / "push.py"
    push.write_text(textwrap.dedent(PUSH))
    target = f"/tmp/{work.name}-pushed.bin"
    ours_push = median_of([python, str(push), str(keys.client_key), str(known), address,
                           port, str(big), target], 3, env)
    scp = median_of(["scp", "-q", "-P", port, "-i", str(keys.client_key), "-o",
                     f"UserKnownHostsFile={known}", "-o", "BatchMode=yes", str(big),
                     f"root@{address}:{target}"], 3)
    Path(target).unlink(missing_ok=True)
    print(f"Push 256 MiB: {256 / ours_push[0]:.0f} MiB/s, scp {256 / scp[0]:.0f} MiB/s:"
          f" {scp[0] / ours_push[0]:.2f}x scp's throughput")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--hosts", type=int, default=100)
    args = parser.parse_args()
    repeats = 3 if args.quick else 5
    work = Path(tempfile.mkdtemp(prefix="nepi-ng-bench-ssh-"))
    keys = Keys(work)
    daemons = [Sshd(keys, f"d{d}", [f"127.0.{10 + d}.{i}" for i in range(1, 17)])
               for d in range((args.hosts + 15) // 16)]
    try:
        known = work / "known_hosts"
        known.write_text("".join(line + "\n" for d in daemons for line in d.known_hosts_lines()))
        pairs = [(a, d.port) for d in daemons for a in d.addresses][: args.hosts]
        hosts = work / "hosts"
        hosts.write_text("".join(f"{a} {p}\n" for a, p in pairs))
        scripts = {}
        for name, body in (("ours", OURS), ("raw", RAW), ("legacy", LEGACY_SCRIPT)):
            scripts[name] = work / f"{name}.py"
            scripts[name].write_text(textwrap.dedent(body))
        # nepi-ng as users install it (modules compiled), not this checkout's sources
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        ours_python = str(installed_nepi_ng() / "python")
        common = [str(keys.client_key), str(known), str(hosts)]
        ssh_per_host = ["sh", "-c",
                        f"xargs -P {args.hosts} -n 2 sh -c 'ssh -n -p \"$1\" -i {keys.client_key}"
                        f" -o UserKnownHostsFile={known} -o BatchMode=yes -o LogLevel=ERROR"
                        f" root@\"$0\" hostname || exit 0' < {hosts}"]
        commands = {
            "nepi-ng apssh": [ours_python, str(scripts["ours"]), *common, "hostname"],
            "plain asyncssh": [ours_python, str(scripts["raw"]), *common, "hostname"],
            "ssh per host": ssh_per_host,
        }
        legacy = None if args.quick else legacy_python()
        if legacy:
            commands["apssh 0.27.0"] = [legacy, str(scripts["legacy"]), *common, "hostname"]
        rows = interleaved(commands, repeats, env)
        print(f"hostname on {args.hosts} hosts ({len(daemons)} sshd, default MaxStartups),"
              f" median of {repeats}: whole-process client CPU and wall")
        print_table(rows, args.hosts)
        scale(ours_python, keys, daemons, known, hosts, work, env, repeats)
    finally:
        for daemon in daemons:
            daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
