"""What a node's connection is made with: algorithms, keys, known_hosts files.

Resolved once, when the node is created (not once per connection): what the
caller gives wins, then the ssh config, then the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._asyncssh import asyncssh
from .hostkeys import default_known_hosts, policy_from_config
from .keys import default_identity_files, load_key_files, load_keys

#: fast here (AES-NI, and curve25519), then everything asyncssh supports
ENCRYPTION_ALGS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
KEX_ALGS = "^curve25519-sha256,curve25519-sha256@libssh.org"
_algs: dict[str, list[str]] = {}


def preferred_algs() -> dict[str, list[str]]:
    """ENCRYPTION_ALGS and KEX_ALGS expanded once into full lists: given as ``^...``
    strings, asyncssh would match them against every algorithm it knows for each
    connection (more than half of preparing a connection's options)."""
    if not _algs:
        options = asyncssh.SSHClientConnectionOptions(
            encryption_algs=ENCRYPTION_ALGS, kex_algs=KEX_ALGS, config=None, known_hosts=None)
        _algs["encryption_algs"] = [alg.decode() for alg in options.encryption_algs]
        _algs["kex_algs"] = [alg.decode() for alg in options.kex_algs]
    return _algs


def client_keys(keys: list[Any] | None, config: dict[str, Any]) -> list[Any]:
    """The keys a node offers: ``keys`` (key objects, or files that must all be
    usable: ``KeyFileError`` otherwise); else the config's ``IdentityFile`` (those
    that load, as OpenSSH skips a missing one); else the default identity files.

    An empty list lets asyncssh use the agent and its own defaults: it is only
    returned when nothing was asked for.
    """
    if keys:
        return ([key for key in keys if not isinstance(key, str | Path)]
                + load_key_files(key for key in keys if isinstance(key, str | Path)))
    if config.get("IdentityFile"):
        return load_keys(config["IdentityFile"])
    return load_keys(default_identity_files())


def known_hosts_paths(known_hosts: Any, config: dict[str, Any]) -> list[Path]:
    """The known_hosts files to read: ``known_hosts`` (a file, or several), else
    (None) the config's ``UserKnownHostsFile`` (``none`` gives no file), else
    ``~/.ssh/known_hosts``."""
    if known_hosts is None:
        if "UserKnownHostsFile" in config:
            return [Path(p).expanduser() for p in config["UserKnownHostsFile"]]
        return default_known_hosts()
    if isinstance(known_hosts, str | Path):
        return [Path(known_hosts).expanduser()]
    return [Path(p).expanduser() for p in known_hosts]


def resolve_host_key_policy(policy: str | None, config: dict[str, Any]) -> str:
    """``policy`` when given, else the config's ``StrictHostKeyChecking``, else
    ``verify`` (see ``hostkeys``)."""
    if policy is not None:
        return policy
    if config.get("StrictHostKeyChecking"):
        return policy_from_config(config["StrictHostKeyChecking"])
    return "verify"
