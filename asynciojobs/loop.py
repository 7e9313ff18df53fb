"""One event loop per thread, kept between synchronous ``run()`` calls.

0.21 made a fresh loop for every ``run()``, which killed every connection a job
had opened (an ssh connection belongs to its loop). Here the loop lives as long as
the thread, so an experiment made of several schedulers in a row keeps its
connections; it is closed at interpreter exit. Ctrl-C cancels the running
scheduler (which cancels and awaits its jobs, then shuts them down) before
``KeyboardInterrupt`` reaches the caller.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_local = threading.local()
_runners: list[asyncio.Runner] = []


def thread_runner() -> asyncio.Runner:
    """This thread's runner, created on first use (or again if its loop was closed)."""
    runner: asyncio.Runner | None = getattr(_local, "runner", None)
    if runner is not None and runner.get_loop().is_closed():
        runner = None
    if runner is None:
        runner = asyncio.Runner(loop_factory=_loop_factory())
        _local.runner = runner
        _runners.append(runner)
    return runner


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (NEPI_NG_UVLOOP=0 to opt out), else asyncio's."""
    if os.environ.get("NEPI_NG_UVLOOP", "1") == "0":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_in_thread_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion on this thread's loop and return its value."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:
        return thread_runner().run(coroutine)
    coroutine.close()
    raise RuntimeError(
        "run() cannot be called from a running event loop (a notebook, an async "
        "function): use `await scheduler.co_run()` instead"
    )


@atexit.register
def _close_runners() -> None:
    while _runners:
        runner = _runners.pop()
        with contextlib.suppress(Exception):  # interpreter exit: nobody to report to
            runner.close()
