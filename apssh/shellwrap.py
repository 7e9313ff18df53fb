"""What a command becomes before it is sent: environment variables and sudo.

``wrap(command, env=..., sudo=...)`` returns the command line a shell on the
node runs:

- ``env``: ``export NAME=value`` lines in front of the command, each value
  quoted for the remote shell (``shlex.quote``); names must be shell
  identifiers (``check_env`` refuses the others before anything runs);
- ``sudo``: ``True`` (root) or a user name; the command runs as
  ``sudo -n [-u USER] -- sh -c '<exports; command>'``: ``-n`` never asks for a
  password, so a sudo that would ask fails at once, and ``sudo_problem`` reads
  that failure out of the command's stderr.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from .names import username_problem

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: what sudo -n writes when it would need a password, or refuses the user
_SUDO_REFUSALS = ("a password is required", "is not in the sudoers file",
                  "is not allowed to run sudo", "a terminal is required")


def check_env(env: Mapping[str, Any] | None) -> dict[str, str]:
    """``env`` as a dict of strings; ``ValueError`` for a name that is not a shell
    identifier, ``TypeError`` for a value that is not a string or a number."""
    checked: dict[str, str] = {}
    for name, value in (env or {}).items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"env: {name!r} is not a shell variable name "
                             "(letters, digits, _; not starting with a digit)")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TypeError(f"env: {name}: expected a string, got {value!r}")
        checked[name] = str(value)
    return checked


def check_sudo(sudo: bool | str | None) -> bool | str | None:
    """``sudo`` as given (``None``/``False``: no sudo, ``True``: root, a user name);
    ``ValueError`` for a user name ``apssh.names`` refuses."""
    if sudo is None or isinstance(sudo, bool):
        return sudo or None
    if not isinstance(sudo, str):
        raise TypeError(f"sudo: expected true or a user name, got {sudo!r}")
    problem = username_problem(sudo)
    if problem is not None:
        raise ValueError(f"sudo: bad user name {sudo!r}: {problem}")
    return sudo


def exports(env: Mapping[str, str]) -> str:
    """``export A='x' B=y; `` for ``env`` (empty for none)."""
    if not env:
        return ""
    pairs = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    return f"export {pairs}; "


def sudo_prefix(sudo: bool | str | None) -> str:
    """``sudo -n`` (and ``-u USER``) as a command prefix, or ``""``."""
    if not sudo:
        return ""
    user = "" if sudo is True else f" -u {shlex.quote(str(sudo))}"
    return f"sudo -n{user} -- "


def wrap(command: str, *, env: Mapping[str, str] | None = None,
         sudo: bool | str | None = None) -> str:
    """The line to send for ``command`` with ``env`` exported and run through sudo."""
    line = exports(env or {}) + command
    if not sudo:
        return line
    return f"{sudo_prefix(sudo)}sh -c {shlex.quote(line)}"


def merged_env(node_env: Mapping[str, str] | None,
               command_env: Mapping[str, str] | None) -> dict[str, str]:
    """The node's variables, overridden by the command's."""
    return {**(node_env or {}), **(command_env or {})}


def sudo_problem(result: Any, stderr_lines: Iterable[str]) -> str | None:
    """sudo's own refusal (a password needed, a user not allowed), read from the
    stderr of a command that returned ``result`` (sudo exits with 1), else None."""
    if result != 1:
        return None
    for line in stderr_lines:
        text = line.strip()
        if text.startswith("sudo:") and any(what in text for what in _SUDO_REFUSALS):
            return text.removeprefix("sudo:").strip()
    return None
