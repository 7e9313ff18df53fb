"""Retries with back-off, for a command (``retries=`` on Run, RunScript,
RunString) or a whole SshJob (``SshJob(retries=)``).

An attempt is tried again when it fails to reach its node (connection refused,
timed out, lost, or its gateway unreachable: what a reboot or a busy sshd gives)
and, when asked (``retry_on_exit=True``), when it returns a result that is not
allowed. Other failures (authentication, host key, sudo refusing, a missing
file) are not retried: trying again would fail the same way.

Between attempts the caller waits ``BACKOFF[n]`` seconds (the last entry once the
schedule is used up): a small fixed schedule, not a growing one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import (
    ConnectionLostError,
    ConnectRefusedError,
    ConnectTimeoutError,
    GatewayError,
    reason,
)

#: seconds to wait before the 2nd, 3rd, 4th... attempt
BACKOFF: tuple[float, ...] = (1.0, 2.0, 5.0)

#: connection failures worth another attempt
RETRYABLE = (ConnectRefusedError, ConnectTimeoutError, ConnectionLostError, GatewayError)


def check_retries(retries: Any) -> int:
    """``retries`` as a count (0: a single attempt)."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries: expected a number >= 0, got {retries!r}")
    return retries


def backoff(failed: int) -> float:
    """The wait after the ``failed``-th failed attempt (1-based)."""
    if not BACKOFF:
        return 0.0
    return BACKOFF[min(failed, len(BACKOFF)) - 1]


def retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is a connection failure another attempt may overcome."""
    return isinstance(exc, RETRYABLE)


async def with_retries(attempt: Callable[[], Awaitable[Any]], *, retries: int,
                       bad_result: Callable[[Any], str | None],
                       bad_exception: Callable[[BaseException], str | None],
                       before_retry: Callable[[int, int, str, float], None]) -> tuple[Any, int]:
    """Run ``attempt()`` up to ``retries + 1`` times; returns its last result and
    the number of the attempt that gave it (1-based).

    ``bad_result(result)`` says why a result deserves another attempt (None: it
    does not); ``bad_exception(exc)`` the same for an exception (None: raised at
    once). The last attempt's result or exception is the outcome. Before each
    new attempt, ``before_retry(number, total, why, delay)`` is told, then the
    back-off is waited.
    """
    total = retries + 1
    number = 1
    while True:
        why: str | None
        try:
            result = await attempt()
        except Exception as exc:
            why = bad_exception(exc)
            if why is None or number >= total:
                raise
        else:
            why = bad_result(result)
            if why is None or number >= total:
                return result, number
        delay = backoff(number)
        number += 1
        before_retry(number, total, why, delay)
        await asyncio.sleep(delay)


def connection_problem(exc: BaseException) -> str | None:
    """Why a connection failure is worth another attempt, else None."""
    return reason(exc) if retryable(exc) else None


def forget_failure(node: Any) -> None:
    """Let ``node`` try to connect again: a failed connection is otherwise
    remembered (and raised at once) until the run ends."""
    forget = getattr(node, "forget_failure", None)
    if callable(forget):
        forget()
