"""The ``taktuk`` command line and the lines it prints, for ``apssh.taktuk``.

``command_line()`` builds its arguments: one ``-m`` per host, each preceded by the
login (``-l``) and the connector (``-c``: the ``ssh`` the relays run, with our
algorithms, host-key policy, key and port, see ``connector()``) when they change,
hosts behind a gateway nested under it (``-G gw -[ -m a -m b -]``, ``layout()``),
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
    """One node: its name (as ssh resolves it), user and port (None: ssh's own),
    and the gateway that reaches it (None: the client does): TakTuk deploys it
    from there, and the client never connects to it."""

    host: str
    user: str | None = None
    port: int | None = None
    gateway: TaktukHost | None = None

    def user_host(self) -> str:
        """``user@host``, or ``host`` when the user is ssh's own choice."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def chain(self) -> list[TaktukHost]:
        """Its gateways, the outermost first, then itself."""
        return [*(self.gateway.chain() if self.gateway is not None else []), self]


@dataclass
class _Hop:
    """One host of TakTuk's host specification: a target (``index``: its rank in
    the hosts) and/or a gateway of others (``nested``), at ``position``."""

    host: TaktukHost
    position: str = ""
    index: int | None = None
    nested: list[_Hop] = field(default_factory=list)

    def targets(self) -> list[int]:
        """The targets nested under it, at any depth."""
        found = []
        for hop in self.nested:
            found += ([hop.index] if hop.index is not None else []) + hop.targets()
        return found


@dataclass
class Layout:
    """Where each host sits in TakTuk's host specification: ``positions`` maps a
    position (TakTuk's ``$position``: ``3``, or ``1.2`` for the second host nested
    under the first) to the host's index; ``gateways`` maps a gateway's position to
    its ``user@host`` and the indexes of the targets behind it (at any depth). A
    host behind no gateway is at position ``index + 1``, as without gateways."""

    top: list[_Hop]
    positions: dict[str, int]
    gateways: dict[str, tuple[str, tuple[int, ...]]]


def layout(hosts: Sequence[TaktukHost]) -> Layout:
    """The hosts as TakTuk's tree of specifications: each host behind gateways is
    nested under them, a gateway named by several hosts (or a target itself) is
    one node; in the order of the hosts, each host its own node at its level."""
    top: list[_Hop] = []
    # (a level's id, a host's name, user and port) -> the first node of that host
    # at that level: each host is placed in constant time, not by scanning its level
    first: dict[tuple[int, str, str | None, int | None], _Hop] = {}

    def place(level: list[_Hop], hop: _Hop) -> _Hop:
        level.append(hop)
        return first.setdefault((id(level), hop.host.host, hop.host.user, hop.host.port), hop)

    for index, host in enumerate(hosts):
        level = top
        *hops, last = host.chain()
        for gateway in hops:
            hop = first.get((id(level), gateway.host, gateway.user, gateway.port))
            if hop is None:
                hop = place(level, _Hop(gateway))
            level = hop.nested
        hop = first.get((id(level), last.host, last.user, last.port))
        if hop is not None and hop.index is None:  # named as a gateway first, a target too
            hop.index = index
        else:
            place(level, _Hop(last, index=index))
    positions: dict[str, int] = {}
    gateways: dict[str, tuple[str, tuple[int, ...]]] = {}

    def number(level: list[_Hop], prefix: str) -> None:
        for rank, hop in enumerate(level, 1):
            hop.position = f"{prefix}{rank}"
            if hop.index is not None:
                positions[hop.position] = hop.index
            if hop.nested:
                gateways[hop.position] = (hop.host.user_host(), tuple(hop.targets()))
                number(hop.nested, hop.position + ".")

    number(top, "")
    return Layout(top, positions, gateways)


def _groups(level: list[_Hop]) -> list[list[_Hop]]:
    """``level``'s deployment groups: runs of hosts of one login and port, each
    gateway a group of its own."""
    return [list(run) for _, run in itertools.groupby(
        level, lambda hop: (hop.host.user, hop.host.port) if not hop.nested else id(hop))]


def _specification(level: list[_Hop], settings: SshSettings) -> list[str]:
    """The arguments that deploy ``level``: hosts of one login and port make a
    deployment group (a relay that steals work from another group would reach its
    hosts with its own connector), a gateway makes one of its own (so that it only
    deploys what is nested under it), with its hosts between ``-[`` and ``-]``; a
    gateway that is no target is ``-G`` (TakTuk's forward-only node: never given a
    command, yet counted in the positions)."""
    groups = _groups(level)
    argv: list[str] = []
    for group in groups:
        if len(groups) > 1:
            argv.append("-b")
        first = group[0].host
        if first.user is not None:  # none: ssh's own (its config's, else the local user)
            argv += ["-l", first.user]
        argv += ["-c", connector(settings, first.port)]
        for hop in group:
            argv += ["-m" if hop.index is not None else "-G", hop.host.host]
            if hop.nested:
                argv += ["-[", *_specification(hop.nested, settings), "-]"]
        if len(groups) > 1:
            argv.append("-e")
    return argv


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


#: how many nodes the root deploys itself, at most: each is an ``ssh`` process on the
#: client (~10 descriptors, its handshake, the traffic it decrypts); without a
#: bound, the root deploys more the more hosts there are (23 at 100 hosts, 32 at
#: 1,000), see docs/taktuk.md
ROOT_ARITY = 2


def command_line(taktuk: str, hosts: Sequence[TaktukHost], settings: SshSettings,
                 actions: Iterable[list[str]], *, self_propagate: bool = True,
                 window: int | None = None, arity: int | None = ROOT_ARITY) -> list[str]:
    """The whole ``taktuk`` command line: ``hosts`` in order (host ``i`` is position
    ``i + 1`` in the template lines, or where ``layout()`` puts it behind a
    gateway), each run of hosts with one login and port in a deployment group of
    its own, ``actions`` after them (``quit`` ends it). No
    actions: TakTuk reads them on its standard input (``script()``), and quits at
    its end, once they are done. ``window``: how many nodes each node (the root and
    every relay) deploys at once, TakTuk's ``-w`` (None: TakTuk's own, 10).
    ``arity``: how many nodes the root (the client's ``taktuk``) deploys itself, at
    most (TakTuk's ``-d``, for the root only: ``-M``), its children stealing the
    rest; None: no bound, the root deploying what it can before its children steal
    it. Only when the root has one deployment group (one login and port, no
    gateway): with several, TakTuk 3.7.7 may wait forever with ``-d``."""
    argv = [taktuk]
    if self_propagate:
        argv.append("-s")
    argv += ["-t", str(max(1, round(settings.timeout)))]
    if window is not None:
        argv += ["-w", str(window)]
    top = layout(hosts).top
    if arity is not None and len(_groups(top)) == 1:  # -M: for the root only
        argv += ["-M", "-d", str(arity)]
    for stream, template in TEMPLATES.items():
        argv += ["-o", f"{stream}={template}"]
    argv += ["-o", "info", "-o", "message"]
    argv += _specification(top, settings)
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
    ``index`` (None for the root, or a gateway that is no target), ``data`` (bytes,
    or the status), ``more`` (for ``lost``: the hosts that node was deploying) and
    the ``position`` it was told for (TakTuk's, ``"1.2"`` behind a gateway)."""

    kind: str
    index: int | None
    data: bytes | int = b""
    more: tuple[int, ...] = ()
    position: str = ""


def _index(position: str, positions: Mapping[str, int] | None) -> int | None:
    """``"3"`` -> 2 (or what ``positions``, a ``Layout``'s, says); the root
    (``"0"``) and anything else -> None."""
    if positions is not None:
        return positions.get(position)
    return int(position) - 1 if position.isdigit() and position != "0" else None


_STATES = {"3": "failed", "5": "lost", "14": "not-received", "15": "received"}


def parse_line(raw: bytes, positions: Mapping[str, int] | None = None) -> Line | None:
    """The event a template line tells; None for a line that is not ours.
    ``positions``: the ``Layout``'s (None: hosts behind no gateway)."""
    parts = raw.split()
    if len(parts) < 2:
        return None
    tag, position = parts[0], parts[1].decode(errors="replace")
    index = _index(position, positions)
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
            return Line("connector" if tag == b"c" else "taktuk", index, data,
                        position=position)
        if tag == b"S" and len(parts) in (3, 4) and position in _STATES:
            position = parts[2].decode()
            given = bytes.fromhex(parts[3].decode()) if len(parts) == 4 and \
                parts[3] != b"-" else b""
            more = tuple(i for i in (_index(pair.rsplit(b":", 1)[-1].decode(), positions)
                                     for pair in given.split()) if i is not None)
            return Line(_STATES[parts[1].decode()], _index(position, positions), more=more,
                        position=position)
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


def staging_dir(destinations: Sequence[str], positions: Iterable[str]) -> Path:
    """A new directory with one empty subdirectory per host, named by its
    ``position`` (TakTuk's ``$position``: ``1``..., ``1.2`` behind a gateway), on
    the file system of the local ``destinations`` when it can (the nearest existing
    directory above them whose path TakTuk reads as it is), else in the system's
    temporary directory: moving the files in place is then a rename, not a second
    copy."""
    candidates = [Path(os.path.commonpath([str(Path(d).absolute()) for d in destinations]))
                  ] if destinations else []
    candidates.append(Path(tempfile.gettempdir()))
    for candidate in candidates:
        while not candidate.is_dir():
            candidate = candidate.parent
        if _SAFE_STAGING.fullmatch(str(candidate)) and os.access(candidate, os.W_OK | os.X_OK):
            break
    staging = Path(tempfile.mkdtemp(prefix=".appull-taktuk-", dir=candidate))
    for position in positions:
        (staging / position).mkdir()
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
