"""What the command-line tools tell after a run: per-host outcomes, the summary,
the exit code and the ``--mark`` files.

What they show while running (formatters, progress) is ``output.py``'s job.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..names import fold, path_in
from .errors import FAILED, INTERRUPTED, UNREACHABLE, host_code, result_code
from .targets import Target


@dataclass
class Outcome:
    """How one host ended: ``code`` 0 for success; ``reason`` says why not."""

    target: Target
    code: int
    reason: str | None = None
    unreachable: bool = False
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Whether the host succeeded."""
        return self.code == 0


def outcome_of(target: Target, job: Any) -> Outcome:
    """The outcome of ``job`` (an SshJob, not critical) run on ``target``; its code
    comes from the table in ``errors.py``."""
    from ..errors import CommandTimeoutError, ConnectError, CopyError, SudoError, reason

    if not job.is_done():
        return Outcome(target, INTERRUPTED, "interrupted", interrupted=True)
    exc = job.raised_exception()
    if exc is not None:
        if isinstance(exc, CommandTimeoutError):
            why = f"timed out after {exc.timeout:g}s"
        elif isinstance(exc, SudoError):  # its line, without the node the outcome names
            why = f"sudo -n -u {exc.user}: {exc.reason}: {exc.command}"
        elif isinstance(exc, CopyError):
            why = f"{exc.copy}: {exc.reason}"
        else:
            why = reason(exc)
        code = host_code(exc)
        return Outcome(target, code, why, unreachable=isinstance(exc, ConnectError))
    result = job.result()
    code = result_code(result)
    if code == 0:
        return Outcome(target, 0)
    if isinstance(result, str):
        return Outcome(target, code, f"killed by signal {result}")
    if result is None:
        return Outcome(target, code, "no exit status (connection lost?)", unreachable=True)
    return Outcome(target, code, f"exit {result}")


def exit_code(outcomes: Iterable[Outcome], *, copies: bool = False) -> int:
    """0 when all succeeded; 255 when a host was unreachable; else the largest
    exit code (``copies``: 1); see the table in ``errors.py``. (How a stopped run
    ends is the caller's: ``errors.stop_code``.)"""
    outcomes = list(outcomes)
    if any(o.interrupted for o in outcomes):
        return INTERRUPTED
    if any(o.unreachable for o in outcomes):
        return UNREACHABLE
    worst = max((o.code for o in outcomes), default=0)
    if copies and worst:
        return FAILED
    return min(worst, UNREACHABLE)


def summary(outcomes: Iterable[Outcome]) -> str:
    """``37 ok, 2 failed: fit[12,30]`` (and the interrupted hosts, if any)."""
    outcomes = list(outcomes)
    ok = sum(1 for o in outcomes if o.ok)
    failed = [o.target.host for o in outcomes if not o.ok and not o.interrupted]
    stopped = [o.target.host for o in outcomes if o.interrupted]
    text = f"{ok} ok, {len(failed)} failed"
    if failed:
        text += f": {fold(failed)}"
    if stopped:
        text += f", {len(stopped)} interrupted: {fold(stopped)}"
    return text


def report(prog: str, outcomes: list[Outcome], stream: TextIO | None = None) -> None:
    """One line per failed host, then the summary line, on stderr."""
    stream = stream or sys.stderr
    for outcome in outcomes:
        if not outcome.ok and not outcome.interrupted:
            stream.write(f"{prog}: {outcome.target}: {outcome.reason}\n")
    stream.write(f"{prog}: {summary(outcomes)}\n")
    stream.flush()


def write_marks(run_dir: Path, outcomes: Iterable[Outcome]) -> None:
    """``run_dir/0ok/<host>`` (containing 0) and ``run_dir/1failed/<host>``
    (the exit code, or None when unreachable): directories that are targets."""
    for sub in ("0ok", "1failed"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    for outcome in outcomes:
        if outcome.interrupted:
            continue
        content = "None" if outcome.unreachable else str(outcome.code)
        sub = "0ok" if outcome.ok else "1failed"
        path_in(run_dir / sub, outcome.target.host).write_text(content + "\n")
