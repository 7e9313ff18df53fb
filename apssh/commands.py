"""Commands an SshJob runs on its node: Run, RunScript, RunString (and the copies,
Push and Pull, in ``apssh.filecopy``, also importable from here as in 0.27).

Each returns a result: the exit status (or signal name) for the Run family, 0 for
a completed copy. ``allowed_exits`` lists other results that count as success
(ints and signal names, e.g. ``[1, "TERM"]``); 0 always does. A command given a
``capture`` stores its stdout into variables for later ``Deferred`` commands.

The Run family also takes ``env`` (variables exported for the command, over the
node's ``env``), ``sudo`` (``True`` or a user name: run through ``sudo -n``;
``SudoError`` when sudo refuses), ``retries`` and ``retry_on_exit`` (see
``apssh.retry``), ``stdout`` and ``stderr`` (a copy of the output into files
named after the node, or to a callable: see ``apssh.outputs``).

A command runs on any node (``apssh.node.Node``) through one method,
``co_run(node)``: the differences between kinds of node are the node's
(``node.run()``, ``node.workdir()``). ``co_run_remote`` and ``co_run_local`` are
0.27's names, kept: a subclass that defines them (and not ``co_run``) still works.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from .deferred import Capture
from .errors import MissingFileError, SudoError
from .formatters import CaptureFormatter, Formatter, TailFormatter
from .outputs import EventTee, OutputTarget, check_target, teeing
from .retry import check_retries
from .shellwrap import check_env, check_sudo, merged_env, sudo_problem, wrap


class _Discard(Formatter):
    """A formatter that drops every line (``ignore_outputs``)."""


class AbstractCommand:
    """What every command has: a label, allowed exits, capture and verbosity."""

    #: readiness watchers of the job running this command (apssh/readiness.py)
    watchers: list[Any] | None = None
    #: the label of the job running this command (``{label}`` in output paths)
    job_label: str | None = None
    #: (job, index, emit) while a job runs this command for a run that wants its
    #: output as events
    events: tuple[Any, int, Any] | None = None

    def __init__(self, *, label: str | None = None, allowed_exits: Any = None,
                 verbose: bool = False, capture: Capture | None = None,
                 timeout: float | None = None, env: dict[str, Any] | None = None,
                 sudo: bool | str | None = None, retries: int = 0,
                 retry_on_exit: bool = False, stdout: OutputTarget | None = None,
                 stderr: OutputTarget | None = None) -> None:
        self.label = label
        #: where a copy of the output goes, besides the formatter (``apssh.outputs``)
        self.stdout = check_target("stdout", stdout)
        self.stderr = check_target("stderr", stderr)
        self.env = check_env(env)
        self.sudo = check_sudo(sudo)
        self.retries = check_retries(retries)
        self.retry_on_exit = retry_on_exit
        self.allowed_exits = set(allowed_exits or ())
        self.verbose = verbose
        self.capture = capture
        self.timeout = timeout
        self.node: Any = None
        #: the last stderr lines of the last run (for a failure report)
        self.stderr_tail: list[str] = []

    def label_line(self) -> str | None:
        """The label to show when none was given."""
        return None

    def get_label_line(self) -> str:
        """The label, else ``label_line()``."""
        if self.label is not None:
            return self.label
        return self.label_line() or f"NO-LABEL-LINE (class {type(self).__name__})"

    def allows(self, result: Any) -> bool:
        """Whether ``result`` counts as success."""
        return result == 0 or result in self.allowed_exits

    def _line(self, node: Any, command: str) -> str:
        """``command`` as sent: the node's and the command's ``env`` exported,
        through ``sudo -n`` when asked."""
        return wrap(command, env=merged_env(getattr(node, "env", None), self.env),
                    sudo=self.sudo)

    def _check_sudo(self, node: Any, command: str, result: Any) -> None:
        """Raise ``SudoError`` when sudo refused to run ``command`` (``result``)."""
        if not self.sudo:
            return
        problem = sudo_problem(result, self.stderr_tail)
        if problem is not None:
            user = "root" if self.sudo is True else str(self.sudo)
            raise SudoError(str(node), command, user, problem)

    def _options(self) -> dict[str, Any]:
        """The keywords a copy of this command (``Run + more``) takes over."""
        return {"env": self.env, "sudo": self.sudo, "retries": self.retries,
                "retry_on_exit": self.retry_on_exit, "stdout": self.stdout,
                "stderr": self.stderr}

    def _verbose_message(self, node: Any, message: str) -> None:
        if self.verbose:
            node.formatter.stderr_line(message + "\n", node.hostname)

    async def co_run(self, node: Any) -> Any:
        """Run on ``node`` (any ``apssh.node.Node``); returns the result.

        Commands define this one. A subclass written for 0.27, that defines
        ``co_run_remote`` (and maybe ``co_run_local``) instead, is run through them:
        ``co_run_local`` on a ``LocalNode`` when it defines one, else ``co_run_remote``.
        """
        cls = type(self)
        if cls.co_run_local is not AbstractCommand.co_run_local and _is_local(node):
            return await self.co_run_local(node)
        if cls.co_run_remote is AbstractCommand.co_run_remote:
            raise NotImplementedError(f"{cls.__name__} defines no co_run()")
        return await self.co_run_remote(node)

    async def co_run_remote(self, node: Any) -> Any:
        """0.27's name: run on an ssh node (``co_run()``)."""
        if type(self).co_run is AbstractCommand.co_run:
            raise NotImplementedError(f"{type(self).__name__} defines no co_run()")
        return await self.co_run(node)

    async def co_run_local(self, node: Any) -> Any:
        """0.27's name: run on a ``LocalNode`` (``co_run_remote()``, as in 0.27)."""
        return await self.co_run_remote(node)

    async def _run_line(self, node: Any, command: str, *, x11: bool = False,
                        stdin: bytes | None = None) -> Any:
        """Run the shell line ``command`` on ``node`` (with ``env`` and ``sudo``): its
        output to the formatter chain and to ``stdout``/``stderr``; returns the result
        after storing the capture and checking for sudo's refusal."""
        formatter = self._formatter(node)
        label = self.label if self.label is not None else self.job_label
        with teeing(formatter, {"stdout": self.stdout, "stderr": self.stderr}, node,
                    label) as output:
            if self.events is not None:
                output = EventTee(output, *self.events, str(node.hostname))
            result = await node.run(self._line(node, command), x11_forwarding=x11,
                                    timeout=self.timeout, formatter=output, stdin=stdin)
        self._captured(formatter)
        self._check_sudo(node, command, result)
        return result

    def _output(self, node: Any) -> Formatter:
        """Where this command's output lines go: a capture, or the node's formatter."""
        return CaptureFormatter(verbose=False) if self.capture is not None else node.formatter

    def _formatter(self, node: Any) -> TailFormatter:
        """The formatter given to ``node.run()``: ``_output()``, keeping a tail of stderr."""
        self.stderr_tail = []
        from .readiness import watching_formatter
        return watching_formatter(self._output(node), self.watchers)

    def _captured(self, formatter: TailFormatter) -> None:
        """After a run: store the capture, and keep the stderr tail."""
        self.stderr_tail = list(formatter.tail)
        capture, inner = self.capture, formatter.inner
        if capture is not None and isinstance(inner, CaptureFormatter):
            capture.store(inner.get_capture_bytes() if capture.binary else inner.get_capture())


