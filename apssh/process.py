"""A command you keep a handle on: start it, talk to it, wait for it, kill it.

``Process(node, command)`` (or ``node.process(command)``) runs one command on a
node, local or remote, as execo's ``Process`` / ``SshProcess`` do: ``start()``,
``write()`` to its stdin and ``close()`` it, ``expect()`` a pattern on its stdout
or stderr, ``wait()`` for its end, ``kill()`` it (its whole process group), and
read what it printed (``stdout``, ``stderr``: bytes, unchanged) and how it ended
(``exit_status``: a number, or a signal name). ``async with`` kills it on exit.
``run()`` is the one-shot form, ``run_sync()`` the same without asyncio.

The node does the node-specific part (``open_process``): on an ``SshProxy`` the
command is sent wrapped as ``run()`` sends it and is stopped by the node's own kill
path (its process group, from a second session); on a ``LocalNode`` it runs as a
subprocess in a session of its own and its group is killed. Its output also goes
to a formatter, as lines, like ``run()``'s (``show=False``: not at all).
"""

from __future__ import annotations

import asyncio
import codecs
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .errors import ApsshError
from .formatters import EXTENDED_DATA_STDERR, Formatter
from .lines import LineSplitter
from .localproc import forward, kill_group, start_group, status
from .remote import PID_MARK, LineSession, command_started, consume, wrap_command

if TYPE_CHECKING:
    from .sshproxy import SshProxy

__all__ = ["ExpectEndError", "ExpectTimeoutError", "Process", "ProcessHandle"]

Stream = Literal["stdout", "stderr"]
Status = int | str | None


class ExpectTimeoutError(ApsshError, TimeoutError):
    """``expect()`` did not see its pattern in time; the process goes on."""

    def __init__(self, node: str, command: str, pattern: str, stream: str,
                 timeout: float) -> None:
        self.node, self.command, self.pattern = node, command, pattern
        self.stream, self.timeout = stream, timeout
        super().__init__(f"{node}: pattern {pattern!r} not seen on {stream} within "
                         f"{timeout}s: {command}")


class ExpectEndError(ApsshError, EOFError):
    """The process ended before its output matched ``expect()``'s pattern."""

    def __init__(self, node: str, command: str, pattern: str, stream: str) -> None:
        self.node, self.command, self.pattern, self.stream = node, command, pattern, stream
        super().__init__(f"{node}: pattern {pattern!r} not seen on {stream} before the "
                         f"end of: {command}")


class ProcessHandle(Protocol):
    """What a node gives ``Process`` for a started command (``open_process``)."""

    @property
    def pid(self) -> int | None:
        """The process group of the command, once known."""

    def write(self, data: bytes) -> None:
        """Send ``data`` to the command's stdin."""

    async def drain(self) -> None:
        """Wait until what was written can be taken (flow control)."""

    def close_stdin(self) -> None:
        """Send end-of-file to the command's stdin."""

    async def ended(self) -> Status:
        """Wait for the command's end; its exit status, or its signal name."""

    async def kill(self) -> None:
        """Kill the command's process group."""


