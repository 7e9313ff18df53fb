"""Why a connection failed, as one ``ConnectError`` subclass with a one-line reason.

The same failure reads the same on asyncio's event loop and on uvloop's: a name
that does not resolve is ``HostUnknownError`` (``cannot resolve host name``)
whether it comes as ``socket.gaierror`` or as an ``OSError`` carrying a
``getaddrinfo`` code (glibc's ``EAI_*``, or libuv's ``UV_EAI_*``).
"""

from __future__ import annotations

import socket

from ._asyncssh import asyncssh
from .errors import (
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    ConnectRefusedError,
    ConnectTimeoutError,
    HostKeyError,
    HostUnknownError,
    reason,
)

#: getaddrinfo's error codes, negative in glibc (never an errno)
_EAI_CODES = frozenset(getattr(socket, name) for name in dir(socket)
                       if name.startswith("EAI_") and isinstance(getattr(socket, name), int))
#: libuv's UV_EAI_* codes (UV__EAI_ADDRFAMILY ... UV__EAI_SOCKTYPE), as uvloop may give them
_UV_EAI_CODES = frozenset(range(-3014, -3000 + 1))


def is_resolution_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says a host name could not be resolved."""
    if isinstance(exc, socket.gaierror):
        return True
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno < 0:
        return exc.errno in _EAI_CODES or exc.errno in _UV_EAI_CODES
    return False


def classify(exc: Exception, node: str, timeout: float,
             host_key_problem: str | None = None, accept_hint: str | None = None
             ) -> ConnectError:
    """The ``ConnectError`` that says why connecting to ``node`` failed with ``exc``;
    ``host_key_problem`` is ``unknown`` or ``changed`` when the host key was refused,
    ``accept_hint`` how to accept an unknown one (appended, on the same line)."""
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, TimeoutError):
        return ConnectTimeoutError(node, f"timed out after {timeout}s")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectRefusedError(node)
    if is_resolution_failure(exc):
        return HostUnknownError(node)
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthenticationError(node)
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        if host_key_problem == "changed":
            return HostKeyError(node, "host key mismatch: the key differs from known_hosts")
        unknown = "host key unknown: not in known_hosts"
        return HostKeyError(node, f"{unknown}; {accept_hint}" if accept_hint else unknown)
    if isinstance(exc, asyncssh.ChannelOpenError):
        return ConnectError(node, f"cannot open channel through the gateway: {exc.reason}")
    if isinstance(exc, asyncssh.ConnectionLost | ConnectionResetError | BrokenPipeError):
        return ConnectionLostError(node)
    if isinstance(exc, OSError):
        return ConnectError(node, exc.strerror or str(exc))
    return ConnectError(node, reason(exc))
