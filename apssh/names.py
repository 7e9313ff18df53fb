"""Names are data: host and user names checked before use, paths that stay put.

A host or user name reaches a shell (a ``ProxyCommand`` with ``%h``, a remote
``sudo -u``), a resolver and the file system (``-o DIR/<host>``). Each is
checked once, where it enters (targets, ``SshProxy``, the YAML loader), with
OpenSSH's rules made stricter, before any DNS lookup or connection:

- a host name is an IP address, or dot-separated labels of letters, digits,
  ``-`` and ``_`` (no label starts with ``-``, none is longer than 63), 253
  characters at most: what a resolver can look up or an ssh config can alias;
- a user name is letters, digits, ``.``, ``_`` and ``-`` (not first), with an
  optional final ``$``, 256 characters at most.

Every path built from a name goes through ``path_in``, which refuses what would
leave its directory (``..``, ``/``, an absolute name, a NUL).
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
from collections.abc import Iterable
from pathlib import Path

from .errors import ApsshError

_LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?")
MAX_HOSTNAME, MAX_LABEL, MAX_USERNAME = 253, 63, 256


class BadNameError(ApsshError, ValueError):
    """A host name, user name or path component that cannot be used as it is."""

    def __init__(self, kind: str, name: str, reason: str) -> None:
        self.kind = kind
        self.name = name
        self.reason = reason
        super().__init__(f"bad {kind} {name!r}: {reason}")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.partition("%")[0])  # fe80::1%eth0: a scoped address
    except ValueError:
        return False
    return "%" not in name or re.fullmatch(r"[^%]+%[A-Za-z0-9_.-]+", name) is not None


def hostname_problem(name: str) -> str | None:
    """Why ``name`` is not a usable host name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "empty host name"
    if _is_ip(name):
        return None
    if len(name) > MAX_HOSTNAME:
        return f"longer than {MAX_HOSTNAME} characters"
    for label in name.removesuffix(".").split("."):
        if not _LABEL.fullmatch(label):
            return "hostname contains invalid characters"
        if len(label) > MAX_LABEL:
            return f"a label is longer than {MAX_LABEL} characters"
    return None


def check_hostname(name: str) -> str:
    """``name`` when it is a usable host name; else ``BadNameError``."""
    problem = hostname_problem(name)
    if problem is not None:
        raise BadNameError("host name", str(name), problem)
    return name


def username_problem(name: str) -> str | None:
    """Why ``name`` is not a usable user name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "empty user name"
    if len(name) > MAX_USERNAME:
        return f"longer than {MAX_USERNAME} characters"
    if not _USER.fullmatch(name):
        return "user name contains invalid characters"
    return None


def check_username(name: str) -> str:
    """``name`` when it is a usable user name; else ``BadNameError``."""
    problem = username_problem(name)
    if problem is not None:
        raise BadNameError("user name", str(name), problem)
    return name


def local_user() -> str:
    """The name of the user running this process, as OpenSSH takes it for a default:
    the password database's entry for the real uid (``$LOGNAME`` and ``$USER`` are
    not asked: they can say anything), else the uid in digits."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no name for this uid: ssh would fail the same way
        return str(uid)


def path_in(directory: str | Path, *parts: str) -> Path:
    """``directory/part/...``, refusing any part that would leave ``directory``:
    empty, ``.``, ``..``, containing ``/`` or NUL. Parts are names (a host, a
    file name), never paths."""
    path = Path(directory)
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\0" in part or "\\" in part:
            raise BadNameError("path component", part, f"would leave {directory}")
        path = path / part
    return path


def fold(names: Iterable[str]) -> str:
    """Host names folded ClusterShell-style (``fit[01-05,07]``), or joined with commas."""
    names = list(names)
    if len(names) > 1 and all(re.fullmatch(r"[\w.-]+", name) for name in names):
        from ClusterShell.NodeSet import NodeSet

        return str(NodeSet.fromlist(names))
    return ",".join(names)
