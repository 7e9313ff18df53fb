"""Reading ~/.ssh/config as OpenSSH does, once per host: User, Port, IdentityFile...

The lookup uses asyncssh's own config parser, so Host and Match blocks, tokens
and Include behave as they do when asyncssh connects. Results are cached per
file (and its modification time) and host.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from ._asyncssh import asyncssh

_cache: dict[tuple[str, int, str], dict[str, Any]] = {}

OPTIONS = ("Hostname", "Port", "User", "IdentityFile", "UserKnownHostsFile", "ProxyJump")


def lookup(path: str | Path, host: str) -> dict[str, Any]:
    """The options of ``path`` that apply to ``host`` (only those it sets).

    Raises ``ValueError`` naming the file when it cannot be parsed.
    """
    path = Path(path).expanduser()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}
    key = (str(path), stamp, host)
    if key not in _cache:
        from asyncssh.config import SSHClientConfig

        try:
            # () for user and port: let the file decide them
            config = SSHClientConfig.load(None, [str(path)], False, False, False,
                                          getpass.getuser(), (), host, ())
        except asyncssh.ConfigParseError as exc:
            raise ValueError(f"ssh config {path}: {exc}") from None
        _cache[key] = {name: config.get(name) for name in OPTIONS
                       if config.get(name) not in (None, (), [])}
    return _cache[key]
