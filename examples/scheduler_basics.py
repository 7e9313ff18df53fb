"""Scheduler basics: requirements, critical and forever jobs, timeout and window.

Run it with ``.venv/bin/python examples/scheduler_basics.py``.
"""

from __future__ import annotations

import asyncio

from asynciojobs import Job, PureScheduler, Scheduler


async def step(name: str, delay: float) -> str:
    await asyncio.sleep(delay)
    print(f"{name} done")
    return name


async def fails(name: str) -> None:
    await asyncio.sleep(0.01)
    raise RuntimeError(f"{name} went wrong")


async def ticker() -> None:
    while True:
        await asyncio.sleep(0.05)


def requirements() -> None:
    """b and c wait for a; d waits for both."""
    a = Job(step, "a", 0.05, label="a")
    b = Job(step, "b", 0.05, label="b", required=a)
    c = Job(step, "c", 0.02, label="c", required=a)
    d = Job(step, "d", 0.01, label="d", required=(b, c))
    scheduler = Scheduler(a, b, c, d)
    assert scheduler.run() is True
    print("results:", [job.result() for job in (a, b, c, d)])


def critical_and_forever() -> None:
    """A non-critical failure is reported, a forever job is cancelled at the end."""
    soft = Job(fails, "soft", label="soft", critical=False)
    after = Job(step, "after soft", 0.01, label="after", required=soft)
    monitor = Job(ticker, label="monitor", forever=True)
    scheduler = Scheduler(soft, after, monitor)
    assert scheduler.run() is True
    print("soft raised:", soft.raised_exception())
    print("monitor still shown as running:", monitor.is_running() and not monitor.is_done())

    hard = Job(fails, "hard", label="hard")  # critical: None means critical here
    never = Job(step, "never", 0.01, label="never", required=hard)
    pure = PureScheduler(hard, never)
    assert pure.run() is False  # a Scheduler would raise instead
    print("why:", pure.why(), "- never ran:", never.is_idle())


def timeout_and_window() -> None:
    """At most 2 jobs at a time, and the whole run bounded to 1 second."""
    jobs = [Job(step, f"w{i}", 0.02, label=f"w{i}") for i in range(6)]
    scheduler = Scheduler(*jobs, jobs_window=2, timeout=1)
    assert scheduler.run() is True
    slow = Scheduler(Job(step, "slow", 10, label="slow"), timeout=0.1, critical=False)
    assert slow.run() is False
    print("why:", slow.why())


if __name__ == "__main__":
    requirements()
    critical_and_forever()
    timeout_and_window()
