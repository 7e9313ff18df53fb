"""Nested schedulers, the listing before and after a run, and the graph as a picture.

Run it with ``.venv/bin/python examples/nested.py [output-directory]``; the svg is
written only when graphviz's ``dot`` is installed.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from asynciojobs import Job, PrintJob, Scheduler, Sequence


async def prepare(node: str) -> str:
    await asyncio.sleep(0.02)
    return f"{node} ready"


def build() -> Scheduler:
    top = Scheduler(label="experiment")
    start = PrintJob("starting", label="start", scheduler=top)
    nodes = Scheduler(
        *(Job(prepare, n, label=f"prepare {n}") for n in ("n1", "n2", "n3")),
        label="prepare nodes", required=start, scheduler=top,
    )
    Sequence(
        Job(prepare, "run", label="run the measure"),
        PrintJob("collected", label="collect"),
        required=nodes, scheduler=top,
    )
    return top


def main(outdir: Path) -> int:
    top = build()
    top.list()
    assert top.run() is True
    top.list()
    top.debrief()
    outdir.mkdir(parents=True, exist_ok=True)
    print(top.export_as_dotfile(outdir / "nested.dot", show_outcome=True))
    if shutil.which("dot"):
        print("wrote", top.export_as_svgfile(outdir / "nested", show_outcome=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output")))