class Run(AbstractCommand):
    """A shell command: the arguments joined with spaces, read when it runs (so a
    ``Deferred`` argument expands late). ``x11`` forwards X11; ``ignore_outputs``
    drops the output; ``timeout`` bounds the command (then it is killed); ``stdin``
    (bytes) is fed to the command, then closed (``b""``: an empty input, as
    ``ssh -n`` gives); by default the input stays open, as in apssh 0.27."""

    def __init__(self, *argv: Any, verbose: bool = False, x11: bool = False,
                 ignore_outputs: bool = False, label: str | None = None,
                 allowed_exits: Any = None, capture: Capture | None = None,
                 timeout: float | None = None, stdin: bytes | None = None,
                 env: dict[str, Any] | None = None, sudo: bool | str | None = None,
                 retries: int = 0, retry_on_exit: bool = False,
                 stdout: OutputTarget | None = None,
                 stderr: OutputTarget | None = None) -> None:
        super().__init__(label=label, allowed_exits=allowed_exits, verbose=verbose,
                         capture=capture, timeout=timeout, env=env, sudo=sudo,
                         retries=retries, retry_on_exit=retry_on_exit, stdout=stdout,
                         stderr=stderr)
        self.argv = argv
        self.x11 = x11
        self.ignore_outputs = ignore_outputs
        self.stdin = stdin

    #: the arguments ``_joined`` was made of (see ``command()``)
    _joined_of: tuple[Any, ...] | None = None
    _joined = ""

    def command(self) -> str:
        """The command line, as it would run now. Listings, events and the run
        each ask for it: it is kept once made from a tuple of strings, which
        cannot change (a ``Deferred`` argument is read again each time)."""
        argv = self.argv
        if argv is self._joined_of:
            return self._joined
        line = " ".join(map(str, argv))
        if type(argv) is tuple and all(type(arg) is str for arg in argv):
            self._joined_of, self._joined = argv, line
        return line

    def __str__(self) -> str:
        return self.command()

    def __add__(self, more: Any) -> Run:
        """A new Run with ``more`` appended to the command line (0.27 lost it)."""
        return Run(*self.argv, more, verbose=self.verbose, x11=self.x11,
                   ignore_outputs=self.ignore_outputs, label=self.label,
                   allowed_exits=self.allowed_exits, capture=self.capture, timeout=self.timeout,
                   stdin=self.stdin, **self._options())

    def label_line(self) -> str:
        return self.command()

    def _output(self, node: Any) -> Formatter:
        if self.ignore_outputs:
            return _Discard()
        return super()._output(node)

    async def co_run(self, node: Any) -> Any:
        command = self.command()
        self._verbose_message(node, f"Run: -> {command}")
        result = await self._run_line(node, command, x11=self.x11, stdin=self.stdin)
        self._verbose_message(node, f"Run: {result} <- {command}")
        return result


