"""``SshJob.when(pattern)``: a readiness fired by the first matching output line.

The job's commands hand their output to a ``WatchingFormatter`` (a ``TailFormatter``
that also looks at each line); the first line of the watched stream that matches
fires the readiness with the pattern's named groups, which also go into
``variables`` (an ``apssh.Variables``) when one is given, for ``Deferred`` commands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from asynciojobs import AbstractJob, Readiness

from .formatters import EXTENDED_DATA_STDERR, Formatter, TailFormatter

STREAMS = ("stdout", "stderr", "both")


class OutputReadiness(Readiness):
    """Fired by the first output line of ``job`` that matches ``pattern``.

    ``stream`` is ``"stdout"``, ``"stderr"`` or ``"both"``; ``match`` is the
    ``re.Match`` once fired, ``matched`` its named groups.
    """

    def __init__(self, job: AbstractJob, pattern: str | re.Pattern[str],
                 timeout: float | None = None, stream: str = "stdout",
                 variables: dict[str, Any] | None = None) -> None:
        if stream not in STREAMS:
            raise ValueError(f"when(): stream must be one of {STREAMS}, got {stream!r}")
        self.regex = re.compile(pattern)
        super().__init__(job, self.regex.pattern, timeout)
        self.stream = stream
        self.match: re.Match[str] | None = None
        if variables is not None:
            def store(values: Mapping[str, Any]) -> None:
                variables.update(values)
            self.on_fire.append(store)

    def wants(self, datatype: int | None) -> bool:
        """Whether lines of ``datatype`` are watched."""
        if self.stream == "both":
            return True
        return (datatype == EXTENDED_DATA_STDERR) == (self.stream == "stderr")

    def feed(self, line: str, datatype: int | None) -> None:
        """Look at one output line; fire on the first match."""
        if self.fired or not self.wants(datatype):
            return
        match = self.regex.search(line.rstrip("\n"))
        if match is not None:
            self.match = match
            self.fire(match.groupdict())


class WatchingFormatter(TailFormatter):
    """A ``TailFormatter`` that also hands each output line to readiness watchers."""

    def __init__(self, inner: Formatter, watchers: list[OutputReadiness]) -> None:
        super().__init__(inner)
        self.watchers = watchers
        self._partial: dict[int | None, str] = {}

    def _watch(self, text: str, datatype: int | None) -> None:
        text = self._partial.pop(datatype, "") + text
        *lines, rest = text.split("\n")
        if rest:
            self._partial[datatype] = rest
        for line in lines:
            for watcher in self.watchers:
                watcher.feed(line, datatype)

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        self._watch(raw.decode("utf-8", errors="replace"), datatype)
        super().data(raw, datatype, hostname)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        self._watch(line if line.endswith("\n") else line + "\n", datatype)
        super().line(line, datatype, hostname)


def watching_formatter(inner: Formatter, watchers: list[OutputReadiness] | None
                       ) -> TailFormatter:
    """The formatter a command runs with: watching when its job has watchers."""
    return WatchingFormatter(inner, watchers) if watchers else TailFormatter(inner)
