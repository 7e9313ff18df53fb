#!/usr/bin/env python3
"""apssh through TakTuk's tree (``--taktuk``) against the direct mode, in one run.

    flock /tmp/nepi-bench.lock .venv/bin/python bench/bench_taktuk.py      # 100 and 1,000
    flock /tmp/nepi-bench.lock .venv/bin/python bench/bench_taktuk.py --hosts 100

``hostname`` on N hosts served by sshd daemons on loopback (16 addresses each,
port 22, as bench_cli.py starts them; ``MaxStartups 100:30:200`` so that neither
mode loses hosts to the daemons' own drops; ``-c 120`` for both, see
CONNECT_TIMEOUT). For each mode: wall time, the client's whole CPU (apssh, and in
the TakTuk mode the root ``taktuk`` and the ``ssh`` it runs: every process under
the client, reaped), and the peak, over samples every 20 ms, of the open file
descriptors and resident memory (PSS) summed over the client's process tree, and
of the ``ssh`` processes in it (the nodes the TakTuk root deploys itself). The
relays TakTuk starts on the nodes run under the nodes' sshd: they are the nodes'
cost, not the client's (here, one machine pays both).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from _timing import tree  # noqa: E402
from bench_cli import daemons_for  # noqa: E402
from sshd import Keys, Sshd  # noqa: E402

MAX_STARTUPS = "100:30:200"
#: TakTuk's -t bounds a node's whole deployment (ssh, sending itself, starting perl): on
#: one machine that also runs every relay, 30 s (the default) is not enough at 1,000
CONNECT_TIMEOUT = 120


def footprint(pids: list[int]) -> tuple[int, int, int]:
    """Open file descriptors and proportional resident KiB (PSS: a page shared by n
    processes counts 1/n in each), summed over ``pids``, and how many of them are
    ``ssh`` (in the TakTuk mode: the nodes the root deploys itself)."""
    fds = rss = ssh = 0
    for pid in pids:
        try:
            ssh += Path(f"/proc/{pid}/comm").read_text().strip() == "ssh"
            fds += len(os.listdir(f"/proc/{pid}/fd"))
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    rss += int(line.split()[1])
        except OSError:
            continue
    return fds, rss, ssh


def measure(command: list[str]) -> dict[str, float]:
    """Wall, CPU (children included), hosts answering, peak fds and RSS of ``command``."""
    peak = {"fds": 0, "rss": 0, "ssh": 0}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                fds, rss, ssh = footprint(tree(proc.pid))
                peak["fds"], peak["rss"] = max(peak["fds"], fds), max(peak["rss"], rss)
                peak["ssh"] = max(peak["ssh"], ssh)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, _, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        out.seek(0)
        ok = len(out.read().splitlines())
        err.seek(0)
        reasons = Counter(line.rsplit(": ", 1)[-1] for line in
                          err.read().decode(errors="replace").splitlines()[:-1])
    if reasons:
        print(f"{command[-2]}: failed hosts by reason: {dict(reasons.most_common(4))}",
              flush=True)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "ok": ok,
            "fds": peak["fds"], "rss": peak["rss"] / 1024, "ssh": peak["ssh"]}


def compare(daemons: list[Sshd], keys: Keys, work: Path, hosts: int) -> None:
    addresses = [a for d in daemons for a in d.addresses][:hosts]
    known = work / "known_hosts"
    known.write_text("".join(f"{line}\n" for d in daemons for line in d.known_hosts_lines()))
    targets = work / f"hosts_{hosts}"
    targets.write_text("".join(f"{a}\n" for a in addresses))
    apssh = str(REPO / ".venv" / "bin" / "apssh")
    common = [apssh, "-c", str(CONNECT_TIMEOUT), "-F", "none", "--known-hosts", str(known),
              "-k", str(keys.client_key), "-l", "root", "-t", str(targets)]
    rows = {"direct": [*common, "hostname"], "--taktuk": [*common, "--taktuk", "hostname"]}
    figures = {name: measure(command) for name, command in rows.items()}
    print(f"\nhostname on {hosts} hosts ({len(daemons)} sshd, MaxStartups {MAX_STARTUPS}, "
          f"-c {CONNECT_TIMEOUT})")
    print(f"| {'mode':10} | hosts ok | wall s | client CPU s | CPU ms/host | peak fds "
          "| peak PSS MiB | peak ssh |")
    print("|---|---|---|---|---|---|---|---|")
    for name, f in figures.items():
        print(f"| {name:10} | {int(f['ok']):>4}/{hosts} | {f['wall']:6.1f} | {f['cpu']:12.2f} "
              f"| {1000 * f['cpu'] / max(f['ok'], 1):11.2f} | {int(f['fds']):8} "
              f"| {f['rss']:12.0f} | {int(f['ssh']):8} |", flush=True)
    direct, tree_ = figures["direct"], figures["--taktuk"]
    print(f"taktuk/direct: CPU {tree_['cpu'] / direct['cpu']:.2f}x, fds "
          f"{tree_['fds'] / max(direct['fds'], 1):.2f}x, PSS {tree_['rss'] / direct['rss']:.2f}x,"
          f" wall {tree_['wall'] / direct['wall']:.2f}x", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, action="append",
                        help="how many hosts (repeatable; default 100 and 1000)")
    args = parser.parse_args()
    sizes = args.hosts or [100, 1000]
    if shutil.which("taktuk") is None:
        print("taktuk is not installed (apt-get install taktuk)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="nepi-ng-bench-taktuk-"))
    keys = Keys(work)
    daemons = daemons_for(keys, max(sizes), 20, max_startups=MAX_STARTUPS)
    try:
        for hosts in sizes:
            compare(daemons, keys, work, hosts)
    finally:
        for daemon in daemons:
            daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
