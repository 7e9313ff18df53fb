"""Formatters: how the output lines and connection events of each host are shown.

A formatter receives events (connection made or lost, session started...) and
output, each tagged with the host it comes from. Output arrives as bytes through
``data()``: runs of whole lines, or pieces of a line longer than 64 KiB, or a
last line without newline (see ``apssh.lines``). Formatters that write output
where it is kept (``RawFormatter`` and any ``TerminalFormatter`` whose format is
exactly ``{linenl}``, ``SubdirFormatter``, ``CaptureFormatter``) write those
bytes unchanged; the others decode them (UTF-8, invalid bytes replaced) into
lines for a person, each ending with a newline, through ``line()``. A subclass
that overrides ``line()`` gets text lines, as before: each ``data()`` here checks
whether ``line()`` is still its own class's. The format keywords are
``{time}`` (``%H-%M-%S``, fixed at creation), ``{host}`` (short host name),
``{fqdn}``, ``{user}`` (``user@``, on connection events only: empty on output
lines, as in apssh 0.27), ``{line}`` (without its newline), ``{linenl}`` (with
it) and ``{nl}``; ``time.strftime`` applies to the whole format, so a literal
``%`` is written ``%%``. Host and user are centred to the widest one among the
nodes that share the formatter, so columns line up (``HostFormatter`` shared by
``fit02`` and ``faraday``: `` fit02 :hello``). Verbose events start with
``========== `` (``fit01:========== Session started for hostname``).

Every write of these formatters to stdout or stderr goes through
``Formatter.write_out()``: a closed pipe drops that stream's output and calls
``stdout_closed()`` once (the run goes on; the command-line tools stop it), and
text that stdout cannot encode (``PYTHONIOENCODING=ascii``) has the characters
it lacks replaced by ``?``: neither ever raises into the connection's callbacks.
"""

from __future__ import annotations

import re
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .names import path_in

#: the datatype asyncssh gives to stderr data
EXTENDED_DATA_STDERR = 1

#: what starts every verbose event line, as in apssh 0.27
EVENT_MARK = "========== "

_KEYWORDS = re.compile(r"\{(linenl|line|nl|fqdn|host|user)\}")


def write_to(stream: TextIO, data: str | bytes, *, flush: bool = False) -> None:
    """Write ``data`` to ``stream``: text through it, a character its encoding cannot
    represent replaced (``?``) rather than raised; bytes unchanged to the binary
    buffer under it, after the text written before (a text-only stream gets them
    decoded). ``flush`` sends out what is buffered. A ``BrokenPipeError`` (the
    reader went away) is left to the caller."""
    if isinstance(data, bytes):
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            stream.flush()  # text written before goes first
            buffer.write(data)
            if flush or getattr(stream, "line_buffering", False):
                buffer.flush()
            return
        data = data.decode("utf-8", errors="replace")
    try:
        stream.write(data)
    except UnicodeEncodeError:  # nothing was written: the whole text is encoded first
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(data.encode(encoding, errors="replace").decode(encoding))
    if flush:
        stream.flush()


def _overrides_line(formatter: Formatter, cls: type[Formatter]) -> bool:
    """Whether ``formatter``'s class redefines ``line()`` below ``cls``: then its
    output goes through ``line()`` as text, as in apssh 0.27, instead of being
    written as bytes by ``cls.data()``."""
    return type(formatter).line is not cls.line


def shorten_hostname(hostname: str) -> str:
    """The first component of a host name; an IP address is kept whole."""
    first = hostname.split(".")[0]
    try:
        int(first)
    except ValueError:
        return first
    return hostname


