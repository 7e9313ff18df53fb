"""Formatters: how the output lines and connection events of each host are shown.

A formatter receives events (connection made or lost, session started...) and
output, each tagged with the host it comes from. Output arrives as bytes through
``data()``: runs of whole lines, or pieces of a line longer than 64 KiB, or a
last line without newline (see ``apssh.lines``). Formatters that write output
where it is kept (``RawFormatter`` and any ``TerminalFormatter`` whose format is
exactly ``{linenl}``, ``SubdirFormatter``, ``CaptureFormatter``) write those
bytes unchanged; the others decode them (UTF-8, invalid bytes replaced) into
lines for a person, each ending with a newline, through ``line()``. A subclass
that overrides ``line()`` gets text lines, as before. The format keywords are
``{time}`` (``%H-%M-%S``, fixed at creation), ``{host}`` (short host name),
``{fqdn}``, ``{user}`` (``user@``), ``{line}`` (without its newline),
``{linenl}`` (with it) and ``{nl}``; ``time.strftime`` applies to the whole
format, so a literal ``%`` is written ``%%``. Host and user are centred to the
widest one seen, so columns line up.
"""

from __future__ import annotations

import re
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, TextIO

from .names import path_in

#: the datatype asyncssh gives to stderr data
EXTENDED_DATA_STDERR = 1

_KEYWORDS = re.compile(r"\{(linenl|line|nl|fqdn|host|user)\}")


def _lines_first(cls: type) -> bool:
    """Whether ``cls`` (or a class between it and the nearest ``data()``) redefines
    ``line()``: then its output must go through ``line()``, as text."""
    for klass in cls.__mro__:
        if "data" in vars(klass):
            return False
        if "line" in vars(klass):
            return True
    return False


def write_bytes(stream: TextIO, raw: bytes) -> None:
    """Write ``raw`` unchanged to the binary buffer under the text ``stream``
    (after what was written to it as text); a text-only stream gets it decoded."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(raw.decode("utf-8", errors="replace"))
        return
    stream.flush()  # text written before goes first
    buffer.write(raw)
    if getattr(stream, "line_buffering", False):  # a terminal: show it now, as text would be
        buffer.flush()


def shorten_hostname(hostname: str) -> str:
    """The first component of a host name; an IP address is kept whole."""
    first = hostname.split(".")[0]
    try:
        int(first)
    except ValueError:
        return first
    return hostname


class Formatter:
    """The base formatter: event hooks (no-ops here) and the format machinery."""

    #: whether this class redefines ``line()`` below its nearest ``data()``
    _lines_first = False

    def __init_subclass__(cls, **kwds: Any) -> None:
        super().__init_subclass__(**kwds)
        cls._lines_first = _lines_first(cls)

    def __init__(self, custom_format: str = "{linenl}") -> None:
        self.format = custom_format.replace("{time}", "%H-%M-%S")
        self._with_strftime = "%" in self.format
        self._widths = {"fqdn": 0, "host": 0, "user": 0}
        self._users: dict[str, str] = {}

    # ----- sizing
    def adapt_to_proxy(self, proxy: Any) -> None:
        """Remember a node's names, to align columns and know its user."""
        hostname = str(proxy.hostname)
        username = proxy.username or ""
        self._users[hostname] = username
        self._widths["fqdn"] = max(self._widths["fqdn"], len(hostname))
        self._widths["host"] = max(self._widths["host"], len(shorten_hostname(hostname)))
        self._widths["user"] = max(self._widths["user"], len(username) + 1 if username else 0)

    def _formatted_line(self, line: str, hostname: str | None = None,
                        username: str | None = None) -> str:
        text = time.strftime(self.format) if self._with_strftime else self.format
        if hostname is None:
            fqdn = host = user = ""
        else:
            fqdn = hostname.center(self._widths["fqdn"])
            host = shorten_hostname(hostname).center(self._widths["host"])
            if username is None:
                username = self._users.get(hostname, "")
            user = (f"{username}@" if username else "").center(self._widths["user"])
        values = {"linenl": line, "line": line.rstrip("\n"), "nl": "\n",
                  "fqdn": fqdn, "host": host, "user": user}
        # one pass: a line that contains "{host}" is printed as it is
        return _KEYWORDS.sub(lambda found: values[found.group(1)], text)

    # ----- event hooks
    def connection_made(self, hostname: str, username: str, direct: bool) -> None:
        """A connection to ``username@hostname`` is being made."""

    def connection_lost(self, hostname: str, exc: BaseException | None,
                        username: str) -> None:
        """The connection is closed; ``exc`` tells why when it was not on purpose."""

    def auth_completed(self, hostname: str, username: str) -> None:
        """Authentication succeeded."""

    def session_start(self, hostname: str, command: str) -> None:
        """A command starts."""

    def session_stop(self, hostname: str, command: str) -> None:
        """A command ended."""

    def sftp_start(self, hostname: str) -> None:
        """The SFTP subsystem started."""

    def sftp_stop(self, hostname: str) -> None:
        """The SFTP subsystem stopped."""

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        """Output bytes of ``hostname`` (stderr when ``datatype`` is
        ``EXTENDED_DATA_STDERR``): whole lines, a piece of a long line or a last
        line without newline. This one decodes them (UTF-8, invalid bytes
        replaced) and calls ``line()`` once per line, each ending with a newline
        (so a piece of a long line shows as a line of its own)."""
        if type(self).line is Formatter.line:
            return  # nobody looks at the lines
        lines = raw.decode("utf-8", errors="replace").split("\n")
        last = lines.pop()
        for line in lines:
            self.line(line + "\n", datatype, hostname)
        if last:
            self.line(last + "\n", datatype, hostname)

    def writes_bytes(self) -> bool:
        """Whether ``data()`` writes bytes unchanged; false for this class, and
        whenever a subclass overrides ``line()`` without ``data()``."""
        return False

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        """An output line, decoded, ending with a newline (stderr when ``datatype``
        is ``EXTENDED_DATA_STDERR``)."""

    def stderr_line(self, line: str, hostname: str | None) -> None:
        """A message about ``hostname``, for stderr."""


