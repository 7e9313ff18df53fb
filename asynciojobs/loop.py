"""One event loop per thread, kept between synchronous ``run()`` calls; signals.

0.21 made a fresh loop for every ``run()``, which killed every connection a job
had opened (an ssh connection belongs to its loop). Here the loop lives as long as
the thread, so an experiment made of several schedulers in a row keeps its
connections; it is closed at interpreter exit.

Stopping a synchronous run (``run_in_thread_loop``, hence ``Scheduler.run()``):

- Ctrl-C (SIGINT) cancels the running coroutine: a scheduler cancels and awaits
  its jobs (an ssh command kills its remote process group), then shuts them
  down, and ``KeyboardInterrupt`` reaches the caller. A second Ctrl-C stops
  waiting at once.
- SIGTERM and SIGHUP do the same, then raise ``SignalExit`` (a ``SystemExit``
  whose ``code`` is 128 + the signal number: a script that does not catch it
  exits quietly with 143 or 129, as a shell reports a process killed by that
  signal). A second such signal raises ``SignalExit`` at once, without
  waiting. The handlers are installed only while the coroutine runs, only in
  the main thread, and only for a signal whose handler is the default one (an
  ignored SIGHUP under ``nohup``, or a handler of your own, is left alone); the
  previous handlers come back afterwards.
- A job raising ``KeyboardInterrupt`` or ``SystemExit`` stops the loop under the
  coroutine (asyncio re-raises them out of the loop): the coroutine is then
  cancelled and awaited before the exception goes on, so nothing keeps running.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

from .errors import SignalExit

T = TypeVar("T")

#: the signals that cancel a synchronous run and raise ``SignalExit``
EXIT_SIGNALS: tuple[signal.Signals, ...] = tuple(
    sig for sig in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
    if sig is not None
)

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


class _Main:
    """The coroutine of one synchronous run, as a task that signals can cancel."""

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.coroutine = coroutine
        self.task: asyncio.Task[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        #: the exit signals received during the run, in order
        self.signals: list[int] = []

    async def run(self) -> Any:
        self.task = asyncio.current_task()
        self.loop = asyncio.get_running_loop()
        if self.signals:  # a signal came before anything started
            self.coroutine.close()
            raise asyncio.CancelledError
        return await self.coroutine

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGHUP: cancel the run (as Runner does for SIGINT); twice: exit now."""
        if self.signals:
            raise SignalExit(signum)
        self.signals.append(signum)
        task, loop = self.task, self.loop
        if task is not None and not task.done():
            task.cancel()
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: None)  # wake the loop up

    def wind_down(self, runner: asyncio.Runner) -> None:
        """The loop stopped under a coroutine still running that nobody had asked
        to stop (a job's KeyboardInterrupt): cancel it and wait until it has
        finished. A coroutine already cancelled (a second Ctrl-C or signal while
        it winds down) is left as it is: the user insists."""
        task = self.task
        if task is None or task.done() or task.cancelling():
            return
        task.cancel()

        async def wait() -> None:
            await asyncio.wait([task])

        with contextlib.suppress(BaseException):  # the first exception is the one to raise
            runner.run(wait())
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning


@contextlib.contextmanager
def _exit_signals(main: _Main) -> Iterator[None]:
    """``main.on_signal`` for SIGTERM and SIGHUP while running (see the module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in EXIT_SIGNALS:
            if signal.getsignal(sig) is signal.SIG_DFL:
                previous[sig] = signal.signal(sig, main.on_signal)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def in_running_loop() -> bool:
    """Whether this thread is running an event loop (code called from a coroutine)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_in_thread_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion on this thread's loop and return its value.

    Raises ``SignalExit`` when SIGTERM or SIGHUP arrived during the run, after the
    cancelled coroutine has wound down; see the module docstring.
    """
    if in_running_loop():
        coroutine.close()
        raise RuntimeError(
            "run() cannot be called from a running event loop (a notebook, an async "
            "function): use `await scheduler.co_run()` instead"
        )
    runner = thread_runner()
    main = _Main(coroutine)
    with _exit_signals(main):
        try:
            result: T = runner.run(main.run())
        except BaseException as exc:
            main.wind_down(runner)
            if main.signals and not isinstance(exc, SignalExit):
                raise SignalExit(main.signals[0]) from exc
            raise
    if main.signals:  # arrived as the coroutine was ending: the process is still asked to stop
        raise SignalExit(main.signals[0])
    return result


@atexit.register
def _close_runners() -> None:
    while _runners:
        runner = _runners.pop()
        with contextlib.suppress(Exception):  # interpreter exit: nobody to report to
            runner.close()
