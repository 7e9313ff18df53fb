"""SshJob: an asynciojobs job that runs commands, one after the other, on a node."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asynciojobs import AbstractJob, events

from .commands import AbstractCommand, Run
from .deferred import Deferred
from .errors import ApsshError, CommandFailedError, JobTimeoutError, reason
from .node import Node, is_node, missing_members
from .readiness import OutputReadiness
from .retry import check_retries, connection_problem, forget_failure, with_retries


def normalize_commands(commands: Any) -> list[AbstractCommand]:
    """Commands as given to SshJob: one command, a list of commands (None entries
    skipped), a string or Deferred (one Run), or a list of strings (one Run)."""
    if isinstance(commands, AbstractCommand):
        return [commands]
    if isinstance(commands, str | Deferred):
        return [Run(commands)]
    if isinstance(commands, list | tuple):
        items = [c for c in commands if c is not None]
        if items and all(isinstance(c, str | Deferred) for c in items):
            return [Run(*items)]
        bad = [c for c in items if not isinstance(c, AbstractCommand)]
        if not bad and items:
            return items
        if bad:
            raise TypeError(f"SshJob: not a command: {bad[0]!r}")
    raise TypeError(f"SshJob: expected commands (Run, RunScript, ... or str), got {commands!r}")


class SshJob(AbstractJob):
    """Run ``commands`` on ``node``, in sequence.

    A command whose result is not allowed fails the job: a critical job (the
    default) raises ``CommandFailedError`` and skips the rest; a non-critical one
    notes it and goes on, and its result is the last failing result (else 0).
    Connection failures are raised as ``ConnectError`` subclasses.

    ``started_at`` and ``ended_at`` (``time.time()``, None until then) bound the
    last run.

    ``timeout`` bounds the whole job (its commands and their retries): over it,
    the running command is stopped on the node and the job fails with
    ``JobTimeoutError``. ``retries`` runs the whole job again (after a back-off,
    see ``apssh.retry``) when it cannot reach its node, and with
    ``retry_on_exit`` when a command fails; a command has its own ``retries``
    too. Attempts beyond the first show in ``repr_result()`` (``attempt 2/3``),
    and with ``verbose`` a line per retry.

    ``close()`` drops the node's connection at once, ``co_close()``
    closes it politely (both do nothing with ``keep_connection``).

    ``node`` is an ``SshNode``, a ``LocalNode``, or any object that honours
    ``apssh.node.Node`` (``ValueError`` naming what it lacks otherwise).
    """

    def __init__(self, node: Node, *, command: Any = None, commands: Any = None,
                 keep_connection: bool = False, verbose: bool | None = None,
                 forever: bool = False, critical: bool = True, timeout: float | None = None,
                 retries: int = 0, retry_on_exit: bool = False, **kwds: Any) -> None:
        if not is_node(node):
            raise ValueError(f"SshJob: node is expected to be an SshNode, a LocalNode or "
                             f"an apssh.node.Node, got {node!r} (it has no "
                             f"{', '.join(missing_members(node))})")
        self.node = node
        self.commands = normalize_commands(commands if commands is not None else command)
        for cmd in self.commands:
            cmd.node = node
            if verbose is not None:
                cmd.verbose = verbose
        self.keep_connection = keep_connection
        if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
            raise ValueError(f"SshJob: timeout: expected a positive number, got {timeout!r}")
        self.timeout = timeout
        self.retries = check_retries(retries)
        self.retry_on_exit = retry_on_exit
        self.verbose = bool(verbose)
        self._errors: list[str] = []
        #: attempts beyond the first: "[0] attempt 2/3" (a command), "attempt 2/3" (the job)
        self.attempts: list[str] = []
        super().__init__(forever=forever, critical=critical, **kwds)

    async def co_run(self) -> Any:
        """Run the commands; see the class docstring for the result."""
        self._errors, self.attempts = [], []
        self.started_at, self.ended_at = time.time(), None
        watchers = self.__dict__.get("_watchers")
        for command in self.commands:
            command.watchers = watchers
            command.job_label = None if self.label is None else str(self.label)
        try:
            async with asyncio.timeout(self.timeout) as deadline:
                return await self._run_attempts()
        except TimeoutError:
            if deadline.expired():
                raise JobTimeoutError(self._name(), str(self.node), self.timeout or 0) from None
            raise
        finally:
            self.ended_at = time.time()

    def when(self, condition: str, timeout: float | None = None, stream: str = "stdout",
             variables: dict[str, Any] | None = None) -> OutputReadiness:
        """A requirement met by the first output line matching ``condition`` (a regex).

        ``client = SshJob(..., required=server.when(r"port (?P<port>\\d+)", timeout=30))``
        starts the client as soon as the server prints a matching line, while the
        server keeps running. The named groups read as ``readiness["port"]`` and go
        into ``variables`` (for ``Deferred`` commands) when given; ``stream`` is
        ``"stdout"``, ``"stderr"`` or ``"both"``. With ``timeout`` (seconds from this
        job's start) the waiting job fails with one line if nothing matched.
        """
        readiness = OutputReadiness(self, condition, timeout, stream, variables)
        self.__dict__.setdefault("_watchers", []).append(readiness)
        return readiness

    def _name(self) -> str:
        return str(self.label) if self.label is not None else self.text_label()

    def _retry_line(self, what: str, number: int, total: int, why: str, delay: float,
                    verbose: bool) -> None:
        """Note a retry for the listing; with ``verbose``, a line on stderr."""
        if verbose:
            self.node.formatter.stderr_line(
                f"retry: {what}attempt {number}/{total} in {delay:g}s ({why})\n",
                self.node.hostname)

    async def _run_attempts(self) -> Any:
        if not self.retries:
            return await self._run_commands()

        def bad_exception(exc: BaseException) -> str | None:
            if self.retry_on_exit and isinstance(exc, CommandFailedError):
                return f"{exc.command} returned {exc.result}"
            return connection_problem(exc)

        def bad_result(result: Any) -> str | None:
            return f"returned {result}" if self.retry_on_exit and result != 0 else None

        def before_retry(number: int, total: int, why: str, delay: float) -> None:
            self._errors = []
            self._note(f"attempt {number}/{total}")
            self._retry_line("", number, total, why, delay, self.verbose)
            forget_failure(self.node)

        result, _ = await with_retries(self._run_commands, retries=self.retries,
                                       bad_result=bad_result, bad_exception=bad_exception,
                                       before_retry=before_retry)
        return result

    def _note(self, attempt: str) -> None:
        """Keep the latest attempt line of its kind (a job's, or command [i]'s)."""
        kind = attempt.split("attempt")[0]
        self.attempts = [a for a in self.attempts if a.split("attempt")[0] != kind]
        self.attempts.append(attempt)

    async def _run_command(self, index: int, cmd: AbstractCommand) -> tuple[Any, int]:
        tries = 0

        async def attempt() -> Any:
            nonlocal tries
            tries += 1
            bus = events.emitting()
            if bus is None:
                return await cmd.co_run(self.node)
            # told here rather than in a coroutine around co_run(): each await in
            # the command passes through every coroutine between it and the task
            told = self._command_started(bus, index, cmd, tries)
            try:
                result = await cmd.co_run(self.node)
            except BaseException as exc:
                self._command_ended(bus, told, cmd, None, exc)
                raise
            self._command_ended(bus, told, cmd, result, None)
            return result

        if not cmd.retries:
            return await attempt(), 1

        def bad_result(result: Any) -> str | None:
            return (f"returned {result}" if cmd.retry_on_exit and not cmd.allows(result)
                    else None)

        def before_retry(number: int, total: int, why: str, delay: float) -> None:
            self._note(f"[{index}] attempt {number}/{total}")
            self._retry_line(f"[{index}] {cmd.get_label_line()}: ", number, total, why, delay,
                             cmd.verbose)
            forget_failure(self.node)

        return await with_retries(attempt, retries=cmd.retries, bad_result=bad_result,
                                  bad_exception=connection_problem, before_retry=before_retry)

    def _command_started(self, bus: events.Bus, index: int, cmd: AbstractCommand,
                         attempt: int) -> events.CommandStarted:
        """Tell the run's subscribers that ``cmd`` starts; what they were told."""
        told = events.CommandStarted(job=self, node=str(self.node.hostname), index=index,
                                     command=cmd.get_label_line(), attempt=attempt)
        bus.emit(told)
        if bus.output:
            cmd.events = (self, index, bus.emit)
        return told

    def _command_ended(self, bus: events.Bus, told: events.CommandStarted,
                       cmd: AbstractCommand, result: Any, exc: BaseException | None) -> None:
        """Tell the run's subscribers how the command ``told`` about ended."""
        cmd.events = None
        status, why = None, None
        if isinstance(exc, asyncio.CancelledError):
            outcome, why = "cancelled", "cancelled"
        elif exc is not None:
            outcome, why = ("timeout" if isinstance(exc, TimeoutError) else "failed"), reason(exc)
        else:
            status = result if isinstance(result, (int, str)) else None
            if cmd.allows(result):
                outcome = "ok"
            else:
                outcome = "failed"
                why = f"exit {result}" if isinstance(result, int) else f"{result}"
        now = time.time()
        bus.emit(events.CommandEnded(job=self, node=told.node, index=told.index,
                                     command=told.command, outcome=outcome, status=status,
                                     reason=why, duration=now - told.time,
                                     attempt=told.attempt, time=now))

    async def _run_commands(self) -> Any:
        last_failure: Any = 0
        for index, cmd in enumerate(self.commands):
            start = time.monotonic()
            result, number = await self._run_command(index, cmd)
            if cmd.allows(result):
                continue
            label = cmd.get_label_line()
            attempt = f"{number}/{cmd.retries + 1}" if cmd.retries else None
            if self.is_critical():
                self._errors.append(f"!Crit![{index}]:{label}->{result}")
                raise CommandFailedError(
                    node=str(self.node), command=label, result=result,
                    duration=time.monotonic() - start, stderr_tail=cmd.stderr_tail,
                    attempt=attempt)
            self._errors.append(f"Ignr[{index}]:{label}->{result}")
            last_failure = result
        return last_failure

    def close(self) -> None:
        """Drop the node's connection at once, unless ``keep_connection``; works
        inside a running event loop or outside one."""
        if self.keep_connection:
            return
        abort = getattr(self.node, "abort", None)  # a LocalNode holds nothing
        if callable(abort):
            abort()

    async def co_close(self) -> None:
        """Close the node's connection politely, unless ``keep_connection``."""
        if not self.keep_connection:
            await self.node.close()

    def failure_lines(self, exc: BaseException) -> list[str] | None:
        """apssh's own errors are expected failures: shown in a few lines, no traceback."""
        lines = super().failure_lines(exc)
        if lines is None and isinstance(exc, ApsshError):
            lines = [f"{type(exc).__name__}: {exc}"]
        if lines is not None and self.attempts:
            lines = [*lines, "after " + ", ".join(self.attempts)]
        return lines

    def repr_result(self) -> str:
        attempts = "".join(f" - {a}" for a in self.attempts)
        if self.raised_exception():
            return super().repr_result() + attempts
        if self._errors:
            return " - ".join(self._errors) + attempts
        return ("OK" + attempts) if self.is_done() else ""

    def text_label(self) -> str:
        first = self.commands[0].get_label_line() if self.commands else "no command"
        more = f".. + {len(self.commands) - 1}" if len(self.commands) > 1 else ""
        return first + more

    def graph_label(self) -> str:
        user_host = self.node.display_name()
        labels = [cmd.get_label_line() for cmd in self.commands]
        return f"{self.repr_id()}: {user_host}\n" + "\n".join(lab for lab in labels if lab)

    def details(self) -> str:
        return self.graph_label()


class SshJobScript(SshJob):
    """The seed's name: run a local script on the node (``RunScript``)."""

    def __init__(self, node: Node, script: str, *args: Any,
                 **kwds: Any) -> None:
        from .commands import RunScript

        super().__init__(node, command=RunScript(script, *args), **kwds)


class SshJobCollector(SshJob):
    """The seed's name: retrieve files from the node (``Pull``)."""

    def __init__(self, node: Node, remotepaths: Any, localpath: Any,
                 **kwds: Any) -> None:
        from .commands import Pull

        pull_kwds = {k: kwds.pop(k) for k in ("recurse", "preserve") if k in kwds}
        super().__init__(node, command=Pull(remotepaths, localpath, **pull_kwds), **kwds)