class Formatter:
    """The base formatter: event hooks (no-ops here), the format machinery, and
    ``write_out()``, through which formatters write to stdout and stderr."""

    #: set once a write found stdout (stderr) closed: its output is dropped from then on
    _stdout_gone = False
    _stderr_gone = False

    def __init__(self, custom_format: str = "{linenl}") -> None:
        self.format = custom_format.replace("{time}", "%H-%M-%S")
        self._with_strftime = "%" in self.format
        self._widths = {"fqdn": 0, "host": 0, "user": 0}

    # ----- sizing
    def adapt_to_proxy(self, proxy: Any) -> None:
        """Remember a node's names, to align the columns of the nodes that share
        this formatter."""
        hostname = str(proxy.hostname)
        username = proxy.username or ""
        self._widths["fqdn"] = max(self._widths["fqdn"], len(hostname))
        self._widths["host"] = max(self._widths["host"], len(shorten_hostname(hostname)))
        self._widths["user"] = max(self._widths["user"], len(username) + 1 if username else 0)

    def _formatted_line(self, line: str, hostname: str | None = None,
                        username: str | None = None) -> str:
        text = time.strftime(self.format) if self._with_strftime else self.format
        # centred as 0.27 does: an odd padding leaves the extra space on the right
        fqdn = host = user = ""
        if hostname is not None:
            fqdn = f"{hostname:^{self._widths['fqdn']}}"
            host = f"{shorten_hostname(hostname):^{self._widths['host']}}"
        if username:  # connection events only: output lines carry no user
            user = f"{username + '@':^{self._widths['user']}}"
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

    def session_closed_early(self, hostname: str, command: str, grace: float) -> None:
        """``command`` exited, but a process it left in the background holds its
        output, silent for ``grace`` seconds: its session is being closed."""

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

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        """An output line, decoded, ending with a newline (stderr when ``datatype``
        is ``EXTENDED_DATA_STDERR``)."""

    def stderr_line(self, line: str, hostname: str | None) -> None:
        """A message about ``hostname``, for stderr."""

    # ----- writing to the terminal
    def write_out(self, data: str | bytes, *, stderr: bool = False, flush: bool = False) -> None:
        """Write ``data`` to ``sys.stdout`` (``sys.stderr`` with ``stderr``) as
        ``write_to()`` does. A closed pipe (``BrokenPipeError``: ``| head`` went
        away) is not an error: that stream's output is dropped from then on and, for
        stdout, ``stdout_closed()`` is called, once. Nothing else is caught."""
        if self._stderr_gone if stderr else self._stdout_gone:
            return
        try:
            write_to(sys.stderr if stderr else sys.stdout, data, flush=flush)
        except BrokenPipeError:
            if stderr:
                self._stderr_gone = True
            else:
                self._stdout_gone = True
                self.stdout_closed()

    #: called once when standard output is found closed (the command-line tools stop
    #: the run there); None: the run goes on, its connections untouched
    on_stdout_closed: Callable[[], None] | None = None

    def stdout_closed(self) -> None:
        """Standard output was found closed; this formatter's stdout output is dropped
        from then on, and ``on_stdout_closed`` (when set) is called."""
        if self.on_stdout_closed is not None:
            self.on_stdout_closed()


