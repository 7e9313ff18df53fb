"""Client keys: read once per process, never once per connection.

``SshNode`` uses the ssh-agent (through ``SSH_AUTH_SOCK``, as OpenSSH does) and
the default identity files ``~/.ssh/id_ed25519``, ``id_ecdsa``, ``id_rsa``; or the
files it is given. An encrypted key is never prompted for behind the user's back:
it is skipped with one clear line saying to load it in the agent. Key files
given explicitly (``load_key_files``) must all be usable: an unusable one is
refused (``KeyFileError``), never replaced by the defaults.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._asyncssh import asyncssh
from .errors import KeyFileError

#: diagnostics: with no logging set up, WARNING lines go to stderr as they are
logger = logging.getLogger("apssh")

DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")

_parsed: dict[tuple[str, int, str | None], Any] = {}


def _read_key(path: Path, passphrase: str | None) -> Any:
    """The key in ``path`` (parsed once per process), or a ``str`` saying why not."""
    try:
        stamp = (str(path), path.stat().st_mtime_ns, passphrase)
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return exc.strerror or str(exc)
    if stamp not in _parsed:
        try:
            _parsed[stamp] = asyncssh.read_private_key(str(path), passphrase)
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            if "passphrase" in str(exc).lower():
                _parsed[stamp] = (f"encrypted: load it in an agent (ssh-add {path}) "
                                  "or give its passphrase")
            else:
                _parsed[stamp] = f"not a usable private key ({exc})"
        except OSError as exc:  # a directory, no permission...
            return exc.strerror or str(exc)
    return _parsed[stamp]


def import_private_key(filename: str | Path, passphrase: str | None = None) -> Any | None:
    """The private key in ``filename`` (parsed once per process), or None.

    None comes with one line on stderr when the file exists but cannot be used
    (encrypted without a passphrase, or not a key).
    """
    path = Path(filename).expanduser()
    key = _read_key(path, passphrase)
    if not isinstance(key, str):
        return key
    if path.exists():
        if key.startswith("encrypted"):
            logger.warning("apssh: key %s is %s", path, key)
        else:
            logger.warning("apssh: cannot use key %s: %s", path, key)
    return None


def load_key_files(paths: Iterable[str | Path], passphrase: str | None = None) -> list[Any]:
    """The keys in ``paths``, each parsed once per process; every file must be usable.

    Raises ``KeyFileError`` naming the first file that is missing, unreadable,
    encrypted (without ``passphrase``) or not a private key: keys given
    explicitly (``keys=[...]``, ``-k FILE``) never fall back silently to the
    agent or the default identity files.
    """
    keys = []
    for name in paths:
        path = Path(name).expanduser()
        key = _read_key(path, passphrase)
        if isinstance(key, str):
            raise KeyFileError(str(path), key)
        keys.append(key)
    return keys


def default_identity_files() -> list[Path]:
    """The default identity files that exist."""
    ssh_dir = Path.home() / ".ssh"
    return [ssh_dir / name for name in DEFAULT_IDENTITIES if (ssh_dir / name).exists()]


def load_keys(files: Iterable[str | Path]) -> list[Any]:
    """The usable keys among ``files`` (each parsed once per process)."""
    keys = (import_private_key(name) for name in files)
    return [key for key in keys if key is not None]


async def co_load_agent_keys(agent_path: str | None = None) -> list[Any]:
    """The keys the ssh-agent holds ([] without an agent)."""
    path = agent_path or os.environ.get("SSH_AUTH_SOCK")
    if not path:
        return []
    try:
        async with asyncssh.connect_agent(path) as agent:
            return list(await agent.get_keys())
    except (OSError, asyncssh.Error) as exc:
        logger.warning("apssh: when fetching agent keys: ignored %s", exc)
        return []


def load_agent_keys(agent_path: str | None = None) -> list[Any]:
    """Synchronous ``co_load_agent_keys``; works inside a running event loop too."""
    found: list[Any] = []

    def fetch() -> None:
        found.extend(asyncio.run(co_load_agent_keys(agent_path)))

    thread = threading.Thread(target=fetch)
    thread.start()
    thread.join()
    return found


def load_private_keys(command_line_keys: Iterable[str | Path] | None = None,
                      verbose: bool = False) -> list[Any]:
    """The keys to offer: the given files (each must be usable, see
    ``load_key_files``); else the agent's, then the default files."""
    if command_line_keys:
        keys = load_key_files(command_line_keys)
    else:
        keys = load_agent_keys() + load_keys(default_identity_files())
    if verbose:
        print(f"apssh: {len(keys)} keys loaded", file=sys.stderr)
    return keys
