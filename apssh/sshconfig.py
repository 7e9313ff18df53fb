"""Reading ~/.ssh/config as OpenSSH does, once per host: User, Port, IdentityFile,
UserKnownHostsFile, StrictHostKeyChecking...

The file is parsed by asyncssh's own parser, so Host and Match blocks, tokens
and Include behave as they do when asyncssh connects, once per file (and
modification time) and host. The connection options built from it are handed
to asyncssh, which would otherwise parse the file again for every connection
(more than a millisecond for a config of a few dozen lines) -- except for hosts
reached through a ``ProxyJump``, or with hostname canonicalization or ``Match
final``, which asyncssh resolves from the file itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._asyncssh import asyncssh
from .hostkeys import policy_from_config

# asyncssh's parser skips StrictHostKeyChecking (asyncssh never reads it): it is
# taught to keep it, per host as any option, for apssh to read
asyncssh.config.SSHClientConfig._handlers.setdefault(
    "stricthostkeychecking", ("StrictHostKeyChecking", asyncssh.config.SSHConfig._set_string))

_cache: dict[tuple[str, int, str], tuple[dict[str, Any], Any]] = {}

OPTIONS = ("Hostname", "Port", "User", "IdentityFile", "UserKnownHostsFile", "ProxyJump",
           "StrictHostKeyChecking")


def lookup(path: str | Path, host: str) -> tuple[dict[str, Any], Any]:
    """The options of ``path`` that apply to ``host`` (only those it sets), and
    asyncssh's connection options with the file already parsed, to give as
    ``options=`` (None when asyncssh must read the file itself, see above).
    A missing file gives ``({}, None)``.

    Raises ``ValueError`` naming the file when it cannot be parsed.
    """
    path = Path(path).expanduser()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}, None
    key = (str(path), stamp, host)
    if key not in _cache:
        try:
            # no keys and no known_hosts here: they are given when connecting;
            # the user and the port are left for the file to decide
            options = asyncssh.SSHClientConnectionOptions(
                config=[str(path)], host=host, client_keys=None, known_hosts=None,
                x509_trusted_certs=None)
        except asyncssh.ConfigParseError as exc:
            raise ValueError(f"ssh config {path}: {exc}") from None
        config = options.config
        found = {name: config.get(name) for name in OPTIONS
                 if config.get(name) not in (None, (), [])}
        if config.get("UserKnownHostsFile") == []:  # "none": no file at all
            found["UserKnownHostsFile"] = []
        if "StrictHostKeyChecking" in found:
            try:
                policy_from_config(str(found["StrictHostKeyChecking"]))
            except ValueError as exc:
                raise ValueError(f"ssh config {path}: {exc}") from None
        reusable = not (found.get("ProxyJump") or config.get("CanonicalizeHostname")
                        or config.has_match_final())
        _cache[key] = (found, options if reusable else None)
    return _cache[key]
