#!/usr/bin/env python3
"""Big outputs through ``apssh -r`` against OpenSSH ``ssh``, same sshd, same run.

    .venv/bin/python bench/bench_output.py            # 7 rounds
    .venv/bin/python bench/bench_output.py --quick    # 3 rounds

Two workloads, 20 MB each, produced on the remote side of a real sshd on
loopback: one line without newline (``head -c 20000000 /dev/zero | tr '\\0' x``)
and a random binary stream (``head -c 20000000 /dev/urandom``). Each contender
runs as its own process, its stdout to a file (checked: every byte arrived,
and the line's sha256); whole-process client CPU (user + system, children
included) and wall are measured from outside, medians of rounds in which the
contenders take turns. nepi-ng runs from a regular install in a throwaway venv.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from _timing import timed  # noqa: E402
from _venvs import installed_nepi_ng  # noqa: E402
from sshd import Keys, Sshd  # noqa: E402

SIZE = 20_000_000
WORKLOADS = {
    "one 20 MB line, no newline": f"head -c {SIZE} /dev/zero | tr '\\0' x",
    "20 MB random binary": f"head -c {SIZE} /dev/urandom",
}
#: what the line workload must give back, byte for byte
LINE_SHA = hashlib.sha256(b"x" * SIZE).hexdigest()


def measure(command: list[str], out: Path) -> tuple[float, float, bool]:
    """Wall seconds, CPU seconds (children included), whether the output is whole."""
    with out.open("wb") as file:
        wall, cpu, status = timed(command, stdin=subprocess.DEVNULL, stdout=file,
                                  stderr=subprocess.DEVNULL)
    data = out.read_bytes()
    whole = status == 0 and len(data) == SIZE
    if whole and command[-1] == WORKLOADS["one 20 MB line, no newline"]:
        whole = hashlib.sha256(data).hexdigest() == LINE_SHA
    return wall, cpu, whole


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    apssh = installed_nepi_ng() / "apssh"
    work = Path(tempfile.mkdtemp(prefix="nepi-ng-bench-output-"))
    keys = Keys(work)
    daemon = Sshd(keys, "output", ["127.0.40.1"])
    try:
        known = work / "known_hosts"
        known.write_text("".join(f"{line}\n" for line in daemon.known_hosts_lines()))
        address, port, key = daemon.addresses[0], str(daemon.port), str(keys.client_key)
        contenders = {
            "ssh": ["ssh", "-F", "none", "-n", "-p", port, "-i", key, "-o",
                    f"UserKnownHostsFile={known}", "-o", "BatchMode=yes", "-o",
                    "LogLevel=ERROR", f"root@{address}"],
            "nepi-ng apssh -r": [str(apssh), "-F", "none", "--known-hosts", str(known),
                                 "-k", key, "-l", "root", "-p", port, "-r", "-t", address],
        }
        runs: dict[tuple[str, str], list[tuple[float, float, bool]]] = {
            (workload, name): [] for workload in WORKLOADS for name in contenders}
        out = work / "out.bin"
        for _ in range(rounds):
            for workload, remote in WORKLOADS.items():
                for name, command in contenders.items():
                    runs[workload, name].append(measure([*command, remote], out))
        print(f"20 MB to a file through one sshd on loopback, median of {rounds} rounds"
              " (contenders take turns): whole-process client CPU and wall")
        print(f"{'workload':28} {'contender':17} {'CPU s':>6} {'wall s':>7}"
              f" {'CPU/ssh':>8} {'wall/ssh':>9} {'whole':>6}")
        for workload in WORKLOADS:
            base_cpu = base_wall = 0.0
            for name in contenders:
                found = runs[workload, name]
                wall = statistics.median(r[0] for r in found)
                cpu = statistics.median(r[1] for r in found)
                whole = sum(r[2] for r in found)
                if name == "ssh":
                    base_cpu, base_wall = cpu, wall
                print(f"{workload:28} {name:17} {cpu:6.2f} {wall:7.2f}"
                      f" {cpu / base_cpu:8.2f} {wall / base_wall:9.2f}"
                      f" {whole:>3}/{len(found)}", flush=True)
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
