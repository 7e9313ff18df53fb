"""The core is linear: counted in Python function calls, not in seconds.

Doubling the number of jobs must about double the work, in the shapes where
asynciojobs 0.21 was quadratic (jobs finishing one at a time while many are
pending, a chain created in reverse order, a wide fan-in). Counting calls is
exact and immune to a noisy machine; the benchmark in bench/ gives the times.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

import pytest

from asynciojobs import Job, Scheduler


async def link(previous: asyncio.Event | None, mine: asyncio.Event) -> None:
    if previous is not None:
        await previous.wait()
    mine.set()


async def noop() -> None:
    return None


def build(shape: str, n: int) -> Scheduler:
    if shape == "staggered":  # all start at once, finish one per loop turn
        events = [asyncio.Event() for _ in range(n)]
        jobs = [Job(link, events[i - 1] if i else None, events[i]) for i in range(n)]
    else:
        jobs = [Job(noop) for _ in range(n)]
    if shape == "reverse-chain":
        for later, earlier in itertools.pairwise(jobs):
            later.requires(earlier)
    elif shape == "fan-in":
        jobs[-1].requires(jobs[:-1])
    return Scheduler(*jobs)


def calls_to_run(shape: str, n: int) -> int:
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event == "call":
            count += 1

    async def main() -> None:
        scheduler = build(shape, n)
        sys.setprofile(profile)
        try:
            assert await scheduler.co_run() is True
        finally:
            sys.setprofile(None)

    asyncio.run(main())
    return count


@pytest.mark.parametrize("shape", ["staggered", "reverse-chain", "fan-in", "independent"])
def test_run_work_grows_linearly(shape):
    small, large = calls_to_run(shape, 1000), calls_to_run(shape, 4000)
    assert large / small < 4.6, f"{shape}: {small} -> {large} calls"  # quadratic: 16


def test_listing_and_graph_work_grows_linearly(capsys):
    def calls(n: int) -> int:
        scheduler = build("reverse-chain", n)
        count = 0

        def profile(frame, event, arg):
            nonlocal count
            if event == "call":
                count += 1

        sys.setprofile(profile)
        try:
            scheduler.list()
            scheduler.dot_format()
            scheduler.successors_downstream(next(iter(scheduler.jobs)))
            scheduler.check_cycles()
        finally:
            sys.setprofile(None)
        for job in scheduler.jobs:
            job.close()
        return count

    small, large = calls(1000), calls(4000)
    capsys.readouterr()
    assert large / small < 4.6, f"{small} -> {large} calls"
