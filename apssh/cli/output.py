"""What the command-line tools show while they run: the live formatters (lines on the
terminal, per-host files, the gathered view) and the progress line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TextIO

from ..formatters import (
    EXTENDED_DATA_STDERR,
    Formatter,
    SubdirFormatter,
    TerminalFormatter,
    VerboseFormatter,
    write_to,
)
from ..names import fold
from ..pacing import waiting_handshakes
from .pipe import drop_stream
from .targets import Target


class Progress:
    """``12 done, 1 failed, 30 running (8 waiting to connect) / 100`` redrawn on one
    terminal line (hosts waiting for a turn to connect are running, not failing)."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.done = self.failed = self.running = 0
        self.shown = False

    def started(self) -> None:
        """A host's job started."""
        self.running += 1
        self.draw()

    def finished(self, ok: bool) -> None:
        """A host's job ended (``ok``: it succeeded)."""
        self.running -= 1
        self.done += 1
        self.failed += not ok
        self.draw()

    def draw(self) -> None:
        """Redraw the line."""
        waiting = waiting_handshakes()  # hosts in line for a handshake: not failing
        self.stream.write(f"\r\x1b[K{self.done} done, {self.failed} failed, "
                          f"{self.running} running"
                          + (f" ({waiting} waiting to connect)" if waiting else "")
                          + f" / {self.total}")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the line (before other output is written)."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


class QuietFailures:
    """Connection failures are left to the final report, unless verbose."""

    verbose: bool

    def connection_lost(self, hostname: str, exc: BaseException | None,
                        username: str) -> None:
        if self.verbose:
            super().connection_lost(hostname, exc, username)  # type: ignore[misc]


class OutDirFormatter(QuietFailures, SubdirFormatter):
    """Each host's output in its own files (``-o``/``-d``), byte for byte."""


class LiveFormatter(QuietFailures, TerminalFormatter):
    """Output lines as they come (``host:line``; with ``-r``, the bytes as they
    are); the progress line is kept out of the way. ``on_stdout_closed`` is
    called (once) when standard output is found closed: the tools stop the run."""

    def __init__(self, custom_format: str = "{host}:{linenl}", *, verbose: bool = False,
                 progress: Progress | None = None,
                 on_stdout_closed: Callable[[], None] | None = None) -> None:
        super().__init__(custom_format, verbose)
        self.progress = progress
        self.on_stdout_closed = on_stdout_closed

    def write_out(self, data: str | bytes, *, stderr: bool = False, flush: bool = False) -> None:
        """Clear the progress line, then write as every formatter does."""
        if self.progress is not None:
            self.progress.clear()
        super().write_out(data, stderr=stderr, flush=flush)


class GatherFormatter(Formatter):
    """Keeps one host's stdout for the gathered view, as text for a person (a line
    longer than 64 KiB shows in pieces); stderr lines go to ``live``. With ``files``
    (``-o``/``-d`` too), stdout and stderr also go there byte for byte (and stderr
    only there)."""

    def __init__(self, live: VerboseFormatter, files: Formatter | None = None) -> None:
        super().__init__()
        self.live = live
        self.files = files
        self.chunks: list[str] = []

    def connection_made(self, hostname: str, username: str, direct: bool) -> None:
        if self.files is not None:
            self.files.connection_made(hostname, username, direct)

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        if self.files is not None:
            self.files.data(raw, datatype, hostname)
            if datatype == EXTENDED_DATA_STDERR:
                return
        super().data(raw, datatype, hostname)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        if datatype == EXTENDED_DATA_STDERR:
            self.live.line(line, datatype, hostname)
        else:
            self.chunks.append(line)

    def stderr_line(self, line: str, hostname: str | None,
                    username: str | None = None) -> None:
        self.live.stderr_line(line, hostname, username)

    def connection_lost(self, hostname: str, exc: BaseException | None,
                        username: str) -> None:
        self.live.connection_lost(hostname, exc, username)


def print_gathered(outputs: Iterable[tuple[Target, str]], stream: TextIO | None = None) -> None:
    """Each distinct output once, under the folded set of hosts that printed it
    (hosts that printed nothing are not shown). A closed standard output ends the
    view quietly (the commands are over; what is still buffered goes nowhere)."""
    stream = stream or sys.stdout
    groups: dict[str, list[str]] = {}
    for target, text in outputs:
        groups.setdefault(text, []).append(target.host)
    try:
        for text, hosts in groups.items():
            if not text:
                continue
            header = f"{fold(hosts)} ({len(hosts)})"
            rule = "-" * min(max(len(header), 15), 79)
            write_to(stream, f"{rule}\n{header}\n{rule}\n{text}")
            if not text.endswith("\n"):
                write_to(stream, "\n")
        stream.flush()
    except BrokenPipeError:
        if stream is sys.stdout:
            drop_stream()
