"""The ``taktuk`` process of ``apssh.taktuk``: started once, fed its actions, its
template lines read and handed to each host's feed.

A host behind a gateway is told of by its position in TakTuk's nested host
specification (``apssh.taktukline.layout``); when a gateway cannot be reached, or
is lost, every host behind it ends with it, told why (``gateway root@gw
unreachable (connection refused)``, as the direct mode says it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from .errors import reason
from .taktukline import KILL_ALL, Layout, Line, parse_line, unreachable_reason


class _Feed:
    """One host's events, in order, for its job (or its result)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Line | None] = asyncio.Queue()
        self.done = False

    def put(self, line: Line | None) -> None:
        if not self.done:
            self.queue.put_nowait(line)
            self.done = line is None or line.kind in ("failed", "lost")


class TaktukRun:
    """One ``taktuk`` process for ``hosts``, started once by whoever needs it first;
    each host's lines go to its feed (``feeds[index]``). ``script``: the actions, fed
    on TakTuk's standard input, which stays open until every host is done
    (``host_done()``), so that an interrupted run can still stop the commands on
    every node (``interrupt()``). ``diagnostics`` gets the lines TakTuk prints about
    itself (a failed put, a Perl error...). ``layout``: where the hosts are in the
    command line (``apssh.taktukline.layout``; None: position ``i + 1`` is host
    ``i``, no gateways)."""

    def __init__(self, argv: list[str], hosts: int, *, script: bytes = b"",
                 diagnostics: Callable[[int | None, str], None] | None = None,
                 close_input: bool = False, layout: Layout | None = None) -> None:
        self.argv = argv
        self.layout = layout
        #: what each connector printed, by the position of the node it reaches
        self.connector: dict[str, list[str]] = {}
        self.script = script
        #: the script is all: TakTuk's input ends with it (a ``get``, whose hosts
        #: are done when TakTuk is), and an interrupted run kills TakTuk
        self.close_input = close_input
        self.feeds = [_Feed() for _ in range(hosts)]
        self.diagnostics = diagnostics
        self.process: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[int] | None = None
        self.returncode: int | None = None
        #: hosts whose job is over; whether the run is being stopped
        self.ended = 0
        self.stopping = False

    def start(self) -> asyncio.Task[int]:
        """Start the process (once); the task that reads it to its end. However that
        task ends (TakTuk done, failing to start, cancelled even before it ran),
        every host's feed ends with it: no follower waits for lines that will not
        come."""
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())
            self.task.add_done_callback(self._end_feeds)
        return self.task

    def _end_feeds(self, task: asyncio.Task[int]) -> None:
        for feed in self.feeds:  # what did not tell its end has none
            feed.put(None)

    def failure(self) -> str | None:
        """Why the run ended without TakTuk's exit (it could not be started, it was
        stopped); None while it runs, or once TakTuk exited."""
        task = self.task
        if task is None or not task.done():
            return None
        if task.cancelled():
            return "taktuk was stopped"
        failed = task.exception()
        return f"taktuk failed: {reason(failed)}" if failed is not None else None

    async def _run(self) -> int:
        try:  # a failed start too ends in the finally (and the feeds with the task)
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.PIPE if self.script else asyncio.subprocess.DEVNULL,
                limit=1 << 20, start_new_session=True)
            if self.stopping:  # stopped before it started: nothing runs yet
                self.kill()
            else:  # no host: nobody will say it is done, TakTuk's input ends now
                self._write(self.script, close=not self.feeds or self.close_input)
            await asyncio.gather(self._read(self.process.stdout),
                                 self._read(self.process.stderr))
            returncode = self.returncode = await self.process.wait()
        finally:
            self.kill()
        return returncode

    async def _read(self, stream: asyncio.StreamReader | None) -> None:
        assert stream is not None
        positions = self.layout.positions if self.layout is not None else None
        while raw := await stream.readline():
            line = parse_line(raw, positions)
            if line is None:  # TakTuk's own words (a Perl error...)
                if self.diagnostics is not None:
                    self.diagnostics(None, raw.decode(errors="replace").rstrip("\n"))
                continue
            self.dispatch(line)

    def dispatch(self, line: Line) -> None:
        """Hand ``line`` to its host's feed; a failed or lost connection to each
        host it ends (with its reason in ``data``): the node's own, the nodes it
        was deploying, the hosts behind it when it is a gateway."""
        if line.kind == "taktuk":
            assert isinstance(line.data, bytes)
            if self.diagnostics is not None:
                self.diagnostics(line.index, line.data.decode(errors="replace"))
            if line.index is not None and line.index < len(self.feeds):
                self.feeds[line.index].put(line)
            return
        if line.kind == "connector":
            assert isinstance(line.data, bytes)
            self.connector.setdefault(line.position, []).append(
                line.data.decode(errors="replace").rstrip("\r\n"))
            return
        if line.kind in ("failed", "lost"):
            self._ended(line)
            return
        if line.index is not None and line.index < len(self.feeds):
            self.feeds[line.index].put(line)

    def _ended(self, line: Line) -> None:
        """A connection failed (or was lost): each host it ends, and why."""
        why = ("connection lost" if line.kind == "lost"
               else unreachable_reason(self.connector.pop(line.position, [])))
        ended = {index: why for index in line.more}  # what it was deploying
        gateway = self.layout.gateways.get(line.position) if self.layout else None
        if gateway is not None:
            name, behind = gateway
            told = (f"connection lost: gateway {name} lost" if line.kind == "lost"
                    else f"gateway {name} unreachable ({why})")
            ended.update(dict.fromkeys(behind, told))
        if line.index is not None:
            ended[line.index] = why
        for index, told in ended.items():
            if index < len(self.feeds):
                self.feeds[index].put(Line(line.kind, index, told.encode()))

    def _write(self, data: bytes, *, close: bool) -> None:
        stdin = self.process.stdin if self.process is not None else None
        if stdin is None or stdin.is_closing():
            return
        with contextlib.suppress(OSError):  # TakTuk is gone: nothing to tell it
            if data:
                stdin.write(data)
            if close:
                stdin.close()

    def host_done(self, *, cancelled: bool = False) -> None:
        """A host's job is over (``cancelled``: stopped, then so is the run); after
        the last one, TakTuk's input ends and it quits."""
        if cancelled:
            self.interrupt()
            return
        self.ended += 1
        if self.ended >= len(self.feeds):
            self._write(b"", close=True)

    def interrupt(self) -> None:
        """Stop every command TakTuk started, on every node (TakTuk's ``broadcast
        kill``), and let it quit; killing TakTuk would leave them running."""
        self.stopping = True
        if self.close_input:  # no command runs on the nodes: only TakTuk to stop
            self.kill()
        else:
            self._write(KILL_ALL, close=True)

    async def stop(self, grace: float = 10.0) -> None:
        """``interrupt()``, wait for TakTuk to end (at most ``grace`` seconds), then
        ``kill()`` what is left."""
        self.interrupt()
        if self.task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.task), grace)
        self.kill()

    def kill(self) -> None:
        """Kill the root process at once (its relays end with their connections, the
        commands they started may not: see ``stop()``)."""
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                process.kill()

    async def wait(self) -> int:
        """Run to the end; TakTuk's exit code."""
        return await self.start()
