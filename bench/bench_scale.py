#!/usr/bin/env python3
"""``apssh hostname`` on 1,000 and 4,000 hosts with default options, against real sshd.

    flock /tmp/nepi-bench.lock .venv/bin/python bench/bench_scale.py
    flock /tmp/nepi-bench.lock .venv/bin/python bench/bench_scale.py --hosts 1000

No ``-c``, no ``-w``: what a user gets by default. For each N: hosts ok out of N
(from the summary line), wall time, the client's whole-process CPU, its peak RSS
and the most file descriptors it held (sampled every 10 ms from /proc). The
daemons (16 addresses each, 127.1.x.y, ``MaxStartups 10:30:100`` as shipped) run
on the same machine and cost ~20 ms of CPU per connection: on two cores they set
the wall time. nepi-ng runs from a regular install in a throwaway venv.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from _venvs import installed_nepi_ng  # noqa: E402
from sshd import Keys, Sshd  # noqa: E402


def daemons(keys: Keys, hosts: int) -> list[Sshd]:
    """Enough daemons for ``hosts`` addresses, 16 each, on 127.1.d.1-16 (free ports)."""
    return [Sshd(keys, f"scale{d}", [f"127.1.{d}.{i}" for i in range(1, 17)])
            for d in range((hosts + 15) // 16)]


def watched(command: list[str], **popen: object) -> tuple[float, float, float, int, int]:
    """Run ``command``: wall s, CPU s (children included), peak RSS MiB, the most
    file descriptors it held at once, its exit status."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, **popen)  # type: ignore[call-overload]
    most = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal most
        fds = Path(f"/proc/{proc.pid}/fd")
        while not done.wait(0.01):  # a sampling period, not a synchronisation
            try:
                most = max(most, len(os.listdir(fds)))
            except OSError:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    return (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, most,
            os.waitstatus_to_exitcode(status))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000, 4000])
    args = parser.parse_args()
    ours = installed_nepi_ng() / "apssh"
    work = Path(tempfile.mkdtemp(prefix="nepi-ng-bench-scale-"))
    keys = Keys(work)
    started = time.perf_counter()
    every = daemons(keys, max(args.hosts))
    print(f"{len(every)} sshd started in {time.perf_counter() - started:.1f}s", flush=True)
    try:
        known = work / "known_hosts"
        known.write_text("".join(f"{line}\n" for d in every for line in d.known_hosts_lines()))
        targets = [f"{a}:{d.port}" for d in every for a in d.addresses]
        print(f"{'hostname, default options':26} {'hosts ok':>11} {'wall s':>7} "
              f"{'client CPU s':>12} {'ms/host':>8} {'RSS MiB':>8} {'max fds':>8}")
        for hosts in args.hosts:
            listed = work / f"hosts_{hosts}"
            listed.write_text("".join(f"{t}\n" for t in targets[:hosts]))
            command = [str(ours), "-F", "none", "--known-hosts", str(known), "-k",
                       str(keys.client_key), "-l", "root", "-t", str(listed), "hostname"]
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                wall, cpu, rss, fds, code = watched(command, stdout=out, stderr=err)
                err.seek(0)
                text = err.read().decode(errors="replace")
            found = re.search(r"apssh: (\d+) ok, (\d+) failed", text)
            ok = int(found.group(1)) if found else 0
            print(f"{f'{hosts:,} hosts (exit {code})':26} {f'{ok:,}/{hosts:,}':>11} "
                  f"{wall:7.1f} {cpu:12.1f} {1000 * cpu / hosts:8.2f} {rss:8.0f} {fds:8,}",
                  flush=True)
            if ok < hosts:
                reasons = [line for line in text.splitlines() if "ok," not in line]
                print(f"  first failures: {reasons[:3]}", flush=True)
    finally:
        for daemon in every:
            daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
