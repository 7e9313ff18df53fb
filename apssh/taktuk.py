"""Commands and file broadcasts on many nodes through TakTuk's tree of relays.

TakTuk (Debian package ``taktuk``) deploys itself over ssh: the client connects to
a few nodes, which connect to others (work stealing), so the client's cost stays
flat whatever the number of nodes. ``apssh.taktukline`` builds the ``taktuk``
command line and reads its output templates; here:

- ``TaktukRun`` (``apssh.taktuk_run``) runs the process (the actions on its
  standard input, kept open so that an interrupted run stops the commands on every
  node) and hands each host's lines to its feed;
- ``TaktukJob`` is one host's job for a scheduler (its outcome, output and events
  as an ``SshJob``'s);
- ``TaktukGroup`` makes the run and the jobs for a list of hosts, or runs them and
  returns each host's ``HostResult``.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from asynciojobs import events
from asynciojobs.job import AbstractJob

from .errors import ApsshError, ConnectError, reason
from .formatters import EXTENDED_DATA_STDERR, Formatter
from .taktuk_run import TaktukRun
from .taktukline import (
    ROOT_ARITY,
    SshSettings,
    TaktukHost,
    TaktukMissingError,
    command_line,
    connector,
    exec_action,
    exit_result,
    find_taktuk,
    get_action,
    layout,
    parse_line,
    place,
    put_action,
    script,
    settings_from_files,
    staging_dir,
)

__all__ = [
    "HostResult",
    "NodeName",
    "SshSettings",
    "TaktukGroup",
    "TaktukHost",
    "TaktukJob",
    "TaktukMissingError",
    "TaktukRun",
    "command_line",
    "connector",
    "exec_action",
    "find_taktuk",
    "get_action",
    "parse_line",
    "put_action",
    "settings_from_files",
]

@dataclass
class HostResult:
    """What one host did: its output (only kept by a job without a formatter: one
    that shows it keeps nothing), and how it ended: ``status`` (exit code or
    signal name, None when it did not get that far), ``reason`` when it failed to
    connect or to receive a file, or TakTuk did not run."""

    stdout: bytes = b""
    stderr: bytes = b""
    status: int | str | None = None
    unreachable: bool = False
    reason: str | None = None
    received: int = 0
    failed: int = 0


@dataclass(frozen=True)
class NodeName:
    """What a record, or a formatter aligning host names, reads of a job's node."""

    hostname: str
    username: str | None = None