class _RunUploaded(AbstractCommand):
    """A script uploaded into a directory of its own, run, then removed."""

    def __init__(self, *args: Any, includes: Any = None, x11: bool = False,
                 stdin: bytes | None = None, **kwds: Any) -> None:
        super().__init__(**kwds)
        self.args = args
        self.includes = [Path(p) for p in (includes or ())]
        self.x11 = x11
        self.stdin = stdin

    def script_name(self) -> str:
        """The script's file name on the node."""
        raise NotImplementedError

    async def install(self, node: Any, path: str) -> None:
        """Put the script at ``path`` on the node, executable."""
        raise NotImplementedError

    def arguments(self) -> str:
        return " ".join(map(str, self.args))

    def local_files(self) -> list[tuple[str, Path]]:
        """(what, path) of each local file this command uploads: read when it runs,
        so that a command can be built (listed, drawn) before its files exist."""
        return [("include", path) for path in self.includes]

    def check_files(self, node: Any) -> None:
        """Raise ``MissingFileError`` for the first local file that is missing."""
        for what, path in self.local_files():
            if not path.exists():
                raise MissingFileError(str(node), self.get_label_line(), what, path)

    def _shared(self, node: Any) -> bool:
        """Whether the script runs as another user than the node's (``sudo -u``),
        who must be able to read it (root reads anything)."""
        return isinstance(self.sudo, str) and self.sudo not in (
            "root", getattr(node, "username", None))

    async def co_run(self, node: Any) -> Any:
        self.check_files(node)
        shared = self._shared(node)
        async with node.workdir(shared=shared) as workdir:
            script = f"{workdir}/{self.script_name()}"
            await self.install(node, script)
            if self.includes:
                await node.put_file_s([str(p) for p in self.includes], workdir + "/",
                                      follow_symlinks=True)
            if shared:  # readable by the user sudo runs it as, whatever the umask
                await node.chmod(script, 0o755)
                for include in self.includes:
                    mode = include.stat().st_mode & 0o777
                    await node.chmod(f"{workdir}/{include.name}", mode | 0o444)
            command = f"{shlex.quote(script)} {self.arguments()}".strip()
            self._verbose_message(node, f"{type(self).__name__}: -> {command}")
            return await self._run_line(node, command, x11=self.x11, stdin=self.stdin)


