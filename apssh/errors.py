"""The exceptions of apssh: one base class; each carries its data and builds its line.

Connection failures are classes first (refused, timeout, authentication, host
key, name resolution, gateway, lost), one-line messages second, so that a caller
can ``except`` a kind and a CLI can print ``str(exc)``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path


class ApsshError(Exception):
    """Base class of every error raised by apssh itself."""


def reason(exc: BaseException) -> str:
    """Why ``exc`` happened, in one line: its ``reason`` when it has one (asyncssh's
    errors and ours), ``file: strerror`` for an ``OSError``, else its message's first
    line, else its class name."""
    given = getattr(exc, "reason", None)
    if given:
        text = str(given)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    else:
        text = str(exc)
    text = text.strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ConnectError(ApsshError, ConnectionError):
    """Could not reach ``node``; ``reason`` says why in a few words."""

    reason = "cannot connect"

    def __init__(self, node: str, reason: str | None = None) -> None:
        self.node = node
        if reason is not None:
            self.reason = reason
        super().__init__(f"{node}: {self.reason}")

    def __str__(self) -> str:
        return f"{self.node}: {self.reason}"


class ConnectRefusedError(ConnectError):
    """Nothing listens on the port (TCP connection refused)."""

    reason = "connection refused"


class ConnectTimeoutError(ConnectError, TimeoutError):
    """The connection (TCP, handshake and authentication) took longer than the timeout."""


class HostUnknownError(ConnectError):
    """The host name could not be resolved."""

    reason = "cannot resolve host name"


class AuthenticationError(ConnectError):
    """The server refused every key offered."""

    reason = "authentication failed"


class HostKeyError(ConnectError):
    """The server's host key is unknown, or differs from the recorded one."""


class ConnectionLostError(ConnectError):
    """The connection dropped (during the handshake, or later)."""

    reason = "connection lost"


class GatewayError(ConnectError):
    """The gateway in front of ``node`` could not be reached; ``cause`` is its error."""

    def __init__(self, node: str, cause: ConnectError) -> None:
        self.cause = cause
        super().__init__(node, f"gateway {cause.node} unreachable ({cause.reason})")


class KeyFileError(ApsshError, ValueError):
    """A private key file given explicitly cannot be used; ``reason`` says why.

    Raised instead of falling back to other keys (the agent, ``~/.ssh/id_*``)
    behind the user's back.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(path, reason)

    def __str__(self) -> str:
        return f"key {self.path}: {self.reason}"


class CommandFailedError(ApsshError):
    """A command of a critical SshJob returned a result that is not allowed.

    Carries the ``node``, the ``command`` (its label), its ``result`` (exit status
    or signal name), its ``duration`` in seconds and ``stderr_tail``, the last
    lines it wrote on stderr; builds its one-line message from them, unless one
    is given (as 0.27 did). ``attempt`` (``"3/3"``) tells a command that was retried.
    """

    def __init__(self, message: str | None = None, *, node: str | None = None,
                 command: str | None = None, result: object = None,
                 duration: float | None = None, stderr_tail: Iterable[str] = (),
                 attempt: str | None = None) -> None:
        self.node = node
        self.attempt = attempt
        self.command = command
        self.result = result
        self.duration = duration
        self.stderr_tail = list(stderr_tail)
        if message is None:
            message = f"command {command} returned {result} on node {node}"
            if duration is not None:
                message += f" after {duration:.2f}s"
            if attempt is not None:
                message += f" (attempt {attempt})"
        super().__init__(message)

    def debrief_lines(self) -> list[str]:
        """What ``debrief()`` shows instead of a traceback: the message, then the
        last lines of stderr."""
        lines = [f"{type(self).__name__}: {self}"]
        if self.stderr_tail:
            count = len(self.stderr_tail)
            lines.append(f"last {count} line{'s' if count > 1 else ''} of stderr:")
            lines.extend(f"  | {line}" for line in self.stderr_tail)
        return lines


class CopyError(ApsshError):
    """A Push or Pull failed on ``node`` (a missing file, no permission...)."""

    def __init__(self, node: str, copy: str, reason: str) -> None:
        self.node = node
        self.copy = copy
        self.reason = reason
        super().__init__(f"{node}: {copy}: {reason}")


class CommandTimeoutError(ApsshError, TimeoutError):
    """A command ran longer than its own timeout; it was killed on the node."""

    def __init__(self, node: str, command: str, timeout: float) -> None:
        self.node = node
        self.command = command
        self.timeout = timeout
        super().__init__(f"{node}: command timed out after {timeout}s: {command}")


class MissingFileError(ApsshError, FileNotFoundError):
    """A local file a command uploads (its script, an include) is missing when the
    command runs: the command fails, its job with it. ``reason`` is the one line
    the command-line tools show (``script setup.sh: no such file``)."""

    def __init__(self, node: str, command: str, what: str, path: str | Path) -> None:
        super().__init__(errno.ENOENT, os.strerror(errno.ENOENT), os.fspath(path))
        self.node = node
        self.command = command
        self.reason = f"{what} {os.fspath(path)}: no such file"

    def __str__(self) -> str:
        return f"{self.node}: {self.command}: {self.reason}"


class SudoError(ApsshError, PermissionError):
    """sudo refused to run ``command`` on ``node`` as ``user`` (``root`` for
    ``sudo=True``): it would ask for a password (``sudo -n`` never asks), or the
    user may not use sudo. ``reason`` is sudo's own words."""

    def __init__(self, node: str, command: str, user: str, reason: str) -> None:
        super().__init__(f"{node}: sudo -n -u {user}: {reason}: {command}")
        self.node = node
        self.command = command
        self.user = user
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.node}: sudo -n -u {self.user}: {self.reason}: {self.command}"


class JobTimeoutError(ApsshError, TimeoutError):
    """An SshJob ran longer than its ``timeout`` (the whole job, retries included);
    its running command was stopped on the node."""

    def __init__(self, job: str, node: str, timeout: float) -> None:
        self.job = job
        self.node = node
        self.timeout = timeout
        super().__init__(f"{node}: job {job} timed out after {timeout}s")
