#!/usr/bin/env python3
"""Scheduler benchmark: CPU time of six shapes against plain asyncio.gather and 0.21.3.

    python bench/bench_scheduler.py            # the whole table (installs 0.21.3 in /tmp)
    python bench/bench_scheduler.py --quick    # 10k only, no 0.21.3, fewer repeats

Every figure is a median over repeats, measured in this run: CPU seconds to build
and run N no-op jobs, the ratio to plain ``asyncio.gather`` over the same
coroutines, the 100k/10k ratio, and the same shapes with asynciojobs 0.21.3
(installed from PyPI into a throwaway venv, run in its own process). Then the peak
memory (RSS growth) at 100k independent jobs against plain gather's, each in a
fresh process. Import time is excluded everywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _venvs import throwaway_python

SHAPES = ["independent", "chain", "reverse-chain", "layered-dag", "staggered", "fan-in"]
LISTING_SHAPES = ["independent", "reverse-chain", "layered-dag", "fan-in"]
LEGACY_VENV = Path("/tmp/nepi-ng-bench-asynciojobs-0.21.3")


# ----- the coroutines, shared by every contender
async def noop() -> None:
    return None


async def staggered(previous: asyncio.Event | None, mine: asyncio.Event) -> None:
    if previous is not None:
        await previous.wait()
    mine.set()


def coroutines(shape: str, n: int) -> list:
    """The n coroutines of a shape (staggered ones wait for the previous one)."""
    if shape != "staggered":
        return [noop() for _ in range(n)]
    events = [asyncio.Event() for _ in range(n)]
    return [staggered(events[i - 1] if i else None, events[i]) for i in range(n)]


def requirements(shape: str, n: int) -> list[list[int]]:
    """For each job index, the indexes it requires."""
    if shape in ("independent", "staggered"):
        return [[] for _ in range(n)]
    if shape == "chain":
        return [[i - 1] if i else [] for i in range(n)]
    if shape == "reverse-chain":  # job i requires job i+1: created in reverse order
        return [[i + 1] if i < n - 1 else [] for i in range(n)]
    if shape == "fan-in":
        return [[] for _ in range(n - 1)] + [list(range(n - 1))]
    if shape == "layered-dag":
        rng = random.Random(42)
        width = 100
        reqs: list[list[int]] = []
        for i in range(n):
            layer = i // width
            if layer == 0:
                reqs.append([])
            else:
                base = (layer - 1) * width
                reqs.append(rng.sample(range(base, base + width), 3))
        return reqs
    raise ValueError(shape)


# ----- one measurement, in this process
async def run_jobs(shape: str, n: int, reqs: list[list[int]]) -> None:
    from asynciojobs import Job, Scheduler

    jobs = [Job(coro) for coro in coroutines(shape, n)]
    for job, req in zip(jobs, reqs, strict=True):
        if req:
            job.requires([jobs[i] for i in req])
    scheduler = Scheduler(*jobs)
    ok = await scheduler.co_run()
    assert ok, f"{shape}: the run failed"


async def run_gather(shape: str, n: int, reqs: list[list[int]]) -> None:
    await asyncio.gather(*coroutines(shape, n))


def cpu_of(runner, shape: str, n: int) -> float:
    reqs = requirements(shape, n)  # not part of the measure: the same for everyone
    gc.collect()
    start = time.process_time()
    asyncio.run(runner(shape, n, reqs))
    return time.process_time() - start


def measure(contenders: list[str], n: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median CPU per contender and shape; contenders alternate, so noise hits both."""
    import asynciojobs  # noqa: F401 - imported before measuring

    runners = {"jobs": run_jobs, "gather": run_gather}
    samples: dict[str, dict[str, list[float]]] = {c: {s: [] for s in SHAPES} for c in contenders}
    for shape in SHAPES:
        for _ in range(repeats):
            for contender in contenders:
                samples[contender][shape].append(cpu_of(runners[contender], shape, n))
    return {
        c: {s: statistics.median(values) for s, values in shapes.items()}
        for c, shapes in samples.items()
    }


def listing_costs(shapes: list[str], n: int) -> dict[str, dict[str, float]]:
    """CPU of list(), debrief() and dot_format() after a run, and of building the jobs."""
    import contextlib
    import io

    from asynciojobs import Job, Scheduler

    results: dict[str, dict[str, float]] = {}
    for shape in shapes:
        reqs = requirements(shape, n)
        cost: dict[str, float] = {}

        async def scenario(shape: str, reqs: list[list[int]], cost: dict) -> Scheduler:
            start = time.process_time()
            jobs = [Job(coro) for coro in coroutines(shape, n)]
            for job, req in zip(jobs, reqs, strict=True):
                if req:
                    job.requires([jobs[i] for i in req])
            scheduler = Scheduler(*jobs, critical=False)
            cost["build"] = time.process_time() - start
            await scheduler.co_run()
            return scheduler

        scheduler = asyncio.run(scenario(shape, reqs, cost))
        for name in ("list", "debrief", "dot_format"):
            sink = io.StringIO()
            start = time.process_time()
            with contextlib.redirect_stdout(sink):
                text = getattr(scheduler, name)()
            cost[name] = time.process_time() - start
            assert sink.getvalue() or text
        results[shape] = cost
    return results


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory(contender: str, n: int) -> dict[str, float]:
    import asynciojobs  # noqa: F401

    reqs = requirements("independent", n)
    runner = run_jobs if contender == "jobs" else run_gather
    before = rss_kib()
    asyncio.run(runner("independent", n, reqs))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"growth_kib": peak - before}


