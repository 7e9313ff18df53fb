"""The ``taktuk`` command line and the lines it prints, for ``apssh.taktuk``.

``command_line()`` builds its arguments: one ``-m`` per host, each preceded by the
login (``-l``) and the connector (``-c``: the ``ssh`` the relays run, with our
algorithms, host-key policy, key and port, see ``connector()``) when they change,
output templates that tag every line with the host's position on the command line
and hex-encode the bytes, then the actions (``exec_action()``, ``put_action()``).
``parse_line()`` reads one template line back into a ``Line`` (output, exit
status, failed connection, file received...), never mixing hosts or streams.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import signal
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import ApsshError
from .names import path_in
from .opensshargs import algorithm_options, batch_options, host_key_options


class TaktukMissingError(ApsshError):
    """The ``taktuk`` program is not installed."""

    def __init__(self) -> None:
        super().__init__("taktuk is not installed (apt-get install taktuk), "
                         "needed by --taktuk")


def find_taktuk() -> str:
    """The path of ``taktuk``; ``TaktukMissingError`` when it is not installed."""
    found = shutil.which("taktuk")
    if found is None:
        raise TaktukMissingError()
    return found


@dataclass(frozen=True)
class TaktukHost:
    """One node: its name (as ssh resolves it), user and port (None: ssh's own)."""

    host: str
    user: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class SshSettings:
    """What the connector ``ssh`` is given: key files (none: ssh's agent and
    defaults), known_hosts files (none: ssh's own), the host-key ``policy``
    (``verify``, ``accept-new`` or ``off``; None: the ssh config's), the ssh
    config file (None: ssh's default, ``"none"``: none) and the connection timeout
    in seconds."""

    keys: tuple[str, ...] = ()
    known_hosts: tuple[str, ...] = ()
    policy: str | None = "verify"
    config: str | None = None
    timeout: float = 30.0


def connector(settings: SshSettings, port: int | None = None) -> str:
    """The ssh command line TakTuk (and each relay) runs to reach a node: batch
    mode, our key exchange and ciphers first (OpenSSH's own after them), the
    host-key policy, keys, port and timeout (``apssh.opensshargs``, as a chain's
    nodes). The files it names must exist on the relays too (the same paths): see
    docs/taktuk.md."""
    argv = ["ssh"]
    if settings.config is not None:
        argv += ["-F", settings.config]
    argv += [*batch_options(settings.timeout), *algorithm_options(),
             *host_key_options(settings.policy, settings.known_hosts)]
    for key in settings.keys:
        argv += ["-i", key]
    if settings.keys:
        argv += ["-o", "IdentitiesOnly=yes"]
    if port is not None:
        argv += ["-p", str(port)]
    # exec: TakTuk runs it through sh, which need not stay between TakTuk and ssh
    return "exec " + shlex.join(argv)


#: each template line: a tag, the host's position on the command line, then fields;
#: bytes are hex-encoded, so that any output (binary, no newline) parses the same
TEMPLATES = {
    "output": '"o $position ".($eol?"n":"-")." ".unpack("H*",$line)."\\n"',
    "error": '"e $position ".($eol?"n":"-")." ".unpack("H*",$line)."\\n"',
    "status": '"s $position $line\\n"',
    "connector": '"c $peer_position ".unpack("H*",$line)."\\n"',
    # 3 connection failed, 5 lost, 14 file reception failed, 15 file received
    "state": '($line==3||$line==5)?"S $line $peer_position ".unpack("H*",$peers_given//"")'
             '."\\n":($line==14||$line==15)?"S $line $position -\\n":undef',
    "taktuk": '"t $position ".unpack("H*",$line)."\\n"',
}


def _hex(text: str) -> str:
    return text.encode().hex()


def exec_action(command: str) -> list[str]:
    """The TakTuk command that runs ``command`` (a shell command line) on every node,
    with the user's shell (``/bin/sh`` without ``$SHELL``) as ssh would: the command
    travels hex-encoded, so no character of it is TakTuk syntax."""
    # exec: the command's own status, not that of a shell around it
    wrapper = ("exec perl -e 'exec((shift)||\"/bin/sh\", \"-c\", pack(\"H*\", shift)) or exit 127'"
               f' "$SHELL" {_hex(command)}')
    return ["broadcast", "exec", "[", wrapper, "]"]


#: characters TakTuk would read in a path of a put: its variables, separators, delimiters
_UNSAFE_IN_PATH = set("$ \t\n;,[]")


def put_action(source: str, destination: str) -> list[str]:
    """The TakTuk command that copies the local ``source`` (a file or a directory) to
    ``destination`` on every node; ``ValueError`` for a path TakTuk would misread."""
    for path in (source, destination):
        bad = _UNSAFE_IN_PATH.intersection(path)
        if bad or not path:
            raise ValueError(f"{path!r}: TakTuk cannot copy a path with "
                             f"{''.join(sorted(bad)) or 'nothing'} in it")
    return ["broadcast", "put", "[", source, "]", "[", destination, "]"]


def get_action(source: str, destination: str) -> list[str]:
    """The TakTuk command that copies ``source`` (a file or a directory) from every
    node to ``destination`` here, where ``$position`` is the node's position (see
    ``staging_dir()``); ``ValueError`` for a path TakTuk would misread."""
    put_action(source, destination.replace("$position", "p"))  # the same checks
    return ["broadcast", "get", "[", source, "]", "[", destination, "]"]


def command_line(taktuk: str, hosts: Sequence[TaktukHost], settings: SshSettings,
                 actions: Iterable[list[str]], *, self_propagate: bool = True,
                 window: int | None = None) -> list[str]:
    """The whole ``taktuk`` command line: ``hosts`` in order (host ``i`` is position
    ``i + 1`` in the template lines), each run of hosts with one login and port in
    a deployment group of its own, ``actions`` after them (``quit`` ends it). No
    actions: TakTuk reads them on its standard input (``script()``), and quits at
    its end, once they are done. ``window``: how many nodes each node (the root and
    every relay) deploys at once, TakTuk's ``-w`` (None: TakTuk's own, 10)."""
    argv = [taktuk]
    if self_propagate:
        argv.append("-s")
    argv += ["-t", str(max(1, round(settings.timeout)))]
    if window is not None:
        argv += ["-w", str(window)]
    for stream, template in TEMPLATES.items():
        argv += ["-o", f"{stream}={template}"]
    argv += ["-o", "info", "-o", "message"]
    # hosts of one login and port make a deployment group: a relay that steals
    # work from another group would reach its hosts with its own connector
    groups = [list(run) for _, run in itertools.groupby(hosts, lambda h: (h.user, h.port))]
    for group in groups:
        if len(groups) > 1:
            argv.append("-b")
        if group[0].user is not None:  # none: ssh's own (its config's, else the local user)
            argv += ["-l", group[0].user]
        argv += ["-c", connector(settings, group[0].port)]
        for host in group:
            argv += ["-m", host.host]
        if len(groups) > 1:
            argv.append("-e")
    actions = list(actions)
    if not actions:
        return argv
    for action in actions:
        argv += [*action, ";"]
    return [*argv, "quit"]


def script(actions: Iterable[list[str]]) -> bytes:
    """``actions`` as TakTuk reads them on its standard input, one a line."""
    return b"".join(" ".join(action).encode() + b"\n" for action in actions)


#: what stops every command TakTuk started, on every node (SIGTERM to their groups)
KILL_ALL = b"broadcast kill 15\n"


# ----- reading the template lines
@dataclass(frozen=True)
class Line:
    """One template line: ``kind`` (``stdout``, ``stderr``, ``status``, ``connector``,
    ``failed``, ``lost``, ``received``, ``not-received``, ``taktuk``), the host's
    ``index`` (None for the root), ``data`` (bytes, or the status) and ``more``
    (for ``lost``: the positions that node was deploying)."""

    kind: str
    index: int | None
    data: bytes | int = b""
    more: tuple[int, ...] = ()


def _index(position: str) -> int | None:
    """``"3"`` -> 2; the root (``"0"``) and anything else -> None."""
    return int(position) - 1 if position.isdigit() and position != "0" else None


_STATES = {"3": "failed", "5": "lost", "14": "not-received", "15": "received"}


def parse_line(raw: bytes) -> Line | None:
    """The event a template line tells; None for a line that is not ours."""
    parts = raw.split()
    if len(parts) < 2:
        return None
    tag, index = parts[0], _index(parts[1].decode(errors="replace"))
    try:
        if tag in (b"o", b"e") and len(parts) in (3, 4):
            data = bytes.fromhex(parts[3].decode()) if len(parts) == 4 else b""
            if parts[2] == b"n":
                data += b"\n"
            return Line("stdout" if tag == b"o" else "stderr", index, data)
        if tag == b"s" and len(parts) == 3:
            return Line("status", index, int(parts[2]))
        if tag in (b"c", b"t"):
            data = bytes.fromhex(parts[2].decode()) if len(parts) == 3 else b""
            return Line("connector" if tag == b"c" else "taktuk", index, data)
        if tag == b"S" and len(parts) in (3, 4) and parts[1].decode() in _STATES:
            index = _index(parts[2].decode())
            given = bytes.fromhex(parts[3].decode()) if len(parts) == 4 and \
                parts[3] != b"-" else b""
            more = tuple(i for i in (_index(pair.rsplit(b":", 1)[-1].decode())
                                     for pair in given.split()) if i is not None)
            return Line(_STATES[parts[1].decode()], index, more=more)
    except ValueError:
        return None
    return None


def exit_result(status: int) -> int | str:
    """A wait status as TakTuk reports it -> the exit code, or the signal's name
    (``"TERM"``) as an ``SshJob`` returns them."""
    if status & 0x7F:
        number = status & 0x7F
        try:
            return signal.Signals(number).name.removeprefix("SIG")
        except ValueError:
            return str(number)
    return status >> 8


#: what ssh says -> our reason for an unreachable host (the first that matches)
_REASONS = (
    ("Connection refused", "connection refused"),
    ("IDENTIFICATION HAS CHANGED", "host key mismatch"),
    ("Host key verification failed", "host key unknown"),
    ("Permission denied", "authentication failed"),
    ("timed out", "connection timed out"),
    ("timeouted", "connection timed out (TakTuk's deployment, see -c)"),
    ("Could not resolve hostname", "unknown host"),
    ("No route to host", "no route to host"),
)


def unreachable_reason(lines: Sequence[str]) -> str:
    """Why a node could not be reached, from what its connector printed."""
    text = "\n".join(lines)
    for found, reason in _REASONS:
        if found in text:
            return reason
    last = [line for line in lines if line.strip()]
    return last[-1].strip() if last else "connection failed"


# ----- appull: each node's files land in a staging directory, then in place
#: what a staging directory's path may hold: TakTuk runs ``cd DIR && tar x`` through
#: a shell to receive a directory, and expands ``$`` in it
_SAFE_STAGING = re.compile(r"[A-Za-z0-9_./+-]+")


def staging_dir(destinations: Sequence[str], hosts: int) -> Path:
    """A new directory with one empty subdirectory per host (``1``...: TakTuk's
    ``$position``), on the file system of the local ``destinations`` when it can
    (the nearest existing directory above them whose path TakTuk reads as it is),
    else in the system's temporary directory: moving the files in place is then a
    rename, not a second copy."""
    candidates = [Path(os.path.commonpath([str(Path(d).absolute()) for d in destinations]))
                  ] if destinations else []
    candidates.append(Path(tempfile.gettempdir()))
    for candidate in candidates:
        while not candidate.is_dir():
            candidate = candidate.parent
        if _SAFE_STAGING.fullmatch(str(candidate)) and os.access(candidate, os.W_OK | os.X_OK):
            break
    staging = Path(tempfile.mkdtemp(prefix=".appull-taktuk-", dir=candidate))
    for position in range(1, hosts + 1):
        (staging / str(position)).mkdir()
    return staging


def place(staged: Path, sources: Sequence[str], local: str) -> list[Path]:
    """Move what TakTuk received from one node (``staged``: a file or directory per
    remote source, by its name) to ``local``, as ``appull`` without TakTuk would:
    into the directory ``local`` when there are several sources, it ends with ``/``
    or is a directory already (made if needed), else to the path ``local`` (its
    parent made if needed). Names are joined with ``names.path_in``, so none can
    leave its directory. The paths written; ``OSError`` when one cannot be."""
    target = Path(local)
    into = len(sources) > 1 or local.endswith("/") or target.is_dir()
    (target if into else target.parent).mkdir(parents=True, exist_ok=True)
    placed = []
    for source in sources:
        name = PurePosixPath(source).name
        final = path_in(target, name) if into else target
        shutil.move(path_in(staged, name), final)
        placed.append(final)
    return placed


# ----- the run


def settings_from_files(keys: Iterable[str | Path], known_hosts: Iterable[str | Path],
                        **kwds: Any) -> SshSettings:
    """``SshSettings`` with the files as absolute paths (the relays run elsewhere)."""
    return SshSettings(keys=tuple(str(Path(k).expanduser().resolve()) for k in keys),
                       known_hosts=tuple(str(Path(k).expanduser().resolve())
                                         for k in known_hosts), **kwds)
