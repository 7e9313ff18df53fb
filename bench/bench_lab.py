#!/usr/bin/env python3
"""How fast the embedded lab starts and stops (median of 5), and that it leaves nothing.

    .venv/bin/python bench/bench_lab.py
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time

from apssh.lab import Lab


async def once(nodes: int, gateway: bool) -> tuple[float, float]:
    start = time.perf_counter()
    lab = Lab(nodes=nodes, gateway=gateway)
    await lab.start()
    started = time.perf_counter() - start
    await lab.stop()
    return started, time.perf_counter() - start - started


async def main() -> int:
    print("embedded lab: median of 5, wall milliseconds")
    for nodes, gateway in ((10, False), (10, True), (100, False)):
        runs = [await once(nodes, gateway) for _ in range(5)]
        print(f"  {nodes:3} nodes{' + gateway' if gateway else '          '}: start "
              f"{1000 * statistics.median(r[0] for r in runs):6.1f} ms, stop "
              f"{1000 * statistics.median(r[1] for r in runs):6.1f} ms")
    left = subprocess.run(["pgrep", "-f", "nepi-ng-lab-"], capture_output=True, text=True)
    print(f"processes left behind: {len(left.stdout.split())}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
