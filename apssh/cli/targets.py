"""Targets: the hosts the command-line tools work on, from what the user typed.

A target spec is a directory (every file in it names a host, as ``--mark``
writes them), a file (hosts separated by blanks or commas, ``#`` comments), or
a literal list. Each item reads ``[[gwuser@]gw->][user@]host[:port]``:

- ``->`` (or ``→``) chains gateways, to any depth; ``None->host`` forces a
  direct connection even when a default gateway is given;
- ``host:port``, and ``[v6addr]:port`` for IPv6 (a bare ``::1`` has no port);
- host ranges as ClusterShell writes them: ``fit[01-37]``, ``node[1-3,7]``,
  ``10.0.0.[1-5]``, several ranges in one name, ``fit[01-09]!fit05`` to
  exclude, ``&`` and ``^`` too; ``@group`` (``user@@group``, ``@source:group``)
  from ClusterShell's group files; ClusterShell is imported only when a range or
  a group is.

Commas split items only outside brackets. Duplicates collapse to one target.
Every mistake is a ``TargetError`` naming the fragment (and file:line). Host
and user names are checked here (``apssh.names``), before any DNS lookup: a
file of words that are not host names (a key given as ``-t`` by mistake) is
refused as a whole, and a name never reaches a shell or a path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ApsshError
from ..names import hostname_problem, username_problem

#: what makes a host name a range expression for ClusterShell
_RANGE_CHARS = frozenset("[]!&^")
_ARROW = re.compile(r"->|→")
#: a spec longer than this cannot be a path (and would make ``stat`` fail)
_MAX_PATH = 4096


class TargetError(ApsshError, ValueError):
    """A target that cannot be understood; the message names the fragment."""

    def __init__(self, fragment: str, reason: str, where: str | None = None) -> None:
        self.fragment = fragment
        self.reason = reason
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}bad target {fragment!r}: {reason}")


@dataclass(frozen=True)
class Target:
    """One host to reach: its name, user and port (None: ssh config or defaults
    decide), and the gateway to go through (None: direct)."""

    host: str
    user: str | None = None
    port: int | None = None
    gateway: Target | None = None

    def hop(self) -> str:
        """``user@host:port``, with what is known (IPv6 addresses in brackets)."""
        host = f"[{self.host}]" if ":" in self.host and self.port is not None else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{user}{host}{port}"

    def __str__(self) -> str:
        prefix = f"{self.gateway}->" if self.gateway is not None else ""
        return prefix + self.hop()

    def depth(self) -> int:
        """1 for a direct target, 1 + the gateway's depth otherwise."""
        return 1 if self.gateway is None else 1 + self.gateway.depth()


def split_items(text: str) -> Iterator[str]:
    """The items of ``text``: separated by blanks, or by commas outside brackets."""
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        elif depth == 0 and (char == "," or char.isspace()):
            if index > start:
                yield text[start:index]
            start = index + 1
    if len(text) > start:
        yield text[start:]


