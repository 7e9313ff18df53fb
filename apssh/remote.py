"""Running a command on a node: its output handed over at line ends, and how to stop it.

The command is sent wrapped so that the shell first tells its pid, which is its
process group (sshd makes each session a new session); stopping a command kills
that group from a second session, TERM then KILL. Sessions refused because the
server is at its ``MaxSessions`` are retried after a back-off. A command cancelled
while its session opens (asyncssh sends ``exec``, then waits for the reply) is
still stopped: the open goes on, shielded, and the command is stopped once started.

A command that leaves a process in the background (``netcat -l 10000 > f &``)
has exited, but that process still holds its output: the server keeps the session
open until both of its streams end. Once the exit status has come, the session is
waited for only while its output keeps coming: after ``OUTPUT_GRACE`` seconds
without a byte, it is closed, and the command is over (``LineSession.ended``).
Silence is counted only while the loop could read: the time of the last output
is taken once the formatter has taken it (a paused ``| less``, a slow disk), and
a grace timer that fires late (the loop was busy elsewhere) starts a new grace.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ._asyncssh import asyncssh
from .formatters import EXTENDED_DATA_STDERR, Formatter
from .lines import LineSplitter

if TYPE_CHECKING:
    from .sshproxy import SshProxy

PID_MARK = b"APSSH-PID "
#: how long stopping a remote command (or abandoning a copy) may take
KILL_TIMEOUT = 3.0
#: the longest a cancelled command may take to stop: its session's open
#: (``command_started``), the wait for its pid and for the kill batch before its own,
#: then its own batch; ``asynciojobs``' ``CANCEL_GRACE`` must exceed it
WORST_STOP = 3 * KILL_TIMEOUT
#: back-off while the server refuses a session (at its MaxSessions), about 4 s in all
SESSION_RETRY_DELAYS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
#: once a command has exited, how long its output may stay silent (held open by a
#: process it left in the background) before its session is closed
OUTPUT_GRACE = 2.0
#: a grace timer firing later than this (seconds) means the loop could not read
#: meanwhile: the silence is counted again from then
LOOP_STALL = 0.1

T = TypeVar("T")


def wrap_command(command: str, *, no_input: bool = False) -> str:
    """The command as sent: the shell tells its pid (its process group), then runs
    it; ``no_input`` gives it an empty input (``/dev/null``, as ``ssh -n`` does)."""
    redirect = " </dev/null" if no_input else ""
    return (f"printf '{PID_MARK.decode()}%s\\n' \"$$\" >&2; "
            f"exec \"${{SHELL:-/bin/sh}}\" -c {shlex.quote(command)}{redirect}")


def kill_command(*pids: int) -> str:
    """Stop the process groups ``pids``: TERM, then KILL those that linger after 1 s."""
    groups = " ".join(f"-{int(pid)}" for pid in pids)
    return (f"set -- {groups}; for g; do kill -TERM $g 2>/dev/null; done; i=0; "
            "while [ $i -lt 10 ]; do alive=; "
            "for g; do kill -0 $g 2>/dev/null && alive=1; done; "
            '[ -z "$alive" ] && exit 0; sleep 0.1; i=$((i+1)); done; '
            "for g; do kill -KILL $g 2>/dev/null; done; exit 0")


class Killer:
    """Stops the commands of one node in batches: the process groups waiting to be
    killed are gathered, and one session kills them all (``kill_command``), one
    batch at a time, each bounded by ``KILL_TIMEOUT`` from when it starts. A pid
    waits at most for the batch running when it comes, then its own: Ctrl-C on
    many commands of one node costs one kill session, not one per command."""

    def __init__(self) -> None:
        #: the pids waiting for a batch, per connection, with what their callers await
        self.waiting: dict[Any, list[tuple[int, float, asyncio.Future[None]]]] = {}
        self.batches: asyncio.Task[None] | None = None

    async def kill(self, conn: Any, pid: int, start_by: float) -> None:
        """Kill the process group ``pid`` on ``conn`` in the next batch, unless that
        batch cannot start before ``start_by`` (the loop's time): then
        ``TimeoutError``; the batch's own error (``asyncssh.Error``, ``OSError``,
        ``TimeoutError``) otherwise."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        done.add_done_callback(consume)  # its caller may be gone (cancelled again)
        self.waiting.setdefault(conn, []).append((pid, start_by, done))
        if self.batches is None or self.batches.done():
            self.batches = asyncio.ensure_future(self._batches())
        await asyncio.shield(done)

    async def _batches(self) -> None:
        waiting: list[tuple[int, float, asyncio.Future[None]]] = []
        try:
            while self.waiting:
                conn = next(iter(self.waiting))
                waiting = self.waiting.pop(conn)
                now = asyncio.get_running_loop().time()
                late = [done for _, start_by, done in waiting if start_by < now]
                for done in late:
                    done.set_exception(TimeoutError())
                waiting = [entry for entry in waiting if entry[2] not in late]
                if not waiting:
                    continue
                command = kill_command(*sorted({pid for pid, _, _ in waiting}))
                try:
                    async with asyncio.timeout(KILL_TIMEOUT):
                        await session_opened(partial(conn.run, command, check=False))
                except Exception as exc:  # each caller reports it
                    for _, _, done in waiting:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, _, done in waiting:
                        if not done.done():
                            done.set_result(None)
                waiting = []
        finally:  # cancelled (the loop closes): nobody is left waiting
            for _, _, done in [*waiting, *(e for es in self.waiting.values() for e in es)]:
                if not done.done():
                    done.cancel()
            self.waiting.clear()


