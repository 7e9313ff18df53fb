#!/usr/bin/env python3
"""What events and records cost (issue 14 §1): same-run baselines, interleaved.

    .venv/bin/python bench/bench_events.py            # both parts
    .venv/bin/python bench/bench_events.py --quick    # fewer rounds

Part 1, the scheduler alone: N no-op jobs (100k independent, 10k in a chain) run
by the asynciojobs of the commit before events existed (exported with ``git
archive`` into /tmp), by today's with nobody subscribed, and by today's with one
subscriber that does nothing (every event built and delivered). Each contender
is a child process; figures are medians of the whole process's CPU.

Part 2, 1,000 ssh jobs on the embedded lab (10 nodes in a process of their own,
100 jobs each, one connection per node): without a record, with every event
built and delivered to a subscriber that does nothing, with a record (run.json,
the event log, every command's output; the log left unfolded, as a record without
drawings leaves it), and with its graph and timeline drawn at the end (the log
folded into run.json, matplotlib's import and dot: a fixed cost after the run).
Ratios are the median of each round's ratio to the round's own baseline.
Client CPU of the whole child process, CPU and wall time of the run itself
(``Scheduler.run()``: the interpreter's start and imports left out).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import timed

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "dce1541"  # the last commit before asynciojobs.events

SCHEDULER_CHILD = textwrap.dedent("""
    import sys
    from asynciojobs import Job, PureScheduler
    shape, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    async def noop():
        return None
    jobs = []
    for i in range(n):
        required = jobs[-1] if shape == "chain" and jobs else None
        jobs.append(Job(noop, required=required))
    sched = PureScheduler(*jobs)
    if mode == "subscribed":
        sched.subscribe(lambda event: None)
    assert sched.run()
""")

LAB_CHILD = textwrap.dedent("""
    import sys, time, tempfile
    from apssh import Run, SshJob, SshNode
    from apssh.formatters import HostFormatter
    from asynciojobs import Scheduler
    config, mode, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    nodes = [SshNode(name, ssh_config=config, formatter=HostFormatter(verbose=False))
             for name in names]
    jobs = [SshJob(node, command=Run("echo", f"job {i} on", node.hostname),
                   critical=False)
            for i in range(100) for node in nodes]
    sched = Scheduler(*jobs)
    if mode == "events":
        sched.subscribe(lambda event: None, output=True)
    start, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as where:
        from asynciojobs.record import Record
        record = Record(where, draw=mode == "drawn") if mode in ("record", "drawn") else None
        ok = sched.run(record=record)
        print("RUN", time.perf_counter() - start, time.process_time() - cpu,
              file=sys.stderr)
    for node in nodes:
        node.abort()
    assert ok
""")


def export_before(where: Path) -> Path:
    """The asynciojobs package as it was at BEFORE, to put first on PYTHONPATH."""
    where.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE, "asynciojobs"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def part_scheduler(rounds: int) -> None:
    before = export_before(Path(tempfile.mkdtemp(prefix="nepi-ng-before-")))
    contenders = {
        f"before events ({BEFORE})": ({"PYTHONPATH": str(before)}, "plain"),
        "now, nobody subscribed": ({}, "plain"),
        "now, one subscriber": ({}, "subscribed"),
    }
    print("part 1: the scheduler alone, whole-process CPU seconds, median of", rounds)
    print(f"{'shape':<18} {'contender':<28} {'CPU s':>7} {'/before':>8}")
    for shape, n in (("independent", 100_000), ("chain", 10_000)):
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(rounds):  # interleaved: each round runs every contender once
            for name, (env, mode) in contenders.items():
                _, used, status = timed(
                    [sys.executable, "-c", SCHEDULER_CHILD, shape, str(n), mode],
                    env={"PATH": "/usr/bin:/bin", **env})
                assert status == 0, (name, status)
                cpu[name].append(used)
        base = statistics.median(next(iter(cpu.values())))
        for name, values in cpu.items():
            median = statistics.median(values)
            print(f"{f'{shape} {n // 1000}k':<18} {name:<28} {median:7.3f} "
                  f"{median / base:8.3f}")


def part_lab(rounds: int) -> None:
    lab = subprocess.Popen([str(Path(sys.executable).parent / "nepi-ng"), "lab",
                            "--nodes", "10"], stdout=subprocess.PIPE, text=True)
    try:
        assert lab.stdout is not None
        config, names = "", []
        for line in lab.stdout:
            if "ssh_config:" in line:
                config = line.split(":", 1)[1].strip()
            found = re.match(r"\s+(\S+)\s+ssh -F", line)
            if found:
                names.append(found.group(1))
            if line.startswith("Ctrl-C"):
                break
        print(f"\npart 2: 1,000 ssh jobs on {len(names)} lab nodes (lab in its own "
              f"process), median of {rounds}")
        print(f"{'contender':<20} {'process CPU s':>13} {'/off':>6} {'run CPU s':>10} "
              f"{'/off':>6} {'run wall s':>10} {'/off':>6}")
        modes = {"record off": "off", "events, no record": "events",
                 "record, no drawing": "record", "record + drawings": "drawn"}
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in modes}
        for _ in range(rounds):
            for name, mode in modes.items():
                with tempfile.TemporaryFile() as err:
                    _, used, status = timed([sys.executable, "-c", LAB_CHILD, config, mode,
                                             ",".join(names)],
                                            stdout=subprocess.DEVNULL, stderr=err)
                    err.seek(0)
                    text = err.read().decode()
                assert status == 0, text
                found = re.search(r"RUN (\S+) (\S+)", text)
                assert found is not None, text
                runs[name].append((used, float(found.group(2)), float(found.group(1))))
        off = runs["record off"]
        for name, values in runs.items():
            row = [statistics.median(r[i] for r in values) for i in range(3)]
            # each round's ratio to the baseline of the same round, then their median:
            # what the machine does meanwhile weighs on both sides of each ratio
            ratios = [statistics.median(r[i] / o[i] for r, o in zip(values, off, strict=True))
                      for i in range(3)]
            print(f"{name:<20} " + " ".join(
                f"{value:{13 if i == 0 else 10}.3f} {ratio:6.3f}"
                for i, (value, ratio) in enumerate(zip(row, ratios, strict=True))))
        # how much the rounds' ratios spread: a median alone hides it
        print("run CPU /off, rounds' quartiles (25% / 50% / 75%):")
        for name, values in runs.items():
            if name != "record off" and len(values) >= 4:
                quartiles = statistics.quantiles(
                    [r[1] / o[1] for r, o in zip(values, off, strict=True)], n=4)
                print(f"  {name:<20} " + " / ".join(f"{q:.3f}" for q in quartiles))
    finally:
        lab.terminate()
        lab.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--part", choices=("scheduler", "lab"))
    parser.add_argument("--rounds", type=int, help="rounds of part 2 (default 9)")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    if args.part in (None, "scheduler"):
        part_scheduler(rounds)
    if args.part in (None, "lab"):
        part_lab(args.rounds or (3 if args.quick else 9))
    return 0


if __name__ == "__main__":
    sys.exit(main())