def _parse_port(fragment: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise TargetError(fragment, f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _parse_hop(fragment: str, hop: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]`` -> (user, host, port); the host may still be a range."""
    user: str | None = None
    if hop.startswith("@") or "@@" in hop:  # a ClusterShell group: [user@]@group[:port]
        user, _, group = hop.rpartition("@@") if "@@" in hop else ("", "", hop[1:])
        port_text = re.search(r":(\d+)$", group)
        group_port = _parse_port(fragment, port_text.group(1)) if port_text else None
        group = group[:port_text.start()] if port_text else group
        if "@@" in hop and not user:
            raise TargetError(fragment, "empty user name before '@'")
        if not group:
            raise TargetError(fragment, "empty group name after '@'")
        return user or None, f"@{group}", group_port
    if "@" in hop:
        user, _, hop = hop.rpartition("@")
        if not user:
            raise TargetError(fragment, "empty user name before '@'")
    port: int | None = None
    if hop.startswith("[") and "]" in hop and ":" in hop[:hop.index("]")]:
        # [v6addr] or [v6addr]:port
        close = hop.index("]")
        rest = hop[close + 1:]
        if rest and not rest.startswith(":"):
            raise TargetError(fragment, "expected ':port' after an IPv6 address in brackets")
        if rest:
            port = _parse_port(fragment, rest[1:])
        hop = hop[1:close]
    else:
        outside = re.sub(r"\[[^\]]*\]", "", hop)  # colons inside ranges are not ports
        if outside.count(":") == 1:
            hop, _, text = hop.rpartition(":")
            port = _parse_port(fragment, text)
    if not hop:
        raise TargetError(fragment, "empty host name")
    if hop.count("[") != hop.count("]"):
        raise TargetError(fragment, "unbalanced brackets")
    return user, hop, port


def _group_resolver() -> object:
    """ClusterShell's group resolver, reading its ``groups.conf`` now (the file its
    documentation lists, ``$CLUSTERSHELL_CFGDIR/groups.conf`` first), not when
    ClusterShell was imported."""
    from ClusterShell.Defaults import config_paths
    from ClusterShell.NodeSet import ILLEGAL_GROUP_CHARS
    from ClusterShell.NodeUtils import GroupResolverConfig

    return GroupResolverConfig(config_paths("groups.conf"), ILLEGAL_GROUP_CHARS)


def _expand_host(fragment: str, host: str) -> list[str]:
    group = "@" in host
    if not group and (":" in host or not _RANGE_CHARS.intersection(host)):
        return [host]
    from ClusterShell.NodeSet import NodeSet, NodeSetException
    from ClusterShell.NodeUtils import GroupResolverError

    try:
        hosts = list(NodeSet(host, resolver=_group_resolver() if group else None))
    except (NodeSetException, GroupResolverError) as exc:
        raise TargetError(fragment, str(exc) or type(exc).__name__) from None
    if not hosts and group:
        raise TargetError(fragment, "no host in this group (ClusterShell's groups.conf, "
                          "$CLUSTERSHELL_CFGDIR/groups.conf first)")
    if not hosts:
        raise TargetError(fragment, "the range expands to no host")
    return hosts


def parse_item(item: str, *, user: str | None = None, port: int | None = None,
               gateway: Target | None = None) -> list[Target]:
    """The targets of one item; ``user``, ``port`` and ``gateway`` are the defaults."""
    hops = _ARROW.split(item)
    if any(not hop for hop in hops):
        raise TargetError(item, "empty hop around '->'")
    chain: Target | None = gateway
    if len(hops) > 1:
        chain = None
        gateways = hops[:-1]
        if gateways[0] == "None":  # None->host: direct, whatever the default gateway
            gateways = gateways[1:]
        for hop in gateways:
            hop_user, host, hop_port = _parse_hop(item, hop)
            if host.startswith("@") or (_RANGE_CHARS.intersection(host)
                                        and ":" not in host):
                raise TargetError(item, "a gateway cannot be a range or a group")
            chain = Target(host, hop_user or user, hop_port or port, chain)
    hop_user, host, hop_port = _parse_hop(item, hops[-1])
    return [_checked(item, Target(name, hop_user or user, hop_port or port, chain))
            for name in _expand_host(item, host)]


def _checked(fragment: str, target: Target) -> Target:
    """``target``, once its names (and its gateways') are known to be usable."""
    hop: Target | None = target
    while hop is not None:
        problem = hostname_problem(hop.host)
        if problem is None and hop.user is not None:
            problem = username_problem(hop.user)
        if problem is not None:
            raise TargetError(fragment, problem)
        hop = hop.gateway
    return target


def _as_path(spec: str) -> Path | None:
    """The file or directory ``spec`` names, here or under ``~/.apssh``; else None."""
    if len(spec) > _MAX_PATH or "\0" in spec or "\n" in spec:
        return None
    candidates = [Path(spec)]
    if not Path(spec).is_absolute():
        candidates.append(Path.home() / ".apssh" / spec)
    for path in candidates:
        try:
            if path.exists():
                return path
        except (OSError, ValueError):  # e.g. a name too long for the file system
            continue
    return None


def _items(spec: str) -> Iterator[tuple[str, str | None]]:
    """(item, where) for each item of a spec: a directory, a file or a literal list."""
    path = _as_path(spec)
    if path is None:
        for item in split_items(spec):
            yield item, None
    elif path.is_dir():
        for entry in sorted(path.iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                yield entry.name, str(entry)
    else:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
            raise TargetError(spec, f"cannot read hosts file: {reason}") from None
        for number, line in enumerate(text.splitlines(), 1):
            for item in split_items(line.partition("#")[0]):
                yield item, f"{path}:{number}"


def expand(specs: Iterable[str], *, user: str | None = None, port: int | None = None,
           gateway: Target | None = None) -> list[Target]:
    """Every target of ``specs``, in order, each once."""
    found: dict[Target, None] = {}
    for spec in specs:
        if not spec.strip():
            raise TargetError(spec, "empty target")
        for item, where in _items(spec):
            try:
                targets = parse_item(item, user=user, port=port, gateway=gateway)
            except TargetError as exc:
                raise TargetError(exc.fragment, exc.reason, where) from None
            found.update(dict.fromkeys(targets))
    return list(found)


def parse_gateway(spec: str, *, user: str | None = None,
                  port: int | None = None) -> Target:
    """The default gateway (``-g``): ``[user@]host[:port]``, or a chain ``a->b``."""
    targets = parse_item(spec, user=user, port=port)
    if len(targets) != 1:
        raise TargetError(spec, "a gateway cannot be a range")
    return targets[0]


def excluded(target: Target, excludes: Iterable[Target]) -> bool:
    """Whether an exclusion matches ``target``: same host, and the same user and
    port when the exclusion names them (gateways do not matter)."""
    return any(x.host == target.host and x.user in (None, target.user)
               and x.port in (None, target.port) for x in excludes)