class LineSession(asyncssh.SSHClientSession[bytes]):
    """Hands a session's output to the formatter (``data()``) as bytes, cut at line
    ends (``LineSplitter``), stdout and stderr apart; takes the shell's pid from
    the first stderr line that starts with ``PID_MARK`` (what a login shell's rc
    file prints before it goes to the formatter). ``pid_known`` is done once the
    pid is read, or the session ended without it.

    A formatter that raises (a full disk under ``SubdirFormatter``) must not raise
    into asyncssh, which would tear the whole connection down: the first error is
    kept in ``error``, the session's further output is dropped, and ``over`` is
    done, so that the caller stops the command and raises ``error``. ``over`` is
    also done when the session ends."""

    def __init__(self, proxy: SshProxy, command: str, formatter: Formatter) -> None:
        self.proxy = proxy
        self.command = command
        self.formatter = formatter
        hostname = proxy.hostname
        self.hostname = hostname
        self.stdout = LineSplitter(lambda raw: self._deliver(raw, None))
        self.stderr = LineSplitter(self._stderr)
        self.exit: int | str | None = None
        self.pid: int | None = None
        loop = asyncio.get_running_loop()
        self.pid_known: asyncio.Future[None] = loop.create_future()
        #: the first exception the formatter raised
        self.error: Exception | None = None
        self.over: asyncio.Future[None] = loop.create_future()
        #: done when the exit status (or signal) came
        self.exited: asyncio.Future[None] = loop.create_future()
        #: the clock of ``last_output`` and of the grace (the loop's time)
        self.clock: Callable[[], float] = loop.time
        #: the clock's time when the formatter was done with the last output, or
        #: of the exit when later
        self.last_output = self.clock()

    async def ended(self) -> bool:
        """Wait for the end of the session: True once it is over; False when the
        command has exited and its output stayed silent for ``OUTPUT_GRACE``
        seconds since (a process left in the background holds it open: the caller
        closes the session). Silence counts only while the loop could read: a
        timer firing more than ``LOOP_STALL`` late starts the grace again.
        Cancelling this leaves ``over`` and ``exited`` alone."""
        await asyncio.wait([self.over, self.exited], return_when=asyncio.FIRST_COMPLETED)
        quiet_since = self.last_output
        while not self.over.done():
            quiet_since = max(quiet_since, self.last_output)
            silent = self.clock() - quiet_since
            if silent >= OUTPUT_GRACE:
                return False
            due = self.clock() + OUTPUT_GRACE - silent
            await asyncio.wait([self.over], timeout=OUTPUT_GRACE - silent)
            now = self.clock()
            if now - due > LOOP_STALL:  # the loop was busy elsewhere: it could not read
                quiet_since = now
        return True

    def _exited(self, status: int | str) -> None:
        self.exit = status
        self.last_output = self.clock()
        if not self.exited.done():
            self.exited.set_result(None)

    def _deliver(self, raw: bytes, datatype: int | None) -> None:
        """Hand ``raw`` to the formatter; once it raised, drop it."""
        if self.error is not None:
            return
        try:
            self.formatter.data(raw, datatype, self.hostname)
        except Exception as exc:  # raised by run(), never into asyncssh
            self.error = exc
            if not self.over.done():
                self.over.set_result(None)

    def connection_made(self, chan: Any) -> None:
        self.proxy.formatter.session_start(self.proxy.hostname, self.command)

    def data_received(self, data: bytes, datatype: int | None) -> None:
        (self.stderr if datatype == EXTENDED_DATA_STDERR else self.stdout).feed(data)
        # once the formatter is done with it: a write that blocked (a paused
        # ``| less``, a slow disk) is not silence, the loop could not read meanwhile
        self.last_output = self.clock()

    def _stderr(self, raw: bytes) -> None:
        if self.pid is None:  # the wrapper's pid line, maybe after a login shell's words
            raw = self._take_pid(raw)
            if not raw:
                return
        self._deliver(raw, EXTENDED_DATA_STDERR)

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
        self._exited(status)

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str,
                             lang: str) -> None:
        self._exited(signal)

    def connection_lost(self, exc: Exception | None) -> None:
        self.flush()
        if not self.pid_known.done():
            self.pid_known.set_result(None)
        if not self.over.done():
            self.over.set_result(None)
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
            opening.add_done_callback(consume)
        elif not opening.cancelled() and opening.exception() is None:
            await stop(opening.result())
        raise


def consume(done: asyncio.Future[Any]) -> None:
    """Mark ``done``'s outcome as retrieved (a done callback for a future abandoned on
    purpose, or whose error is raised elsewhere): no "never retrieved" warning."""
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