class VerboseFormatter(Formatter):
    """Reports connection events on stderr when ``verbose``; failures always."""

    def __init__(self, custom_format: str, verbose: bool) -> None:
        super().__init__(custom_format)
        self.verbose = verbose

    def _event(self, hostname: str, message: str, username: str | None = None) -> None:
        if self.verbose:
            self.stderr_line(EVENT_MARK + message + "\n", hostname, username)

    def connection_made(self, hostname: str, username: str, direct: bool) -> None:
        kind = "direct" if direct else "tunnelled"
        self._event(hostname, f"Connecting ({kind}) to {username}@{hostname}",
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

    def session_closed_early(self, hostname: str, command: str, grace: float) -> None:
        self._event(hostname, f"Closing the session of {command}: it exited, its output "
                    f"silent for {grace}s (held by a background process)")

    def sftp_start(self, hostname: str) -> None:
        self._event(hostname, "SFTP subsystem started")

    def sftp_stop(self, hostname: str) -> None:
        self._event(hostname, "SFTP subsystem stopped")

    def stderr_line(self, line: str, hostname: str | None,
                    username: str | None = None) -> None:
        self.write_out(self._formatted_line(_terminated(line), hostname, username),
                       stderr=True)


def _terminated(line: str) -> str:
    return line if line.endswith("\n") else line + "\n"


class TerminalFormatter(VerboseFormatter):
    """Prints stdout lines on stdout and stderr lines on stderr, through the format;
    with the format ``{linenl}``, the output's bytes go through unchanged (unless a
    subclass overrides ``line()``). What each ``data()`` brings is flushed at once."""

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        stderr = datatype == EXTENDED_DATA_STDERR
        if self.format == "{linenl}" and not _overrides_line(self, TerminalFormatter):
            self.write_out(raw, stderr=stderr, flush=True)
        else:
            super().data(raw, datatype, hostname)
            self.write_out("", stderr=stderr, flush=True)  # what line() wrote goes now

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        self.write_out(self._formatted_line(line, hostname),
                       stderr=datatype == EXTENDED_DATA_STDERR)


class RawFormatter(TerminalFormatter):
    """The output as it is (``{linenl}``): its bytes unchanged, a last line without
    newline included."""

    def __init__(self, custom_format: str = "{linenl}", *, verbose: bool = True) -> None:
        super().__init__(custom_format, verbose)


class HostFormatter(TerminalFormatter):
    """``{user}{host}:{linenl}``, e.g. ``fit01:hello`` (the user shows on connection
    events only: ``root@fit01:========== Connecting (direct) to root@fit01``)."""

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

#: whether the "no formatter specified" warning was printed in this process
_warned_no_formatter = False


def no_formatter_given(node: Any) -> HostFormatter:
    """The formatter of an ``SshNode``/``SshProxy`` built without one, as in apssh
    0.27: a ``HostFormatter()``, verbose, and the warning
    ``WARNING: no formatter specified for root@fit01`` on stdout; 0.27 printed it
    for every such node, here it is printed once per process."""
    global _warned_no_formatter
    if not _warned_no_formatter:
        _warned_no_formatter = True
        write_to(sys.stdout, f"WARNING: no formatter specified for {node}\n")
    return HostFormatter()


class SubdirFormatter(VerboseFormatter):
    """Each host's stdout in ``run_name/<host>``, its stderr in ``run_name/<host>.err``,
    byte for byte (text lines when a subclass overrides ``line()``). Each file is
    emptied when this formatter first writes to it; a host's stdout file is made
    when it connects, so a host that printed nothing has an empty one.

    ``file_name`` names the files instead of the host (``file_name`` and
    ``file_name.err``, checked now: ``BadNameError`` for a name that would leave
    ``run_name``): the YAML loader gives one formatter per node, named by the
    node's id. ``lazy`` writes nothing before output comes: no directory at
    creation, no empty file at connection (by default the directory is made now).
    """

    def __init__(self, run_name: str | Path, *, verbose: bool = True,
                 file_name: str | None = None, lazy: bool = False) -> None:
        super().__init__("{linenl}", verbose)
        self.run_name = Path(run_name)
        self.file_name = file_name
        self.lazy = lazy
        self._started: set[Path] = set()
        if file_name is not None:
            path_in(self.run_name, file_name)
        if not lazy:
            self.run_name.mkdir(parents=True, exist_ok=True)

    def out(self, hostname: str, stderr: bool = False) -> Path:
        """The file of ``hostname``'s stdout (or stderr), always inside ``run_name``
        (``BadNameError`` for a name that would leave it)."""
        name = hostname if self.file_name is None else self.file_name
        return path_in(self.run_name, f"{name}.err" if stderr else name)

    def _append(self, path: Path, raw: bytes) -> None:
        """Add ``raw`` to ``path``, made anew (with its directory) the first time."""
        mode = "ab"
        if path not in self._started:
            self.run_name.mkdir(parents=True, exist_ok=True)
            self._started.add(path)
            mode = "wb"
        try:
            with path.open(mode) as file:
                file.write(raw)
        except OSError as exc:  # a full disk: say which file
            if exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror, str(path)) from exc

    def connection_made(self, hostname: str, username: str, direct: bool) -> None:
        if not self.lazy:
            self._append(self.out(hostname), b"")
        super().connection_made(hostname, username, direct)

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        if _overrides_line(self, SubdirFormatter):
            super().data(raw, datatype, hostname)
        else:
            self._append(self.out(hostname, datatype == EXTENDED_DATA_STDERR), raw)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        self._append(self.out(hostname, datatype == EXTENDED_DATA_STDERR), line.encode())


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

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        if (datatype == EXTENDED_DATA_STDERR or self.format != "{linenl}"
                or _overrides_line(self, CaptureFormatter)):
            super().data(raw, datatype, hostname)
        else:
            self._chunks.append(raw)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        if datatype == EXTENDED_DATA_STDERR:
            self.write_out(self._formatted_line(line, hostname), stderr=True)
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
