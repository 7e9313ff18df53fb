"""Reading ~/.ssh/config as OpenSSH does, once per host: User, Port, IdentityFile,
UserKnownHostsFile, StrictHostKeyChecking...

The file is parsed by asyncssh's own parser, so Host and Match blocks, tokens
and Include behave as they do when asyncssh connects, once per file (and
modification time) and host. The connection options built from it are handed
to asyncssh, which would otherwise parse the file again for every connection
(more than a millisecond for a config of a few dozen lines) -- except for hosts
reached through a ``ProxyJump``, or with hostname canonicalization or ``Match
final``, which asyncssh resolves from the file itself.

asyncssh's parser skips ``StrictHostKeyChecking`` (asyncssh never reads it): it is
taught to keep it, through a private table of asyncssh (checked by a canary test).
An asyncssh without that table still works: ``StrictHostKeyChecking`` is then
ignored (the default, ``verify``, applies), with a warning once per process when
a config file sets it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from ._asyncssh import asyncssh
from .hostkeys import policy_from_config

#: diagnostics: with no logging set up, WARNING lines go to stderr as they are
logger = logging.getLogger("apssh")


def register_strict_host_key_checking(config_module: ModuleType) -> bool:
    """Teach asyncssh's config parser (``config_module``, ``asyncssh.config``) to
    keep ``StrictHostKeyChecking``, per host as any option; False when its
    private parts are not as expected (nothing is changed then)."""
    try:
        handlers = config_module.SSHClientConfig._handlers
        set_string = config_module.SSHConfig._set_string
    except AttributeError:
        return False
    if not isinstance(handlers, dict) or not callable(set_string):
        return False
    handlers.setdefault("stricthostkeychecking", ("StrictHostKeyChecking", set_string))
    return True


#: whether asyncssh's parser keeps StrictHostKeyChecking (else it is ignored)
STRICT_REGISTERED = register_strict_host_key_checking(asyncssh.config)
_STRICT_LINE = re.compile(r"^\s*StrictHostKeyChecking\b", re.IGNORECASE | re.MULTILINE)
_warned_strict = False


def _warn_strict_ignored(path: Path) -> None:
    """Once per process: ``path`` sets StrictHostKeyChecking, which this asyncssh
    cannot be taught to keep."""
    global _warned_strict
    if _warned_strict:
        return
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    if _STRICT_LINE.search(text):
        _warned_strict = True
        logger.warning("apssh: WARNING: StrictHostKeyChecking in %s is ignored with asyncssh "
                       "%s (host keys are verified); use host_key_policy= or "
                       "--host-key-policy", path, asyncssh.__version__)

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
        if not STRICT_REGISTERED:
            _warn_strict_ignored(path)
        if "StrictHostKeyChecking" in found:
            try:
                policy_from_config(str(found["StrictHostKeyChecking"]))
            except ValueError as exc:
                raise ValueError(f"ssh config {path}: {exc}") from None
        reusable = not (found.get("ProxyJump") or config.get("CanonicalizeHostname")
                        or config.has_match_final())
        _cache[key] = (found, options if reusable else None)
    return _cache[key]