class RunScript(_RunUploaded):
    """A local script, uploaded (with its ``includes``) and run with ``args``;
    ``stdin`` as for ``Run``. The files are read when the command runs, as in 0.27:
    one missing then fails the command (``MissingFileError``). ``options``: ``env``,
    ``sudo``, ``retries``, ``retry_on_exit`` as for ``Run``."""

    def __init__(self, local_script: str | Path, *args: Any, label: str | None = None,
                 allowed_exits: Any = None, includes: Any = None, x11: bool = False,
                 verbose: bool = False, capture: Capture | None = None,
                 timeout: float | None = None, stdin: bytes | None = None,
                 **options: Any) -> None:
        self.local_script = Path(local_script)
        super().__init__(*args, includes=includes, x11=x11, label=label,
                         allowed_exits=allowed_exits, verbose=verbose, capture=capture,
                         timeout=timeout, stdin=stdin, **options)

    def script_name(self) -> str:
        return self.local_script.name

    def local_files(self) -> list[tuple[str, Path]]:
        return [("script", self.local_script), *super().local_files()]

    def label_line(self) -> str:
        return f"RunScript: {self.local_script.name} {self.arguments()}".strip()

    async def install(self, node: Any, path: str) -> None:
        await node.put_file_s(str(self.local_script), path, follow_symlinks=True)
        await node.chmod(path, 0o755)


class RunString(_RunUploaded):
    """A script given as a string (``#!`` line included), uploaded and run with ``args``;
    ``options`` as for ``RunScript``."""

    def __init__(self, script_body: str, *args: Any, label: str | None = None,
                 allowed_exits: Any = None, includes: Any = None, x11: bool = False,
                 remote_name: str | None = None, verbose: bool = False,
                 capture: Capture | None = None, timeout: float | None = None,
                 stdin: bytes | None = None, **options: Any) -> None:
        self.script_body = script_body
        self.remote_name = os.path.basename(remote_name) if remote_name else None
        super().__init__(*args, includes=includes, x11=x11, label=label,
                         allowed_exits=allowed_exits, verbose=verbose, capture=capture,
                         timeout=timeout, stdin=stdin, **options)

    def script_name(self) -> str:
        return self.remote_name or "script"

    def label_line(self) -> str:
        first = next((line for line in str(self.script_body).splitlines()
                      if line.strip() and not line.lstrip().startswith("#")), "")
        return f"RunString: {first[:15]}... {self.arguments()}".strip()

    async def install(self, node: Any, path: str) -> None:
        await node.put_string_script(str(self.script_body), path)


def _is_local(node: Any) -> bool:
    """Whether ``node`` is a ``LocalNode``: only for 0.27's ``co_run_local``."""
    from .nodes import LocalNode

    return isinstance(node, LocalNode)


def __getattr__(name: str) -> Any:
    """0.27's ``apssh.commands.Push`` and ``Pull``: they live in ``apssh.filecopy``."""
    if name in ("Push", "Pull"):
        from . import filecopy

        return getattr(filecopy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
