"""The command-line tools' errors, and the one table from outcome to exit code.

Every exit code of ``apssh``, ``appush``, ``appull`` and ``nepi-ng`` comes from
here (docs/cli.md prints the same table):

=====  ==================================================================
code   when
=====  ==================================================================
0      every host (every job) succeeded
1      a copy failed (``appush``/``appull``), a scenario failed, or the
       results could not all be kept (``--mark`` files)
2      bad input: an option, a target, a name, a key, a scenario; nothing ran
N      ``apssh``: the largest exit code of the remote commands (1-123)
124    a command was stopped by ``--command-timeout`` (as timeout(1))
128+N  a remote command was killed by signal N; or this process got signal N
       (SIGTERM 143, SIGHUP 129): remote commands stopped, summary printed
130    Ctrl-C (SIGINT): remote commands stopped, summary printed
141    standard output closed (``| head``): remote commands stopped
255    a host could not be reached (as OpenSSH's ``ssh``)
=====  ==================================================================

When several apply, the first of: interrupted (130, 128+N, 141), unreachable
(255), then the largest per-host code.
"""

from __future__ import annotations

import signal
import sys
from typing import TextIO

from ..errors import ApsshError, CommandTimeoutError, ConnectError

OK = 0
FAILED = 1
USAGE = 2
TIMED_OUT = 124
INTERRUPTED = 128 + signal.SIGINT
PIPE_CLOSED = 128 + signal.SIGPIPE
UNREACHABLE = 255

#: errors that are bad input when raised before anything runs: one line, exit 2
BAD_INPUT: tuple[type[Exception], ...] = (ApsshError, ValueError, OSError)

#: how one host's job failed -> its code: the first class that matches wins
HOST_ERRORS: tuple[tuple[type[BaseException], int], ...] = (
    (ConnectError, UNREACHABLE),
    (CommandTimeoutError, TIMED_OUT),
    (BaseException, FAILED),  # a copy, a missing script, anything else
)


class UsageError(ApsshError):
    """Bad input: printed as one line, exit code 2."""


def host_code(exc: BaseException) -> int:
    """The code of a host whose job raised ``exc`` (``HOST_ERRORS``)."""
    return next(code for kind, code in HOST_ERRORS if isinstance(exc, kind))


def result_code(result: object) -> int:
    """The code of a host whose command ended with ``result``: its exit status, 128+N
    for a signal's name, 255 for no status at all."""
    if isinstance(result, int):
        return result
    if isinstance(result, str):
        return signal_code(result)
    return UNREACHABLE


def signal_code(name_or_number: str | int) -> int:
    """128 + the signal's number (``"TERM"`` or 15 -> 143); 255 for an unknown name."""
    if isinstance(name_or_number, int):
        return 128 + name_or_number
    try:
        return 128 + signal.Signals[f"SIG{name_or_number.removeprefix('SIG')}"].value
    except KeyError:
        return UNREACHABLE


def stop_code(exc: BaseException) -> int:
    """The exit code after the run was stopped by ``exc``: a signal
    (``asynciojobs.SignalExit``: 128+N), else Ctrl-C (130). (A closed standard
    output, 141, is told by ``PipeWatch``.)"""
    if isinstance(exc, SystemExit) and isinstance(exc.code, int):
        return exc.code
    return INTERRUPTED


def error_line(prog: str, exc: BaseException, stream: TextIO | None = None) -> None:
    """Print ``exc`` as one line naming the culprit (a file, a host, an option)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    print(f"{prog}: {text}", file=stream or sys.stderr)


def bad_input(prog: str, exc: BaseException, stream: TextIO | None = None) -> int:
    """Print ``exc`` as one line; the exit code of bad input."""
    error_line(prog, exc, stream)
    return USAGE
