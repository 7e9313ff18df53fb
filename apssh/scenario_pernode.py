"""Per-node values in YAML scenarios: ``{host}``, ``{fqdn}``, ``{user}``, ``{port}``,
``{rank}`` and ``{args}`` in a job's commands and in Push/Pull paths, filled with the
values of the job's node when the scenario is built (see ``docs/yaml.md``).

The filling itself is ``apssh.pernode``'s, the one the command-line tools use:
values are shell-quoted in commands, single safe path components in paths, and
braces that are not one of these names stay as written. One difference, because
double braces belong to Jinja2 and to captures in a scenario: a ``{{ ... }}`` is
left whole here (``{{port}}`` stays a late name that a ``capture: port`` fills).
A literal ``{host}`` is written as the Jinja2 expression ``{{ '{host}' }}``, which
the command renders when it runs (``QUOTED``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from .pernode import NodeValues, Value, expand_command, expand_path
from .scenario_checks import Marked, Problem

#: a Jinja2 expression or a late name: left whole for Jinja2 and captures
_DOUBLE = re.compile(r"\{\{.*?\}\}", re.DOTALL)

#: a Jinja2 string literal such as ``{{ '{host}' }}``: a command holding one is
#: rendered when it runs, so that it reaches the shell as ``{host}``
QUOTED = re.compile(r"\{\{-?\s*['\"]")

Values = Mapping[str, Value]


def node_args(entry: Marked, what: str) -> tuple[str, ...]:
    """A node's ``args:``: a list is one word per item; a string is split into words
    as a shell does (as a line of ``apssh --args``), quotes grouping."""
    raw = entry.get("args")
    if raw is None:
        return ()
    if isinstance(raw, list):
        return tuple(str(item) for item in raw)
    try:
        return tuple(shlex.split(str(raw)))
    except ValueError as exc:
        raise Problem(entry.line_of("args"), f"{what}: args: {exc}") from None


def node_values(entry: Marked, node: Any, rank: int, what: str) -> Values:
    """The values of ``node`` (built from ``entry``), ``rank``-th of its scenario.

    An ssh node: ``{fqdn}`` its ``hostname:`` as written, ``{user}`` and ``{port}``
    those it connects with (ssh config and defaults applied). A local node:
    ``localhost``, the local user, no ``{port}`` (it then stays as written)."""
    hostname = entry.get("hostname")
    port = getattr(node, "port", None)
    return NodeValues(str(hostname) if hostname is not None else "localhost",
                      str(getattr(node, "username", "") or ""),
                      port if isinstance(port, int) else None, rank,
                      node_args(entry, what)).as_dict()


def fill(text: str, values: Values, *, path: bool = False) -> str:
    """``text`` with the node's values, outside any ``{{ ... }}``; ``path``: each
    value must be one safe path component (``names.BadNameError`` otherwise)."""
    expand = expand_path if path else expand_command
    pieces: list[str] = []
    last = 0
    for found in _DOUBLE.finditer(text):
        pieces += [expand(text[last:found.start()], values), found.group(0)]
        last = found.end()
    pieces.append(expand(text[last:], values))
    return "".join(pieces)


def fill_any(value: Any, values: Values, *, path: bool = False) -> Any:
    """``fill`` on a string, on each string of a list; anything else as it is."""
    if isinstance(value, str):
        return fill(value, values, path=path)
    if isinstance(value, list):
        return [fill_any(item, values, path=path) for item in value]
    return value
