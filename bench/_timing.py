"""Timing a contender: one child process, its wall time and its whole CPU."""

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
