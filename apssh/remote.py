"""Running a command on a node: its output handed over at line ends, and how to stop it.

The command is sent wrapped so that the shell first tells its pid, which is its
process group (sshd makes each session a new session); stopping a command kills
that group from a second session, TERM then KILL. Sessions refused because the
server is at its ``MaxSessions`` are retried after a back-off. A command cancelled
while its session opens (asyncssh sends ``exec``, then waits for the reply) is
still stopped: the open goes on, shielded, and the command is stopped once started.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._asyncssh import asyncssh
from .formatters import EXTENDED_DATA_STDERR, Formatter
from .lines import LineSplitter

if TYPE_CHECKING:
    from .sshproxy import SshProxy

PID_MARK = b"APSSH-PID "
#: how long stopping a remote command (or abandoning a copy) may take
KILL_TIMEOUT = 3.0
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
    """Hands a session's output to the formatter (``data()``) as bytes, cut at line
    ends (``LineSplitter``), stdout and stderr apart; takes the shell's pid from
    the first stderr line that starts with ``PID_MARK`` (what a login shell's rc
    file prints before it goes to the formatter). ``pid_known`` is done once the
    pid is read, or the session ended without it."""

    def __init__(self, proxy: SshProxy, command: str, formatter: Formatter) -> None:
        self.proxy = proxy
        self.command = command
        self.formatter = formatter
        hostname = proxy.hostname
        self.stdout = LineSplitter(lambda raw: formatter.data(raw, None, hostname))
        self.stderr = LineSplitter(self._stderr)
        self.exit: int | str | None = None
        self.pid: int | None = None
        self.pid_known: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, chan: Any) -> None:
        self.proxy.formatter.session_start(self.proxy.hostname, self.command)

    def data_received(self, data: bytes, datatype: int | None) -> None:
        (self.stderr if datatype == EXTENDED_DATA_STDERR else self.stdout).feed(data)

    def _stderr(self, raw: bytes) -> None:
        if self.pid is None:  # the wrapper's pid line, maybe after a login shell's words
            raw = self._take_pid(raw)
            if not raw:
                return
        self.formatter.data(raw, EXTENDED_DATA_STDERR, self.proxy.hostname)

    def _take_pid(self, raw: bytes) -> bytes:
        """Look for the pid line among the lines of ``raw``; returns ``raw`` without
        it (what came before and after it, unchanged)."""
        start = 0
        while start < len(raw):
            end = raw.find(b"\n", start) + 1 or len(raw)
            if raw.startswith(PID_MARK, start):
                try:
                    self.pid = int(raw[start + len(PID_MARK):end])
                except ValueError:
                    pass
                else:
                    if not self.pid_known.done():
                        self.pid_known.set_result(None)
                    return raw[:start] + raw[end:]
            start = end
        return raw

    def flush(self) -> None:
        """Hand over partial last lines (the formatter terminates them if it shows
        lines to a person)."""
        self.stdout.close()
        self.stderr.close()

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


async def command_started(open_session: Callable[[], Awaitable[T]],
                          stop: Callable[[T], Awaitable[None]]) -> T:
    """``session_opened(open_session)``, shielded: cancelled while the session opens
    (the command may be started already), the open goes on for at most
    ``KILL_TIMEOUT``, then ``stop`` is given what it opened before the cancellation
    goes on, so that no command is left running without an owner."""
    opening = asyncio.ensure_future(session_opened(open_session))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        await asyncio.wait([opening], timeout=KILL_TIMEOUT)
        if not opening.done():
            opening.cancel()  # no answer: the server is stuck, nothing more to do
            opening.add_done_callback(_consume)
        elif not opening.cancelled() and opening.exception() is None:
            await stop(opening.result())
        raise


def _consume(done: asyncio.Future[Any]) -> None:
    """Mark ``done``'s outcome as retrieved: it was abandoned on purpose."""
    if not done.cancelled():
        done.exception()


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
