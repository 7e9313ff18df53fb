"""Local commands in a session of their own: started so that a cancel never leaves
anything running, their output read in chunks, their end read as a status.

What ``LocalNode.run`` and a local ``Process`` share:

- ``start_group`` starts a shell in a new session (so its pid is its process
  group). Cancelled while the shell starts, asyncio would kill the shell alone and
  leave what it started: the start is shielded, seen through however often the
  caller is cancelled, then the whole group killed;
- ``forward`` reads a stream in chunks (no line is too long) and hands them on;
- ``status`` is the exit status, or the signal's name (``"TERM"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

#: how much of a command's output is read at a time
READ_SIZE = 64 * 1024


async def settle(awaitable: Awaitable[Any]) -> None:
    """Wait until ``awaitable`` is done, however often the caller is cancelled
    meanwhile; its outcome is left in it (the caller re-raises its own
    cancellation afterwards)."""
    future = asyncio.ensure_future(awaitable)
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([future])  # cancelled, it leaves the future running
    if not future.cancelled():
        future.exception()  # retrieved: never "exception was never retrieved"


def kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` (a command started in a session of its
    own), if it is still there."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def start_group(command: str, **kwds: Any) -> asyncio.subprocess.Process:
    """``command`` in a local shell, in a session of its own (``kwds`` as for
    ``asyncio.create_subprocess_shell``). Cancelled while it starts, the start is
    seen through, then the whole group killed, then the cancellation raised."""
    starting = asyncio.ensure_future(
        asyncio.create_subprocess_shell(command, start_new_session=True, **kwds))
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        await settle(starting)
        if not starting.cancelled() and starting.exception() is None:
            started = starting.result()
            kill_group(started.pid)
            await settle(started.wait())
        raise


async def forward(reader: asyncio.StreamReader | None,
                  *consumers: Callable[[bytes], None]) -> None:
    """Hand each chunk ``reader`` gives, as it comes, to every consumer (a
    ``LineSplitter``'s ``feed``, a process's buffer...)."""
    if reader is None:
        return
    while chunk := await reader.read(READ_SIZE):
        for consume in consumers:
            consume(chunk)


def status(returncode: int) -> int | str:
    """A local command's end as apssh reports it: its exit status, or the name of
    the signal that killed it (``"TERM"``)."""
    if returncode < 0:
        return signal.Signals(-returncode).name.removeprefix("SIG")
    return returncode