class TaktukJob(AbstractJob):
    """One host of a ``TaktukRun``, as a job: it starts the run if nobody has,
    shows its output through ``formatter`` (and as ``Output`` events; without a
    formatter, it keeps it in ``result_data``), returns the exit code (or signal
    name) and raises ``ConnectError`` when the host cannot be reached: what an
    ``SshJob`` does, so that reports treat both alike."""

    def __init__(self, run: TaktukRun, index: int, host: TaktukHost, command: str, *,
                 formatter: Formatter | None = None, progress: Any = None,
                 copies: int = 0, gets: Sequence[str] = (), staged: Path | None = None,
                 into: str = "", **kwds: Any) -> None:
        kwds.setdefault("critical", False)
        kwds.setdefault("label", command)
        super().__init__(**kwds)
        self.run = run
        self.index = index
        self.host = host
        self.node = NodeName(host.host, host.user)
        self.command = command
        self.formatter = formatter
        self.progress = progress
        #: appush: how many files this host must receive (0: a command)
        self.copies = copies or len(gets)
        #: appull: the remote sources, where TakTuk puts them, where they go then
        self.gets, self.staged, self.into = tuple(gets), staged, into
        self.result_data = HostResult()
        #: the output kept for ``result_data`` (without a formatter only)
        self._kept: dict[str, bytearray] | None = (
            {"stdout": bytearray(), "stderr": bytearray()} if formatter is None else None)

    async def co_run(self) -> Any:
        """Follow this host's events to its end."""
        if self.progress is not None:
            self.progress.started()
        self.run.start()
        bus = events.emitting()
        began = time.time()
        if bus is not None:
            bus.emit(events.CommandStarted(job=self, node=self.host.host, index=0,
                                           command=self.command, time=began))
        result: Any = None
        outcome, why = "failed", None
        try:
            result = await self._follow()
            if result == 0:
                outcome = "ok"
            else:  # as an SshJob says it
                why = (f"exit {result}" if isinstance(result, int) else
                       f"{result}" if result is not None else "no exit status from TakTuk")
            return result
        except asyncio.CancelledError:
            outcome, why = "cancelled", "cancelled"
            raise
        except Exception as exc:
            why = reason(exc)
            if bus is not None and isinstance(exc, ConnectError):
                bus.emit(events.ConnectionFailed(node=self.host.host, reason=why))
            raise
        finally:
            if self._kept is not None:
                self.result_data.stdout = bytes(self._kept["stdout"])
                self.result_data.stderr = bytes(self._kept["stderr"])
            if bus is not None:
                bus.emit(events.CommandEnded(job=self, node=self.host.host, index=0,
                                             command=self.command, outcome=outcome,
                                             status=result if outcome != "cancelled" else None,
                                             reason=why, duration=time.time() - began))
            if self.progress is not None:
                self.progress.finished(outcome == "ok")
            self.run.host_done(cancelled=outcome == "cancelled")

    async def _follow(self) -> int | str | None:
        feed, done = self.run.feeds[self.index], self.result_data
        name = self.host.host
        detail: str | None = None
        while True:
            line = await feed.queue.get()
            if line is None:  # the host's end untold: TakTuk ended, or did not run
                failure = self.run.failure()
                if failure is not None:
                    done.reason = failure
                    raise _HostFailed(name, failure)
                break
            if line.kind in ("stdout", "stderr"):
                assert isinstance(line.data, bytes)
                self._output(line.kind, line.data, name)
            elif line.kind == "status":  # after the output: the host is done
                assert isinstance(line.data, int)
                done.status = exit_result(line.data)
                break
            elif line.kind in ("received", "not-received"):
                done.received += line.kind == "received"
                done.failed += line.kind == "not-received"
                if done.failed and not done.reason:
                    done.reason = "file reception failed" + (f": {detail}" if detail else "")
                if self.copies and done.received + done.failed >= self.copies:
                    break
            elif line.kind == "taktuk" and self.copies and detail is None:
                assert isinstance(line.data, bytes)
                text = line.data.decode(errors="replace").strip()
                if text.startswith("Error "):  # the first says why; the others follow from it
                    detail = text.removeprefix("Error ")
            elif line.kind in ("failed", "lost"):  # the run says why in data
                assert isinstance(line.data, bytes)
                done.unreachable = True
                done.reason = line.data.decode(errors="replace") or "connection failed"
                raise ConnectError(name, done.reason)
        if self.gets:
            return self._placed(name, detail)
        if self.copies:
            if done.received >= self.copies and not done.reason:
                return 0
            if done.received == 0 and not done.reason:
                done.unreachable = True
                raise ConnectError(name, "no answer from TakTuk")
            raise _HostFailed(name, done.reason or "file reception failed")
        return done.status

    def _placed(self, name: str, detail: str | None) -> int:
        """appull: TakTuk is done; this host's files, moved in place (0), or why not."""
        done = self.result_data
        assert self.staged is not None
        missing = [s for s in self.gets if not (self.staged / PurePosixPath(s).name).exists()]
        if missing or detail:
            done.failed = len(missing) or 1
            done.reason = (f"file reception failed: {detail}" if detail
                           else f"{missing[0]}: not received")
            raise _HostFailed(name, done.reason)
        try:
            place(self.staged, self.gets, self.into)
        except (OSError, ValueError) as exc:
            done.reason = f"{self.into}: {reason(exc)}"
            raise _HostFailed(name, done.reason) from exc
        done.received = len(self.gets)
        return 0

    def _output(self, stream: str, data: bytes, name: str) -> None:
        if self._kept is not None:
            self._kept[stream] += data
        if self.formatter is not None:
            self.formatter.data(data, EXTENDED_DATA_STDERR if stream == "stderr" else None,
                                name)
        if events.wants_output():
            events.emit(events.Output(job=self, node=name, index=0, stream=stream, data=data))

    def text_label(self) -> str:
        return f"taktuk {self.command} @{self.host.host}"


class _HostFailed(ApsshError):
    """A host did not receive what ``appush --taktuk`` sent, or TakTuk did not run."""

    def __init__(self, node: str, reason: str) -> None:
        self.node, self.reason = node, reason
        super().__init__(f"{node}: {reason}")


