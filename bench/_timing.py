"""Timing a contender: one child process, its wall time and its whole CPU; the
processes under a root (a contender and what it started)."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any


def timed(command: list[str], **popen: Any) -> tuple[float, float, int]:
    """Run ``command`` (``popen``: Popen's keywords, for its streams and env); its wall
    seconds, its CPU seconds (its children's included) and its wait status."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, **popen)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, status


def tree(root: int) -> list[int]:
    """``root`` and every process under it (read from /proc)."""
    from pathlib import Path

    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(
                int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found
