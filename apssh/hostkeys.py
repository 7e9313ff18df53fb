"""Host key policy: verify (the default), accept-new, or off -- or the ssh config's.

known_hosts files are parsed once per process (again only when they change),
not once per connection. ``accept-new`` records the key of a host seen for the
first time and refuses a host whose key changed, as OpenSSH's
``StrictHostKeyChecking accept-new`` does.

The ssh config's ``StrictHostKeyChecking`` is followed as ssh_config(5) says:
``yes`` (and ``ask``, as nothing can be asked here) verifies; ``accept-new`` is
the policy of that name; ``no`` and ``off`` (one meaning in OpenSSH) record a new
key and let a host whose key changed connect, with a warning on stderr (the
recorded key is kept, as OpenSSH keeps it). That last policy, ``no``, is only
reached through the ssh config: ``host_key_policy="off"`` checks nothing and
records nothing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ._asyncssh import asyncssh

#: diagnostics: with no logging set up, WARNING lines go to stderr as they are
logger = logging.getLogger("apssh")

#: the policies a caller may give (``host_key_policy=``, ``--host-key-policy``)
POLICIES = ("verify", "accept-new", "off")
#: ``StrictHostKeyChecking`` values (as OpenSSH reads them) -> policy
CONFIG_POLICIES = {"yes": "verify", "true": "verify", "ask": "verify",
                   "accept-new": "accept-new",
                   "no": "no", "off": "no", "false": "no"}

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
        logger.warning("apssh: known_hosts=None: host keys are NOT checked")


def policy_from_config(value: str) -> str:
    """The policy for a ``StrictHostKeyChecking`` value; ``ValueError`` if it has none."""
    try:
        return CONFIG_POLICIES[value.lower()]
    except KeyError:
        raise ValueError(f"StrictHostKeyChecking: expected yes, no, ask, accept-new or off, "
                         f"got {value!r}") from None


def tilde(path: Path) -> str:
    """``path``, with the home directory written ``~``."""
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


class HostKeyChecker:
    """What a connection uses to check its server's host key.

    ``policy`` is one of ``POLICIES``, or ``no`` (the ssh config's
    ``StrictHostKeyChecking no``/``off``); ``paths`` the known_hosts files, the
    first one receiving the keys recorded (none when empty: ``UserKnownHostsFile
    none``).
    """

    def __init__(self, policy: str, paths: list[Path]) -> None:
        if policy not in (*POLICIES, "no"):
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
        """A key asyncssh did not find in known_hosts: with ``accept-new`` or ``no``,
        record the key of a host never seen and accept it; with ``no``, accept a
        changed key too, saying so on stderr. False: refused."""
        if self.policy not in ("accept-new", "no"):
            return False
        if self.unknown_or_changed(host, addr, port) == "changed":
            if self.policy != "no":
                return False
            where = host if port == 22 else f"{host}:{port}"
            logger.warning("apssh: WARNING: the host key of %s CHANGED (it differs from "
                           "known_hosts): accepted because of StrictHostKeyChecking no",
                           where)
            return True
        if self.paths:
            self._record(host, port, key)
        return True

    def _record(self, host: str, port: int, key: Any) -> None:
        name = host if port == 22 else f"[{host}]:{port}"
        path = self.paths[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+b") as file:
            file.seek(0, os.SEEK_END)
            glued = False
            if file.tell() > 0:  # a file not ending with a newline gets one first
                file.seek(-1, os.SEEK_END)
                glued = file.read(1) != b"\n"
            line = f"{name} {key.export_public_key().decode().strip()}\n"
            file.write((("\n" if glued else "") + line).encode())

    def accept_hint(self, alias: str, host: str, port: int, gateway: str | None) -> str:
        """One line: how to accept the key of a host it refused as unknown."""
        target = self.paths[0] if self.paths else default_known_hosts()[0]
        on_gateway = f"ssh {gateway} " if gateway else ""
        return (f'to accept it: host_key_policy="accept-new" (--host-key-policy accept-new), '
                f'or "StrictHostKeyChecking accept-new" under "Host {alias}" in the ssh '
                f"config, or {on_gateway}ssh-keyscan -p {port} {host} >> {tilde(target)}")
