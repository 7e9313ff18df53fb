"""Host key policy: verify (the default), accept-new, or off.

known_hosts files are parsed once per process (again only when they change),
not once per connection. ``accept-new`` records the key of a host seen for the
first time and refuses a host whose key changed, as OpenSSH's
``StrictHostKeyChecking accept-new`` does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ._asyncssh import asyncssh

POLICIES = ("verify", "accept-new", "off")

_parsed: dict[tuple[tuple[str, int], ...], Any] = {}
_warned_none = False


def default_known_hosts() -> list[Path]:
    """``~/.ssh/known_hosts``."""
    return [Path.home() / ".ssh" / "known_hosts"]


def read_known_hosts(paths: list[str]) -> Any:
    """An ``SSHKnownHosts`` of the existing files among ``paths`` (cached by mtime)."""
    stamps = []
    for path in paths:
        try:
            stamps.append((path, os.stat(path).st_mtime_ns))
        except OSError:
            continue
    key = tuple(stamps)
    if key not in _parsed:
        _parsed[key] = asyncssh.read_known_hosts([name for name, _ in stamps]) if stamps \
            else asyncssh.import_known_hosts("")
    return _parsed[key]


def warn_no_check() -> None:
    """Say once per process that host keys are not checked."""
    global _warned_none
    if not _warned_none:
        _warned_none = True
        print("apssh: known_hosts=None: host keys are NOT checked", file=sys.stderr)


class HostKeyChecker:
    """What a connection uses to check its server's host key."""

    def __init__(self, policy: str, paths: list[Path]) -> None:
        if policy not in POLICIES:
            raise ValueError(f"host_key_policy: expected one of {', '.join(POLICIES)}, "
                             f"got {policy!r}")
        self.policy = policy
        self.paths = paths
        self._names = [str(path) for path in paths]  # once: a connection only stats them

    def known_hosts(self) -> Any:
        """The ``known_hosts`` argument for asyncssh (None turns checking off)."""
        if self.policy == "off":
            return None
        return read_known_hosts(self._names)

    def unknown_or_changed(self, host: str, addr: str, port: int) -> str:
        """``unknown`` when no key is recorded for the host, else ``changed``."""
        trusted = read_known_hosts(self._names).match(host, addr, port)[0]
        return "changed" if trusted else "unknown"

    def accept(self, host: str, addr: str, port: int, key: Any) -> bool:
        """For ``accept-new``: record the key of a host never seen; False if it changed."""
        if self.policy != "accept-new" or self.unknown_or_changed(host, addr, port) != "unknown":
            return False
        name = host if port == 22 else f"[{host}]:{port}"
        path = self.paths[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as file:
            file.write(f"{name} {key.export_public_key().decode().strip()}\n")
        return True