class _Output:
    """One stream of a process: its bytes, their text, and who waits for more."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []
        self._text = ""
        self.closed = False
        self.changed = asyncio.Event()
        #: where the next ``expect()`` starts, in bytes and in text
        self.byte_cursor = 0
        self.text_cursor = 0

    def feed(self, data: bytes) -> None:
        self.data += data
        if text := self._decoder.decode(data):
            self._parts.append(text)
        self.changed.set()

    def close(self) -> None:
        if not self.closed:
            if text := self._decoder.decode(b"", final=True):
                self._parts.append(text)
            self.closed = True
            self.changed.set()

    @property
    def text(self) -> str:
        if self._parts:
            self._text += "".join(self._parts)
            self._parts.clear()
        return self._text


class Process:
    """``command`` on ``node``, with a handle on it (see the module's docstring).

    ``formatter``: where its output lines go (default: the node's); ``show=False``:
    nowhere (they are kept all the same, in ``stdout`` and ``stderr``).
    """

    def __init__(self, node: Any, command: str, *, formatter: Formatter | None = None,
                 show: bool = True) -> None:
        self.node = node
        self.command = command
        self.formatter: Formatter = (Formatter() if not show
                                     else formatter if formatter is not None
                                     else node.formatter)
        #: the exit status, or the signal name, once ended (None before, or unknown)
        self.exit_status: Status = None
        #: when it was started and when it ended (``time.time()``), None until then
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._outputs: dict[str, _Output] = {"stdout": _Output(), "stderr": _Output()}
        self._handle: ProcessHandle | None = None
        self._watch: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        state = ("not started" if self._handle is None else
                 "running" if self.running else f"ended: {self.exit_status}")
        return f"<Process {self.command!r} on {self.node} ({state})>"

    # ----- what it did
    @property
    def running(self) -> bool:
        """True once started and until it ended."""
        return self._watch is not None and not self._watch.done()

    @property
    def pid(self) -> int | None:
        """Its process group on the node, once known."""
        return None if self._handle is None else self._handle.pid

    @property
    def stdout(self) -> bytes:
        """What it printed on stdout so far, unchanged."""
        return bytes(self._outputs["stdout"].data)

    @property
    def stderr(self) -> bytes:
        """What it printed on stderr so far, unchanged."""
        return bytes(self._outputs["stderr"].data)

    @property
    def stdout_text(self) -> str:
        """``stdout`` decoded (UTF-8, invalid bytes replaced)."""
        return self._outputs["stdout"].text

    @property
    def stderr_text(self) -> str:
        """``stderr`` decoded (UTF-8, invalid bytes replaced)."""
        return self._outputs["stderr"].text

    def received(self, data: bytes, stream: Stream) -> None:
        """Called by the node's handle with the command's output, as it comes."""
        self._outputs[stream].feed(data)

    # ----- its life
    async def start(self) -> Process:
        """Start the command; returns the process, once the command is started."""
        if self._handle is not None:
            raise RuntimeError(f"{self!r} was started already")
        self.started_at = time.time()
        handle = self._handle = await self.node.open_process(self)
        self._watch = asyncio.ensure_future(self._watch_end(handle))
        self._watch.add_done_callback(consume)  # its error is raised by wait(), if asked
        return self

    async def _watch_end(self, handle: ProcessHandle) -> None:
        try:
            self.exit_status = await handle.ended()
        finally:
            self.ended_at = time.time()
            for output in self._outputs.values():
                output.close()

    def _started(self) -> tuple[ProcessHandle, asyncio.Future[None]]:
        if self._handle is None or self._watch is None:
            raise RuntimeError(f"{self!r}: start() it first")
        return self._handle, self._watch

    async def wait(self, timeout: float | None = None) -> Status:
        """Wait for its end; returns ``exit_status``. Not over within ``timeout``
        seconds: ``TimeoutError``, and the process goes on (``kill()`` it)."""
        _, watch = self._started()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(watch)
        except TimeoutError:
            raise TimeoutError(f"{self.node}: still running after {timeout}s: "
                               f"{self.command}") from None
        return self.exit_status

    async def kill(self) -> Status:
        """Kill its process group on the node (nothing it started is left), and
        wait for its end; returns ``exit_status`` (the signal name when the node
        reported it). Nothing to do when it is over already."""
        handle, watch = self._started()
        if not watch.done():
            await handle.kill()
            await asyncio.shield(watch)
        return self.exit_status

    async def write(self, data: bytes | str) -> None:
        """Send ``data`` (a str is encoded in UTF-8) to its stdin."""
        handle, _ = self._started()
        handle.write(data.encode() if isinstance(data, str) else data)
        await handle.drain()

    async def close(self) -> None:
        """Close its stdin: the command reads end-of-file."""
        handle, _ = self._started()
        handle.close_stdin()

    async def expect(self, pattern: str | bytes | re.Pattern[Any], timeout: float | None = None,
                     stream: Stream = "stdout") -> re.Match[Any]:
        """Wait until its output on ``stream`` matches ``pattern``; returns the match
        (its named groups are there for later). Each ``expect()`` searches from
        where the previous one's match ended. A str pattern is compiled with
        ``re.MULTILINE`` (``^`` and ``$`` match at line ends) and searched in the
        text, a bytes one in the bytes. Not seen within ``timeout`` seconds:
        ``ExpectTimeoutError`` naming the pattern; the process ended first:
        ``ExpectEndError``."""
        if stream not in self._outputs:
            raise ValueError(f"stream is 'stdout' or 'stderr', not {stream!r}")
        self._started()
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.MULTILINE)
        shown = regex.pattern if isinstance(regex.pattern, str) else repr(regex.pattern)
        output = self._outputs[stream]
        try:
            async with asyncio.timeout(timeout):
                while True:
                    match = self._search(regex, output)
                    if match is not None:
                        return match
                    if output.closed:
                        raise ExpectEndError(str(self.node), self.command, shown, stream)
                    output.changed.clear()
                    await output.changed.wait()
        except TimeoutError:
            raise ExpectTimeoutError(str(self.node), self.command, shown, stream,
                                     timeout or 0) from None

    @staticmethod
    def _search(regex: re.Pattern[Any], output: _Output) -> re.Match[Any] | None:
        match: re.Match[Any] | None
        if isinstance(regex.pattern, bytes):
            match = regex.search(bytes(output.data), output.byte_cursor)
            if match is not None:
                output.byte_cursor = match.end()
        else:
            match = regex.search(output.text, output.text_cursor)
            if match is not None:
                output.text_cursor = match.end()
        return match

    async def run(self, timeout: float | None = None,
                  input: bytes | str | None = None) -> Process:
        """The one-shot form: ``start()``, ``write(input)`` when given, ``close()``
        (the command reads end-of-file), ``wait(timeout)``; returns the process
        (``exit_status``, ``stdout``...). Not over within ``timeout`` seconds: it is
        killed, then ``TimeoutError``."""
        await self.start()
        try:
            if input is not None:
                await self.write(input)
            await self.close()
            await self.wait(timeout)
        except BaseException:
            await asyncio.shield(self.kill())
            raise
        return self

    def run_sync(self, timeout: float | None = None,
                 input: bytes | str | None = None) -> Process:
        """``run()`` for a script or a notebook cell without asyncio: in an event
        loop of its own, which closes the node's connection before it ends.
        ``RuntimeError`` inside a running loop (``await run()`` there)."""
        from .oneshot import run_closing

        return run_closing(lambda: self.run(timeout, input), [self.node], "Process")

    async def __aenter__(self) -> Process:
        if self._handle is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._handle is not None:
            await self.kill()



# ----- on an ssh node
class _SshSession(LineSession):
    """A ``LineSession`` that also hands the raw output to its ``Process`` as it
    comes (the wrapper's pid line left out)."""

    def __init__(self, proxy: SshProxy, process: Process) -> None:
        super().__init__(proxy, process.command, process.formatter)
        self.process = process
        self._early = b""  # stderr until the pid line came

    def data_received(self, data: bytes, datatype: int | None) -> None:
        if datatype != EXTENDED_DATA_STDERR:
            self.process.received(data, "stdout")
        elif self.pid is not None:
            self.process.received(data, "stderr")
        else:
            self._early += data
            super().data_received(data, datatype)  # finds the pid line
            if self.pid is not None:
                self._release_early()
            return
        super().data_received(data, datatype)

    def _release_early(self) -> None:
        early, self._early = self._early, b""
        if self.pid is not None:
            mark = PID_MARK + str(self.pid).encode() + b"\n"
            at = early.find(mark)
            while at > 0 and early[at - 1:at] != b"\n":
                at = early.find(mark, at + 1)
            if at >= 0:
                early = early[:at] + early[at + len(mark):]
        if early:
            self.process.received(early, "stderr")

    def connection_lost(self, exc: Exception | None) -> None:
        self._release_early()
        super().connection_lost(exc)


class SshHandle:
    """A command started on an ssh node: its channel, and the node's way of
    stopping it (``stop``: ``SshProxy``'s kill path). It holds one of the node's
    session slots (``slot``) until it ended."""

    def __init__(self, chan: Any, session: _SshSession, slot: asyncio.Semaphore,
                 stop: Callable[[], Awaitable[None]]) -> None:
        self.chan, self.session, self.slot, self.stop = chan, session, slot, stop
        self._released = False

    @property
    def pid(self) -> int | None:
        return self.session.pid

    def write(self, data: bytes) -> None:
        self.chan.write(data)

    async def drain(self) -> None:
        """asyncssh buffers what is written: nothing to wait for."""

    def close_stdin(self) -> None:
        self.chan.write_eof()

    async def ended(self) -> Status:
        session = self.session
        try:
            if not await session.ended():  # a background process holds its output
                self.chan.close()
            await self.chan.wait_closed()
        finally:
            if not self._released:
                self._released = True
                self.slot.release()
        return session.exit

    async def kill(self) -> None:
        await self.stop()


async def open_ssh(proxy: SshProxy, process: Process, conn: Any, slot: asyncio.Semaphore,
                   stop: Callable[[Any, Any, Any], Awaitable[None]]) -> SshHandle:
    """Start ``process`` on ``conn`` (``proxy``'s connection) once a session slot
    is free; ``stop(conn, chan, session)`` kills a command (``SshProxy``'s)."""
    await slot.acquire()
    try:
        chan, session = await command_started(
            lambda: conn.create_session(lambda: _SshSession(proxy, process),
                                        wrap_command(process.command), encoding=None),
            lambda opened: stop(conn, *opened))
    except BaseException:
        slot.release()
        raise
    return SshHandle(chan, session, slot, lambda: stop(conn, chan, session))


# ----- on this machine
class LocalHandle:
    """A command started as a local subprocess, in a session of its own: ``kill``
    kills its process group."""

    def __init__(self, proc: asyncio.subprocess.Process, process: Process,
                 hostname: str) -> None:
        self.proc = proc
        self.readers = [
            asyncio.ensure_future(self._forward(proc.stdout, "stdout", None, process, hostname)),
            asyncio.ensure_future(self._forward(proc.stderr, "stderr", EXTENDED_DATA_STDERR,
                                                process, hostname)),
        ]

    @staticmethod
    async def _forward(reader: asyncio.StreamReader | None, stream: Stream,
                       datatype: int | None, process: Process, hostname: str) -> None:
        lines = process.formatter
        splitter = LineSplitter(lambda raw: lines.data(raw, datatype, hostname))
        try:
            await forward(reader, lambda chunk: process.received(chunk, stream), splitter.feed)
        finally:
            splitter.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def write(self, data: bytes) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write(data)

    async def drain(self) -> None:
        if self.proc.stdin is not None:
            await self.proc.stdin.drain()

    def close_stdin(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    async def ended(self) -> Status:
        try:
            await asyncio.gather(*self.readers)
            returncode = await self.proc.wait()
        finally:
            for reader in self.readers:
                reader.cancel()
        return status(returncode)

    async def kill(self) -> None:
        kill_group(self.proc.pid)


async def open_local(hostname: str, process: Process) -> LocalHandle:
    """Start ``process`` as a local subprocess in a session of its own (a cancel
    while it starts kills its whole group)."""
    pipe = asyncio.subprocess.PIPE
    proc = await start_group(process.command, stdin=pipe, stdout=pipe, stderr=pipe)
    return LocalHandle(proc, process, hostname)
