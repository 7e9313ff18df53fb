"""Running a command on a node: its output cut into lines, and how to stop it.

The command is sent wrapped so that the shell first tells its pid, which is its
process group (sshd makes each session a new session); stopping a command kills
that group from a second session, TERM then KILL. Sessions refused because the
server is at its ``MaxSessions`` are retried after a back-off.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._asyncssh import asyncssh
from .formatters import EXTENDED_DATA_STDERR, Formatter

if TYPE_CHECKING:
    from .sshproxy import SshProxy

PID_MARK = b"APSSH-PID "
#: back-off while the server refuses a session (at its MaxSessions), about 4 s in all
SESSION_RETRY_DELAYS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)

T = TypeVar("T")


def wrap_command(command: str, *, no_input: bool = False) -> str:
    """The command as sent: the shell tells its pid (its process group), then runs
    it; ``no_input`` gives it an empty input (``/dev/null``, as ``ssh -n`` does)."""
    redirect = " </dev/null" if no_input else ""
    return (f"printf '{PID_MARK.decode()}%s\\n' \"$$\" >&2; "
            f"exec \"${{SHELL:-/bin/sh}}\" -c {shlex.quote(command)}{redirect}")


def kill_command(pid: int) -> str:
    """Stop the process group ``pid``: TERM, then KILL if it lingers."""
    return (f"kill -TERM -{pid} 2>/dev/null || exit 0; i=0; "
            f"while kill -0 -{pid} 2>/dev/null && [ $i -lt 10 ]; "
            f"do sleep 0.1; i=$((i+1)); done; kill -KILL -{pid} 2>/dev/null; exit 0")


class LineSession(asyncssh.SSHClientSession[bytes]):
    """Cuts a session's output into lines for the formatter, stdout and stderr apart."""

    def __init__(self, proxy: SshProxy, command: str, formatter: Formatter) -> None:
        self.proxy = proxy
        self.command = command
        self.formatter = formatter
        self.partial = {False: b"", True: b""}
        self.exit: int | str | None = None
        self.pid: int | None = None
        self.pid_known: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, chan: Any) -> None:
        self.proxy.formatter.session_start(self.proxy.hostname, self.command)

    def data_received(self, data: bytes, datatype: int | None) -> None:
        stderr = datatype == EXTENDED_DATA_STDERR
        lines = (self.partial[stderr] + data).split(b"\n")
        self.partial[stderr] = lines.pop()
        for raw in lines:
            self.emit(raw + b"\n", stderr)

    def emit(self, raw: bytes, stderr: bool) -> None:
        if stderr and self.pid is None and raw.startswith(PID_MARK):
            self.pid = int(raw[len(PID_MARK):])
            if not self.pid_known.done():
                self.pid_known.set_result(None)
            return
        line = raw.decode("utf-8", errors="replace")  # binary output never breaks a job
        self.formatter.line(line, EXTENDED_DATA_STDERR if stderr else None, self.proxy.hostname)

    def flush(self) -> None:
        """Terminate partial last lines: never glued to the next host's output."""
        for stderr in (False, True):
            if self.partial[stderr]:
                raw, self.partial[stderr] = self.partial[stderr], b""
                self.emit(raw + b"\n", stderr)

    def eof_received(self) -> bool:
        self.flush()
        return False

    def exit_status_received(self, status: int) -> None:
        self.exit = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str,
                             lang: str) -> None:
        self.exit = signal

    def connection_lost(self, exc: Exception | None) -> None:
        self.flush()
        if not self.pid_known.done():
            self.pid_known.set_result(None)
        self.proxy.formatter.session_stop(self.proxy.hostname, self.command)


async def session_opened(open_session: Callable[[], Awaitable[T]]) -> T:
    """Open a session, waiting while the server is at its ``MaxSessions``.

    sshd frees a session slot a little after the channel closes (once it has
    reaped the command), so a new session can be refused for a moment.
    """
    for delay in (*SESSION_RETRY_DELAYS, None):
        try:
            return await open_session()
        except asyncssh.ChannelOpenError:
            if delay is None:
                raise
            await asyncio.sleep(delay)  # back-off while the server frees a slot
    raise AssertionError("unreachable")
