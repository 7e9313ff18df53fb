"""Per-node values: ``{host}``, ``{user}``, ``{port}``, ``{rank}`` in commands and paths.

One command (or one path) given for many nodes becomes each node's own by filling
in that node's values. The same rules serve the ``apssh``/``appush``/``appull``
command-line tools, and are meant for the YAML loader and groups of processes:

- the names are those of ``NAMES``: ``{host}`` (the short host name, an IP address
  kept whole), ``{fqdn}`` (the host name as given), ``{user}``, ``{port}``,
  ``{rank}`` (the node's index among the nodes, from 0) and ``{args}`` (the node's
  own arguments, see ``ArgsFile``); a name a caller gives no value for stays as
  written;
- braces that are not one of these names stay as written: ``awk '{print $1}'``
  and ``${HOME}`` reach the shell unchanged;
- ``{{host}}`` (a name in double braces) is the literal text ``{host}``;
- into a shell command, each value is quoted (``shlex.quote``): a value never
  reaches the shell as code. ``{args}`` is a list of words, each quoted;
- into a path, each value must be one safe path component (``names.path_in``):
  a value never takes the path out of its directory.

Substitution is one pass: a value that contains ``{host}`` is not expanded again.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ApsshError
from .formatters import shorten_hostname
from .names import path_in

#: the per-node names, as they are written between braces
NAMES = ("host", "fqdn", "user", "port", "rank", "args")

_PATTERN = re.compile(r"\{\{(" + "|".join(NAMES) + r")\}\}|\{(" + "|".join(NAMES) + r")\}")

#: ``host: words`` (a blank, or the end of the line, after the colon)
_HOST_LINE = re.compile(r"([^\s:]+):(?:\s+|$)")


class PerNodeError(ApsshError, ValueError):
    """Per-node values that cannot be used: an arguments file that does not say what
    a node gets, or a line that is not a list of words."""



@dataclass(frozen=True)
class NodeValues:
    """What one node's templates are filled with."""

    #: the host name as given (``{fqdn}``); ``{host}`` is its short form
    fqdn: str
    user: str = ""
    port: int | None = None
    rank: int = 0
    #: the node's own arguments (``{args}``), as words
    args: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, str | tuple[str, ...]]:
        """The values by name (``{port}`` absent when unknown)."""
        values: dict[str, str | tuple[str, ...]] = {
            "host": shorten_hostname(self.fqdn), "fqdn": self.fqdn, "user": self.user,
            "rank": str(self.rank), "args": self.args}
        if self.port is not None:
            values["port"] = str(self.port)
        return values


Value = str | Sequence[str]


def expand(template: str, values: Mapping[str, Value],
           quote: Callable[[str], str] | None = None) -> str:
    """``template`` with each ``{name}`` of ``values`` replaced, in one pass.

    ``quote`` is applied to each value (to each word of a sequence, joined with
    spaces); ``{{name}}`` gives ``{name}`` for each of ``NAMES``; any other brace
    (and a name ``values`` has no value for) stays as written.
    """
    def fill(found: re.Match[str]) -> str:
        literal, name = found.group(1), found.group(2)
        if literal is not None:
            return "{" + literal + "}"
        if name not in values:
            return found.group(0)
        value = values[name]
        words = [value] if isinstance(value, str) else list(value)
        return " ".join(quote(word) if quote else word for word in words)

    return _PATTERN.sub(fill, template)


def uses(template: str, name: str) -> bool:
    """Whether ``template`` uses ``{name}`` (``{{name}}``, a literal, does not count)."""
    return any(found.group(2) == name for found in _PATTERN.finditer(template))


def expand_command(template: str, values: Mapping[str, Value]) -> str:
    """A shell command for one node: each value shell-quoted (``shlex.quote``)."""
    return expand(template, values, shlex.quote)


def expand_path(template: str, values: Mapping[str, Value]) -> str:
    """A path for one node: each value used must be a single safe path component
    (``names.BadNameError`` otherwise), so a template that stays in its directory
    still does once filled."""
    def check(word: str) -> str:
        if word:
            path_in(".", word)
        return word

    return expand(template, values, check)


@dataclass
class ArgsFile:
    """Each node's own arguments (``--args FILE``): a line ``host: words`` is that
    host's (its short or full name); the other lines are taken in turn by rank (node
    ``rank`` gets line ``rank % count``). Blank lines and lines starting with ``#``
    are skipped. Words are split as a shell does (quotes group), and stay data:
    they are quoted again when they reach a command."""

    source: str
    by_host: dict[str, tuple[str, ...]] = field(default_factory=dict)
    by_rank: list[tuple[str, ...]] = field(default_factory=list)

    @classmethod
    def read(cls, path: str | Path) -> ArgsFile:
        """The file at ``path``; ``PerNodeError`` for a line that cannot be split,
        ``OSError`` for a file that cannot be read."""
        text = Path(path).read_text()
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<args>") -> ArgsFile:
        """The arguments written in ``text`` (``source`` names it in errors)."""
        from .names import hostname_problem

        found = cls(source)
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            named = _HOST_LINE.match(stripped)
            host = named is not None and hostname_problem(named.group(1)) is None
            try:
                words = tuple(shlex.split(stripped[named.end():] if named and host
                                          else stripped))
            except ValueError as exc:
                raise PerNodeError(f"{source}:{number}: {exc}") from None
            if named and host:
                found.by_host[named.group(1)] = words
            else:
                found.by_rank.append(words)
        return found

    def for_node(self, fqdn: str, rank: int) -> tuple[str, ...]:
        """The arguments of the node named ``fqdn``, of index ``rank``."""
        for name in (fqdn, shorten_hostname(fqdn)):
            if name in self.by_host:
                return self.by_host[name]
        if not self.by_rank:
            raise PerNodeError(f"{self.source}: no line for {fqdn} (nor lines by rank)")
        return self.by_rank[rank % len(self.by_rank)]
