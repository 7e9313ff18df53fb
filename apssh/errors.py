"""The exceptions of apssh: one base class; each carries its data and builds its line.

Connection failures are classes first (refused, timeout, authentication, host
key, name resolution, gateway, lost), one-line messages second, so that a caller
can ``except`` a kind and a CLI can print ``str(exc)``.
"""

from __future__ import annotations


class ApsshError(Exception):
    """Base class of every error raised by apssh itself."""


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


class CommandFailedError(ApsshError):
    """A command of a critical SshJob returned a result that is not allowed."""

    def __init__(self, message: str, *, node: str | None = None, command: str | None = None,
                 result: object = None) -> None:
        self.node = node
        self.command = command
        self.result = result
        super().__init__(message)


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
