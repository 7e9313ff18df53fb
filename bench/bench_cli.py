#!/usr/bin/env python3
"""The apssh command against apssh 0.27.0, one ssh per host and clush, in one run.

    .venv/bin/python bench/bench_cli.py            # everything, 1,000 hosts included
    .venv/bin/python bench/bench_cli.py --quick    # fewer repeats, no 1,000 hosts

- start-up: ``apssh --version``, wall time, median of 15;
- ``hostname`` on 100 hosts: whole-process client CPU (children included) and
  wall, medians of 7 rounds in which the contenders take turns;
- ``hostname`` on 1,000 hosts (63 sshd, 16 addresses each) with no ``-w``;
- ``hostname`` on 100 hosts again, the daemons dropping no handshake (``MaxStartups
  200``): the contenders that do not retry then do the same work as the others.

nepi-ng runs from a regular (non-editable) install in a throwaway venv, as users
get it; apssh 0.27.0 from its own venv. The daemons listen on port 22 of
127.0.x.y addresses (0.27 has no port syntax): run as root, port 22 free.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from _venvs import installed_nepi_ng, throwaway_python  # noqa: E402
from bench_ssh import interleaved, measure, print_table  # noqa: E402
from sshd import Keys, Sshd  # noqa: E402

LEGACY = Path("/tmp/nepi-ng-bench-apssh-0.27.0")


def startup(command: list[str], repeats: int = 15) -> float:
    """Median wall time of ``command`` (which should exit at once)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def daemons_for(keys: Keys, hosts: int, first: int,
                max_startups: str = "10:30:100") -> list[Sshd]:
    return [Sshd(keys, f"d{first + d}", [f"127.0.{first + d}.{i}" for i in range(1, 17)],
                 port=22, max_startups=max_startups) for d in range((hosts + 15) // 16)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    ours_bin = installed_nepi_ng()
    legacy = throwaway_python(LEGACY, "apssh==0.27.0")
    legacy_bin = Path(legacy).parent if legacy else None

    ours_start = startup([str(ours_bin / "apssh"), "--version"])
    line = f"start-up, apssh --version (median of 15): nepi-ng {ours_start:.3f}s"
    if legacy_bin:
        theirs = startup([str(legacy_bin / "apssh"), "--version"])
        line += f", apssh 0.27.0 {theirs:.3f}s: {ours_start / theirs:.2f}x"
    print(line, flush=True)

    work = Path(tempfile.mkdtemp(prefix="nepi-ng-bench-cli-"))
    keys = Keys(work)
    daemons = daemons_for(keys, 100, 20)
    try:
        known = work / "known_hosts"
        known.write_text("".join(f"{line}\n" for d in daemons for line in d.known_hosts_lines()))
        addresses = [a for d in daemons for a in d.addresses][:100]
        hosts = work / "hosts"
        hosts.write_text("".join(f"{a}\n" for a in addresses))
        key = str(keys.client_key)
        ssh_opts = (f"-i {key} -o UserKnownHostsFile={known} -o BatchMode=yes "
                    "-o LogLevel=ERROR")
        rows = {
            "nepi-ng apssh": [str(ours_bin / "apssh"), "-F", "none", "--known-hosts",
                              str(known), "-k", key, "-l", "root", "-t", str(hosts),
                              "hostname"],
            # xargs gives up after a 255: each ssh is wrapped to go on
            "ssh per host": ["sh", "-c", f"xargs -P 100 -I{{}} sh -c 'ssh -n {ssh_opts}"
                             f" root@{{}} hostname || true' < {hosts}"],
        }
        if legacy_bin:
            rows["apssh 0.27.0"] = [str(legacy_bin / "apssh"), "-k", key, "-l", "root",
                                    "-t", str(hosts), "hostname"]
        clush = shutil.which("clush", path=str(ours_bin)) or shutil.which("clush")
        if clush:
            rows["clush -f 100"] = [clush, "-f", "100", "-l", "root", "-o", ssh_opts,
                                    "-w", ",".join(addresses), "hostname"]
        figures = interleaved(rows, repeats)
        print(f"hostname on 100 hosts ({len(daemons)} sshd), median of {repeats}:"
              " whole-process client CPU and wall")
        print_table(figures, 100)
        if not args.quick:
            thousand(keys, daemons, work, ours_bin)
            # the same, with daemons that drop no handshake: every contender does all the work
            for daemon in daemons:
                daemon.stop()
            daemons = daemons_for(keys, 100, 20, max_startups="200:30:400")
            figures = interleaved(rows, repeats)
            print(f"the same, sshd MaxStartups 200 (no handshake dropped), median of {repeats}:")
            print_table(figures, 100)
    finally:
        for daemon in daemons:
            daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def thousand(keys: Keys, daemons: list[Sshd], work: Path, ours_bin: Path) -> None:
    """1,000 hosts, no -w: the core paces the handshakes."""
    more = daemons_for(keys, 1000 - 16 * len(daemons), 20 + len(daemons))
    try:
        every = daemons + more
        known = work / "known_hosts_1000"
        known.write_text("".join(f"{line}\n" for d in every for line in d.known_hosts_lines()))
        hosts = work / "hosts_1000"
        addresses = [a for d in every for a in d.addresses][:1000]
        hosts.write_text("".join(f"{a}\n" for a in addresses))
        command = [str(ours_bin / "apssh"), "-F", "none", "--known-hosts", str(known),
                   "-k", str(keys.client_key), "-l", "root", "-t", str(hosts), "hostname"]
        wall, cpu, ok = measure(command)
        total = len(addresses)
        print(f"hostname on {total} hosts ({len(every)} sshd), no -w: {ok}/{total} ok"
              f" in {wall:.1f}s wall, {cpu:.1f}s client CPU")
    finally:
        for daemon in more:
            daemon.stop()


if __name__ == "__main__":
    sys.exit(main())