# ----- orchestration of the whole table
def subprocess_json(python: str, *args: str, pythonpath: str | None = None) -> dict:
    env = dict(os.environ)
    if pythonpath is None:
        env.pop("PYTHONPATH", None)
    else:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run(
        [python, __file__, *args], check=True, capture_output=True, text=True, env=env,
        cwd="/tmp",
    )
    return json.loads(out.stdout.splitlines()[-1])


def legacy_python() -> str | None:
    return throwaway_python(LEGACY_VENV, "asynciojobs==0.21.3")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k only, no 0.21.3")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "CONTENDER", "N", "REPEATS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, contender, n, repeats = args.worker
        if kind == "cpu":
            print(json.dumps(measure(contender.split(","), int(n), int(repeats))))
        elif kind == "listing":
            print(json.dumps(listing_costs(LISTING_SHAPES, int(n))))
        else:
            print(json.dumps(memory(contender, int(n))))
        return 0

    repo = str(Path(__file__).resolve().parent.parent)
    repeats = args.repeats or (5 if args.quick else 7)
    me = sys.executable

    def cpu(n: int, reps: int = repeats) -> tuple[dict, dict]:
        both = subprocess_json(me, "--worker", "cpu", "jobs,gather", str(n), str(reps),
                               pythonpath=repo)
        return both["jobs"], both["gather"]

    ours10, gather10 = cpu(10_000)
    ours100 = gather100 = legacy10 = None
    if not args.quick:
        ours100, gather100 = cpu(100_000, 3)
        legacy = legacy_python()
        if legacy:
            legacy10 = subprocess_json(legacy, "--worker", "cpu", "jobs", "10000", "1")["jobs"]

    print(f"scheduler benchmark: CPU seconds, median of {repeats} (100k: 3, 0.21.3: 1 run), "
          "build + run, import excluded")
    header = f"{'shape':14} {'gather':>8} {'ours':>8} {'ours/gather':>12}"
    if ours100:
        header += f" {'ours 100k':>10} {'/gather':>8} {'100k/10k':>9} {'gather’s':>9}"
    if legacy10:
        header += f" {'0.21.3':>8} {'0.21/gather':>12} {'0.21/ours':>10}"
    print(f"--- 10k jobs\n{header}")
    worst = 0.0
    for shape in SHAPES:
        ratio = ours10[shape] / gather10[shape]
        worst = max(worst, ratio)
        row = f"{shape:14} {gather10[shape]:8.3f} {ours10[shape]:8.3f} {ratio:12.2f}"
        if ours100:
            row += (f" {ours100[shape]:10.3f} {ours100[shape] / gather100[shape]:8.2f}"
                    f" {ours100[shape] / ours10[shape]:9.1f}"
                    f" {gather100[shape] / gather10[shape]:9.1f}")
        if legacy10:
            old = legacy10[shape]
            row += f" {old:8.3f} {old / gather10[shape]:12.1f} {old / ours10[shape]:10.1f}"
        print(row)
    print(f"worst shape at 10k: {worst:.2f}x gather (target <= 3x)")

    listing = subprocess_json(me, "--worker", "listing", "-", "10000", "1", pythonpath=repo)
    old_listing = None
    if legacy10:
        old_listing = subprocess_json(legacy, "--worker", "listing", "-", "10000", "1")
    print("--- listings at 10k jobs, after a run: CPU seconds and ratio to building the jobs"
          + (" (0.21.3 in brackets)" if old_listing else ""))
    print(f"{'shape':14} {'build':>7} " + " ".join(f"{n:>22}" for n in ("list", "debrief",
                                                                      "dot_format")))
    worst_listing = 0.0
    for shape, cost in listing.items():
        cells = []
        for name in ("list", "debrief", "dot_format"):
            ratio = cost[name] / cost["build"]
            worst_listing = max(worst_listing, ratio)
            cell = f"{cost[name]:.3f} ({ratio:4.1f}x)"
            if old_listing:
                cell += f" [{old_listing[shape][name]:.2f}]"
            cells.append(f"{cell:>22}")
        print(f"{shape:14} {cost['build']:7.3f} " + " ".join(cells))
    print(f"worst listing: {worst_listing:.1f}x building the jobs (target < 10x)")
    if ours100:
        worst100 = max(ours100[s] / ours10[s] for s in SHAPES)
        gather_worst = max(gather100[s] / gather10[s] for s in SHAPES)
        print(f"worst 100k/10k: {worst100:.1f} (target <= 12); plain gather's own: "
              f"{gather_worst:.1f}")
        mem_ours = subprocess_json(me, "--worker", "mem", "jobs", "100000", "1", pythonpath=repo)
        mem_gather = subprocess_json(me, "--worker", "mem", "gather", "100000", "1",
                                     pythonpath=repo)
        ratio = mem_ours["growth_kib"] / mem_gather["growth_kib"]
        print(f"peak RSS growth at 100k independent jobs: ours {mem_ours['growth_kib'] / 1024:.1f}"
              f" MiB, gather {mem_gather['growth_kib'] / 1024:.1f} MiB, ratio {ratio:.2f}"
              " (target <= 1.5)")
        if legacy10:
            mem_old = subprocess_json(legacy, "--worker", "mem", "jobs", "100000", "1")
            print(f"  0.21.3: {mem_old['growth_kib'] / 1024:.1f} MiB, ratio "
                  f"{mem_old['growth_kib'] / mem_gather['growth_kib']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