@dataclass
class TaktukGroup:
    """A command (or a file broadcast) on ``hosts`` through one TakTuk tree.

    ``jobs()`` gives one ``TaktukJob`` per host, for a scheduler (the first that
    runs starts TakTuk); ``run()`` runs them all and returns each host's
    ``HostResult`` in order. ``command`` is a shell command line; ``put`` a list of
    ``(local source, remote destination)`` to broadcast instead; ``get`` remote
    sources to fetch from every host instead, into ``into[i]`` for host ``i`` (a
    directory when there are several sources or it ends with ``/``, as ``Pull``):
    they land in a staging directory first (``cleanup()`` removes it).
    """

    hosts: Sequence[TaktukHost]
    command: str | None = None
    put: Sequence[tuple[str, str]] = ()
    get: Sequence[str] = ()
    into: Sequence[str] = ()
    settings: SshSettings = field(default_factory=SshSettings)
    self_propagate: bool = True
    #: how many nodes each node deploys at once (TakTuk's ``-w``; None: its own)
    window: int | None = None
    #: how many nodes the root deploys itself, at most (TakTuk's ``-d`` for the root;
    #: None: no bound)
    arity: int | None = ROOT_ARITY
    taktuk: str | None = None
    diagnostics: Callable[[int | None, str], None] | None = None

    def __post_init__(self) -> None:
        if not self.hosts:
            raise ValueError("TaktukGroup: no hosts")
        if (self.command is not None) + bool(self.put) + bool(self.get) != 1:
            raise ValueError("TaktukGroup: give either a command, files to put or files "
                             "to get (one of them)")
        if self.get and len(self.into) != len(self.hosts):
            raise ValueError("TaktukGroup: get needs one local destination per host")
        self.layout = layout(self.hosts)
        #: each host's position in TakTuk's command line (``1.2``: behind a gateway)
        self.positions = {index: position for position, index in
                          self.layout.positions.items()}
        self.staged: Path | None = None
        if self.get:
            for source in self.get:
                get_action(source, "x")  # checked before a directory is made
            self.staged = staging_dir(self.into, self.positions.values())
        actions = ([exec_action(self.command)] if self.command is not None
                   else [put_action(src, dst) for src, dst in self.put] if self.put
                   else [get_action(src, f"{self.staged}/$position") for src in self.get])
        argv = command_line(self.taktuk or find_taktuk(), self.hosts, self.settings, [],
                            self_propagate=self.self_propagate, window=self.window,
                            arity=self.arity)
        self.taktuk_run = TaktukRun(argv, len(self.hosts), script=script(actions),
                                    diagnostics=self.diagnostics, close_input=bool(self.get),
                                    layout=self.layout)

    def label(self) -> str:
        """What the jobs are labelled with."""
        if self.command is not None:
            return self.command
        if self.put:
            return "put " + " ".join(src for src, _ in self.put)
        return "get " + " ".join(self.get)

    def jobs(self, formatter_for: Callable[[int, TaktukHost], Formatter | None]
             = lambda index, host: None, **kwds: Any) -> list[TaktukJob]:
        """One job per host (``formatter_for(index, host)`` shows its output)."""
        return [TaktukJob(self.taktuk_run, index, host, self.label(),
                          formatter=formatter_for(index, host), copies=len(self.put),
                          gets=self.get, into=self.into[index] if self.get else "",
                          staged=self.staged / self.positions[index] if self.staged else None,
                          **kwds)
                for index, host in enumerate(self.hosts)]

    def cleanup(self) -> None:
        """Remove the staging directory of a ``get`` (what was not moved in place)."""
        if self.staged is not None:
            shutil.rmtree(self.staged, ignore_errors=True)

    async def co_run(self) -> list[HostResult]:
        """Run on every host; each one's result, in order. What kept TakTuk from
        running is raised (``OSError``: ``taktuk`` names no program...)."""
        jobs = self.jobs()
        try:
            await asyncio.gather(*(job.co_run() for job in jobs), return_exceptions=True)
            await self.taktuk_run.wait()
        except asyncio.CancelledError:  # the commands are stopped on every node
            await self.taktuk_run.stop()
            raise
        finally:
            self.cleanup()
        return [job.result_data for job in jobs]

    def run(self) -> list[HostResult]:
        """``co_run()`` in the thread's event loop."""
        from asynciojobs.loop import run_in_thread_loop

        return run_in_thread_loop(self.co_run())