class VerboseFormatter(Formatter):
    """Reports connection events on stderr when ``verbose``; failures always."""

    def __init__(self, custom_format: str, verbose: bool) -> None:
        super().__init__(custom_format)
        self.verbose = verbose

    def _event(self, hostname: str, message: str, username: str | None = None) -> None:
        if self.verbose:
            self.stderr_line(message + "\n", hostname, username)

    def connection_made(self, hostname: str, username: str, direct: bool) -> None:
        kind = "direct" if direct else "tunnelled"
        self._event(hostname, f"========== Connecting ({kind}) to {username}@{hostname}",
                    username)

    def connection_lost(self, hostname: str, exc: BaseException | None,
                        username: str) -> None:
        if exc is not None:
            reason = getattr(exc, "reason", None) or exc
            self.stderr_line(f"Connection failed to {username}@{hostname} : {reason}\n",
                             hostname, username)
        else:
            self._event(hostname, f"Connection closed to {username}@{hostname}", username)

    def auth_completed(self, hostname: str, username: str) -> None:
        self._event(hostname, f"Authorization OK {username}@{hostname}", username)

    def session_start(self, hostname: str, command: str) -> None:
        self._event(hostname, f"Session started for {command}")

    def session_stop(self, hostname: str, command: str) -> None:
        self._event(hostname, f"Session ended for {command}")

    def sftp_start(self, hostname: str) -> None:
        self._event(hostname, "SFTP subsystem started")

    def sftp_stop(self, hostname: str) -> None:
        self._event(hostname, "SFTP subsystem stopped")

    def stderr_line(self, line: str, hostname: str | None,
                    username: str | None = None) -> None:
        sys.stderr.write(self._formatted_line(_terminated(line), hostname, username))


def _terminated(line: str) -> str:
    return line if line.endswith("\n") else line + "\n"


class TerminalFormatter(VerboseFormatter):
    """Prints stdout lines on stdout and stderr lines on stderr, through the format;
    with the format ``{linenl}``, the output's bytes go through unchanged."""

    def writes_bytes(self) -> bool:
        return self.format == "{linenl}" and not self._lines_first

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        if not self.writes_bytes():
            super().data(raw, datatype, hostname)
            return
        write_bytes(sys.stderr if datatype == EXTENDED_DATA_STDERR else sys.stdout, raw)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        stream = sys.stderr if datatype == EXTENDED_DATA_STDERR else sys.stdout
        stream.write(self._formatted_line(line, hostname))


