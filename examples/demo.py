"""The demo: a small experiment in the r2lab style, run by the local scheduler.

Until the embedded ssh lab exists, the "nodes" are simulated by coroutines: three
nodes are prepared in parallel, then a server starts on one (a forever job) and a
client runs on another, then results are collected. The listing is printed before
and after the run.
"""

from __future__ import annotations

import asyncio
import random
import sys

from asynciojobs import Job, PrintJob, Scheduler, Sequence, Watch

watch = Watch()


def stamp(message: str) -> None:
    print(f"{watch.elapsed()}  {message}")


async def prepare(node: str) -> str:
    stamp(f"{node}: loading image")
    await asyncio.sleep(random.uniform(0.1, 0.3))
    stamp(f"{node}: ready")
    return f"{node}-ready"


async def server(node: str, bus: asyncio.Queue[str]) -> None:
    stamp(f"{node}: server listening")
    while True:
        request = await bus.get()
        stamp(f"{node}: server got {request!r}")


async def client(node: str, bus: asyncio.Queue[str], count: int) -> int:
    for i in range(count):
        await bus.put(f"ping {i} from {node}")
        await asyncio.sleep(0.05)
    return count


async def collect(node: str) -> str:
    await asyncio.sleep(0.05)
    stamp(f"{node}: results collected")
    return f"{node}/results.txt"


def build() -> Scheduler:
    bus: asyncio.Queue[str] = asyncio.Queue()
    nodes = ["fit01", "fit02", "fit03"]
    scheduler = Scheduler(label="demo", timeout=10)
    preparation = Scheduler(
        *(Job(prepare, node, label=f"prepare {node}") for node in nodes),
        label="prepare nodes", scheduler=scheduler,
    )
    serve = Job(server, "fit01", bus, forever=True, label="server on fit01",
                required=preparation, scheduler=scheduler)
    Sequence(
        PrintJob("all nodes are ready", label="banner"),
        Job(client, "fit02", bus, 5, label="client on fit02"),
        Job(collect, "fit02", label="collect results"),
        required=preparation, scheduler=scheduler,
    )
    assert serve.forever
    return scheduler


def main() -> int:
    scheduler = build()
    print("---------- the scenario")
    scheduler.list()
    print("---------- running it")
    ok = scheduler.run()
    print(f"---------- after the run: {scheduler.why()}")
    scheduler.list()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
