"""Formatters: how the output lines and connection events of each host are shown.

A formatter receives events (connection made or lost, session started...) and
output lines, each tagged with the host it comes from. The format keywords are
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
from pathlib import Path
from typing import Any

#: the datatype asyncssh gives to stderr data
EXTENDED_DATA_STDERR = 1

_KEYWORDS = re.compile(r"\{(linenl|line|nl|fqdn|host|user)\}")


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

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        """An output line (stderr when ``datatype`` is ``EXTENDED_DATA_STDERR``)."""

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
    """Prints stdout lines on stdout and stderr lines on stderr, through the format."""

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        stream = sys.stderr if datatype == EXTENDED_DATA_STDERR else sys.stdout
        stream.write(self._formatted_line(line, hostname))


class RawFormatter(TerminalFormatter):
    """Lines as they are: ``{linenl}``."""

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
    """Each host's stdout in ``run_name/<host>``, its stderr in ``run_name/<host>.err``."""

    def __init__(self, run_name: str | Path, *, verbose: bool = True) -> None:
        super().__init__("{linenl}", verbose)
        self.run_name = Path(run_name)
        self.run_name.mkdir(parents=True, exist_ok=True)
        self._files: dict[tuple[str, bool], Any] = {}

    def out(self, hostname: str, stderr: bool = False) -> Path:
        """The file of ``hostname``'s stdout (or stderr)."""
        return self.run_name / (f"{hostname}.err" if stderr else hostname)

    def connection_made(self, hostname: str, username: str, direct: bool) -> None:
        self.out(hostname).write_text("")
        super().connection_made(hostname, username, direct)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        stderr = datatype == EXTENDED_DATA_STDERR
        with self.out(hostname, stderr).open("a") as file:
            file.write(line)


class CaptureFormatter(VerboseFormatter):
    """Keeps stdout in memory (``get_capture()``); stderr still goes to stderr."""

    def __init__(self, custom_format: str = "{linenl}", *, verbose: bool = True) -> None:
        super().__init__(custom_format, verbose)
        self._chunks: list[str] = []

    def start_capture(self) -> None:
        """Forget what was captured so far."""
        self._chunks = []

    def get_capture(self) -> str:
        """Everything captured since ``start_capture()``."""
        return "".join(self._chunks)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        if datatype == EXTENDED_DATA_STDERR:
            sys.stderr.write(self._formatted_line(line, hostname))
        else:
            self._chunks.append(self._formatted_line(line, hostname))