class RawFormatter(TerminalFormatter):
    """The output as it is (``{linenl}``): its bytes unchanged, a last line without
    newline included."""

    def __init__(self, custom_format: str = "{linenl}", *, verbose: bool = True) -> None:
        super().__init__(custom_format, verbose)


class HostFormatter(TerminalFormatter):
    """``{user}{host}:{linenl}``, e.g. ``root@fit01:hello``."""

    def __init__(self, custom_format: str = "{user}{host}:{linenl}", *,
                 verbose: bool = True) -> None:
        super().__init__(custom_format, verbose)


class TimeHostFormatter(TerminalFormatter):
    """``{time}:{host}:{linenl}``, e.g. ``14-18-36:fit01:hello``."""

    def __init__(self, custom_format: str = "{time}:{host}:{linenl}", *,
                 verbose: bool = True) -> None:
        super().__init__(custom_format, verbose)


#: the names these formatters had before apssh 0.24
ColonFormatter = HostFormatter
TimeColonFormatter = TimeHostFormatter


class SubdirFormatter(VerboseFormatter):
    """Each host's stdout in ``run_name/<host>``, its stderr in ``run_name/<host>.err``,
    byte for byte."""

    def __init__(self, run_name: str | Path, *, verbose: bool = True) -> None:
        super().__init__("{linenl}", verbose)
        self.run_name = Path(run_name)
        self.run_name.mkdir(parents=True, exist_ok=True)

    def out(self, hostname: str, stderr: bool = False) -> Path:
        """The file of ``hostname``'s stdout (or stderr), always inside ``run_name``
        (``BadNameError`` for a name that would leave it)."""
        return path_in(self.run_name, f"{hostname}.err" if stderr else hostname)

    def connection_made(self, hostname: str, username: str, direct: bool) -> None:
        self.out(hostname).write_text("")
        super().connection_made(hostname, username, direct)

    def writes_bytes(self) -> bool:
        return not self._lines_first

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        if not self.writes_bytes():
            super().data(raw, datatype, hostname)
            return
        with self.out(hostname, datatype == EXTENDED_DATA_STDERR).open("ab") as file:
            file.write(raw)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        stderr = datatype == EXTENDED_DATA_STDERR
        with self.out(hostname, stderr).open("a") as file:
            file.write(line)


class CaptureFormatter(VerboseFormatter):
    """Keeps stdout in memory (``get_capture()`` as text, ``get_capture_bytes()``
    byte for byte with the format ``{linenl}``); stderr still goes to stderr."""

    def __init__(self, custom_format: str = "{linenl}", *, verbose: bool = True) -> None:
        super().__init__(custom_format, verbose)
        self._chunks: list[bytes] = []

    def start_capture(self) -> None:
        """Forget what was captured so far."""
        self._chunks = []

    def get_capture(self) -> str:
        """Everything captured since ``start_capture()``, decoded (UTF-8, invalid
        bytes replaced)."""
        return self.get_capture_bytes().decode("utf-8", errors="replace")

    def get_capture_bytes(self) -> bytes:
        """Everything captured since ``start_capture()``, as bytes."""
        return b"".join(self._chunks)

    def writes_bytes(self) -> bool:
        return self.format == "{linenl}" and not self._lines_first

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        if datatype == EXTENDED_DATA_STDERR or not self.writes_bytes():
            super().data(raw, datatype, hostname)
        else:
            self._chunks.append(raw)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        if datatype == EXTENDED_DATA_STDERR:
            sys.stderr.write(self._formatted_line(line, hostname))
        else:
            self._chunks.append(self._formatted_line(line, hostname).encode())


class TailFormatter(Formatter):
    """Hands a command's output to ``inner``, keeping its last ``lines`` stderr lines
    (each cut to ``width`` characters) in ``tail``: what a failure report shows."""

    def __init__(self, inner: Formatter, *, lines: int = 10, width: int = 512) -> None:
        super().__init__()
        self.inner = inner
        self.width = width
        self.tail: deque[str] = deque(maxlen=lines)

    def _keep(self, text: str) -> None:
        self.tail.extend(line[:self.width] for line in text.splitlines())

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        if datatype == EXTENDED_DATA_STDERR:
            self._keep(raw.decode("utf-8", errors="replace"))
        self.inner.data(raw, datatype, hostname)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        if datatype == EXTENDED_DATA_STDERR:
            self._keep(line)
        self.inner.line(line, datatype, hostname)
