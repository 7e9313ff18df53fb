"""A closed standard output (``apssh ... | head -2``) stops the run, once, cleanly.

The formatters write through ``Formatter.write_out()``, which turns a
``BrokenPipeError`` into a call of the formatter's ``stdout_closed()`` (raised
in the connections' callbacks, the error would tear the connection down and
leave the remote commands running). The tools' ``LiveFormatter`` hands that call
to ``PipeWatch.closed()``: it says so once on stderr, sends what is still
buffered to ``/dev/null`` and cancels the run, whose jobs then stop their remote
commands; the exit code is 141, as a shell reports a command killed by SIGPIPE.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

def drop_stream(fd: int = 1) -> None:
    """Point file descriptor ``fd`` (standard output by default) at ``/dev/null``:
    what is still buffered for a closed pipe, and what comes after, goes nowhere
    (no error at exit)."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


class PipeWatch:
    """Stops the run when standard output closes: pass ``closed`` as the live
    formatter's ``on_stdout_closed``, and ``watch()`` the run's task."""

    def __init__(self, prog: str) -> None:
        self.prog = prog
        #: whether standard output was found closed
        self.is_closed = False
        self._task: asyncio.Task[Any] | None = None

    def watch(self, task: asyncio.Task[Any] | None) -> None:
        """The task to cancel when standard output closes (at once if it already did)."""
        self._task = task
        if self.is_closed and task is not None:
            task.cancel()

    def closed(self) -> None:
        """Standard output is closed: say so once on stderr, send stdout to
        ``/dev/null`` and cancel the watched task."""
        if self.is_closed:
            return
        self.is_closed = True
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"{self.prog}: standard output closed: stopping the commands\n")
            sys.stderr.flush()
        drop_stream()
        if self._task is not None and not self._task.done():
            self._task.cancel()
