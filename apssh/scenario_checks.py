"""The checks a YAML scenario goes through before anything runs (see ``loader.py``).

- ``MarkingLoader`` parses YAML into mappings and lists that remember the line of
  each key and item, and refuses a key given twice in one mapping (PyYAML keeps
  the last one silently).
- ``check_fields`` refuses unknown keys and values of the wrong kind (a port that
  is not a number, ``keys:`` given as a string, ``timeout: soon``...), following
  the schemas ``NODE``, ``LOCAL_NODE``, ``JOB`` and ``COMMANDS`` (and
  ``scenario_forward.FORWARD``).
- ``check_node_names`` refuses a host or user name that ``apssh.names`` refuses,
  and a ``{{ name }}`` left undefined where it must be known before the run.
- ``check_late_names`` refuses a ``{{ name }}`` that no command captures before
  the command using it runs.

Each mistake is a ``Problem``: a line of the rendered text and a message; the
loader adds the file name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from .names import hostname_problem, username_problem

LEFTOVER = re.compile(r"\{\{\s*([A-Za-z_]\w*)")


class Problem(Exception):
    """A mistake at ``line`` (1-based, of the rendered text)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


# ----- YAML with lines
class Marked(dict[Any, Any]):
    """A YAML mapping that remembers its line and the line of each key (1-based)."""

    line = 0
    lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        """The line of ``key``, else of the mapping."""
        return self.lines.get(key, self.line)


class MarkedList(list[Any]):
    """A YAML list that remembers its line and the line of each item."""

    line = 0
    lines: list[int]

    def line_of(self, index: int) -> int:
        """The line of item ``index``."""
        return self.lines[index] if index < len(self.lines) else self.line


class MarkingLoader(yaml.SafeLoader):
    """SafeLoader making ``Marked`` mappings and ``MarkedList`` lists; a key given
    twice in one mapping is a ``Problem``."""

    def construct_marked_mapping(self, node: yaml.MappingNode) -> Marked:
        """A mapping, refusing duplicate keys (a ``<<`` merge may still be overridden)."""
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = lines.get(key)
            except TypeError:  # unhashable: SafeLoader says so below
                continue
            if first is not None:
                raise Problem(line, f"key {key!r} given twice in one mapping "
                                    f"(first at line {first})")
            lines[key] = line
        mapping = Marked(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.lines = lines
        return mapping

    def construct_marked_list(self, node: yaml.SequenceNode) -> MarkedList:
        """A list that knows the line of each item."""
        items = MarkedList(self.construct_sequence(node, deep=True))
        items.line = node.start_mark.line + 1
        items.lines = [child.start_mark.line + 1 for child in node.value]
        return items


MarkingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                              MarkingLoader.construct_marked_mapping)
MarkingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG,
                              MarkingLoader.construct_marked_list)


# ----- kinds of values
def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _name(value: Any) -> bool:
    return (isinstance(value, str) and value.strip() != "") or (
        isinstance(value, int) and not isinstance(value, bool))


def _scalar(value: Any) -> bool:
    return isinstance(value, str) or _number(value)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _requirement(value: Any) -> bool:
    return _name(value) or isinstance(value, dict)


def _endpoint(listen: bool) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        from .forward import parse_endpoint

        if isinstance(value, bool) or not isinstance(value, int | str):
            return False
        try:
            parse_endpoint(value, listen=listen)
        except ValueError:
            return False
        return True
    return test


def _one_of(*choices: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: value in choices), "one of " + ", ".join(choices)


#: kind -> (test, what a right value is)
KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "any": (lambda v: True, "anything"),
    "name": (_name, "a name"),
    "names": (lambda v: _name(v) or (isinstance(v, list) and all(map(_name, v))),
              "a job id or a list of job ids"),
    # job ids and {job: ..., when: ...} mappings (see scenario_when.py)
    "requirements": (lambda v: _requirement(v) or (
        isinstance(v, list) and all(map(_requirement, v))), "a job id or a list of job ids"),
    "stream": _one_of("stdout", "stderr", "both"),
    "text": (lambda v: isinstance(v, str), "a string"),
    "label": (_scalar, "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "port": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536,
             "a port number (1-65535)"),
    "seconds": (lambda v: _number(v) and v > 0, "a positive number of seconds"),
    "file": (lambda v: isinstance(v, str), "a file name"),
    "files": (_strings, "a list of file names, e.g. [a, b]"),
    "file_or_files": (lambda v: isinstance(v, str) or _strings(v),
                      "a file name or a list of file names"),
    "args": (lambda v: _scalar(v) or (isinstance(v, list) and all(map(_scalar, v))),
             "a string or a list of strings"),
    "argv": (lambda v: isinstance(v, list) and bool(v) and all(map(_scalar, v)),
             "a non-empty list of strings"),
    "exits": (lambda v: isinstance(v, list) and all(
        isinstance(x, str) or (isinstance(x, int) and not isinstance(x, bool)) for x in v),
              "a list of exit codes or signal names, e.g. [1, TERM]"),
    "environ": (lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and _scalar(x) for k, x in v.items()),
                "a mapping of names to strings"),
    "sudo": (lambda v: v is True or v is False or _name(v),
             "true, false or a user name"),
    "count": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
              "a number >= 0"),
    "identifier": (lambda v: isinstance(v, str) and v.isidentifier(),
                   "a variable name (letters, digits, _)"),
    "commands": (lambda v: isinstance(v, list | str | dict) and v != [],
                 "a list of commands"),
    "formatter": (lambda v: isinstance(v, str | dict), "a formatter name or a mapping"),
    "policy": _one_of("verify", "accept-new", "off"),
    "action": _one_of("start", "stop", "status", "journal"),
    # forward: (see scenario_forward.py)
    "forward": (lambda v: isinstance(v, dict), "a mapping {listen: ..., to: ...}"),
    "listen": (_endpoint(True), "a port (0-65535) or HOST:PORT"),
    "endpoint": (_endpoint(False), "HOST:PORT or a port (1-65535)"),
    "close": _one_of("end", "dependents"),
}

#: keys whose null value means "none" (the others refuse null)
NULLABLE = {"known_hosts", "ssh_config", "required", "label", "args", "includes",
            "allowed_exits", "environ", "since", "output", "env"}

LOCAL_NODE = {"id": "name", "localnode": "bool", "formatter": "formatter", "verbose": "bool",
              "env": "environ", "args": "args"}
NODE = {**LOCAL_NODE, "hostname": "text", "gateway": "name", "username": "text",
        "port": "port", "keys": "files", "known_hosts": "file_or_files",
        "host_key_policy": "policy", "timeout": "seconds", "ssh_config": "file"}
JOB = {"id": "name", "node": "name", "commands": "commands", "command": "commands",
       "required": "requirements", "critical": "bool", "forever": "bool",
       "keep_connection": "bool", "verbose": "bool", "label": "label", "timeout": "seconds",
       "retries": "count", "retry_on_exit": "bool", "forward": "forward"}
_COMMON = {"type": "text", "label": "label", "verbose": "bool"}
_RUN = {**_COMMON, "capture": "identifier", "x11": "bool", "allowed_exits": "exits",
        "timeout": "seconds", "env": "environ", "sudo": "sudo", "retries": "count",
        "retry_on_exit": "bool"}
_UPLOADED = {**_RUN, "command": "text", "args": "args", "includes": "files"}
_COPY = {**_COMMON, "recurse": "bool", "preserve": "bool", "follow_symlinks": "bool"}
COMMANDS: dict[str, dict[str, str]] = {
    "Run": {**_RUN, "command": "text", "argv": "argv", "ignore_outputs": "bool"},
    "RunScript": {**_UPLOADED, "local_script": "file"},
    "RunString": {**{k: v for k, v in _UPLOADED.items() if k != "command"},
                  "script_body": "text", "remote_name": "file"},
    "Push": {**_COPY, "localpaths": "file_or_files", "remotepath": "file"},
    "Pull": {**_COPY, "remotepaths": "file_or_files", "localpath": "file"},
    "Service": {**_COMMON, "capture": "identifier", "command": "text", "service_id": "name",
                "action": "action", "tty": "bool", "systemd_type": "text",
                "environ": "environ", "stop_if_running": "bool", "since": "text",
                "output": "file"},
}
#: keys naming files or directories: a {{ name }} there must be given, a capture is too late
PATH_KEYS = {"keys", "known_hosts", "ssh_config", "local_script", "includes", "remote_name",
             "localpaths", "remotepath", "remotepaths", "localpath", "output", "dir"}
#: keys whose {{ name }} may be filled by an earlier capture
LATE_KEYS = {"command", "argv", "args", "script_body"}


def described(value: Any) -> str:
    """``value`` as a message shows it: ``'soon'``, ``42``, ``a list``, ``nothing``."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_fields(entry: Marked, schema: dict[str, str], what: str) -> None:
    """Refuse a key ``schema`` does not list, a value not of the key's kind, and a
    ``{{ name }}`` left undefined where no capture can fill it (see ``LATE_KEYS``)."""
    for key, value in entry.items():
        kind = schema.get(key) if isinstance(key, str) else None
        if kind is None:
            raise Problem(entry.line_of(key), f"{what}: unknown key {key!r}")
        if value is None and key in NULLABLE:
            continue
        test, wanted = KINDS[kind]
        if not test(value):
            raise Problem(entry.line_of(key),
                          f"{what}: {key}: must be {wanted}, got {described(value)}")
        if key not in LATE_KEYS and key != "commands":  # commands: checked one by one
            for text in value if isinstance(value, list) else [value]:
                check_given(text, entry.line_of(key), f"{what}: {key}", _why(key))


def _why(key: str) -> str:
    if key in ("hostname", "username"):
        return "it is needed before anything runs"
    if key in PATH_KEYS:
        return "a capture cannot fill a path"
    return "a capture can only fill " + ", ".join(f"{k}:" for k in sorted(LATE_KEYS))


def check_given(value: Any, line: int, what: str, why: str) -> None:
    """Refuse a ``{{ name }}`` left undefined in ``value``."""
    names = leftovers(value)
    if names:
        raise Problem(line, f"{what}: {{{{ {names[0]} }}}} is not given ({why})")


def check_node_names(entry: Marked, what: str) -> None:
    """Host and user names, checked as ``apssh.names`` does, before any lookup."""
    for key, problem in (("hostname", hostname_problem), ("username", username_problem)):
        value: Any = entry.get(key)
        if value is None and key == "username":
            continue
        line = entry.line_of(key)
        check_given(value, line, f"{what}: {key}", _why(key))
        reason = problem(value)
        if reason is not None:
            raise Problem(line, f"{what}: bad {key.replace('name', ' name')} {value!r}: "
                                f"{reason}")


def leftovers(value: Any) -> list[str]:
    """The ``{{ names }}`` still in ``value`` (a string, else none)."""
    return LEFTOVER.findall(value) if isinstance(value, str) else []


@dataclass
class LateName:
    """A ``{{ name }}`` used by command ``index`` of job ``job``, at ``line``."""

    job: str
    index: int
    name: str
    line: int


def check_late_names(order: Iterable[str], requires: dict[str, list[str]],
                     captures: dict[str, list[tuple[int, str]]], uses: list[LateName],
                     given: Iterable[str],
                     ready: dict[str, dict[str, list[str]]] | None = None) -> None:
    """Refuse a name no command captures before the command using it: captured by
    an earlier command of its job, or by a job it requires (even indirectly), or
    a named group of a ``when:`` regex it requires (even indirectly).
    ``order`` is a topological order of the job ids (requirements first);
    ``ready[job][req]`` the group names of ``job``'s ``when:`` on ``req`` (that
    job starts while ``req`` runs: ``req``'s own captures are not counted)."""
    ready = ready or {}
    before: dict[str, frozenset[str]] = {}
    for job in order:
        names: set[str] = set()
        for req in requires.get(job, ()):
            names |= before[req]
            groups = ready.get(job, {}).get(req)
            names.update(groups if groups is not None
                         else (name for _, name in captures.get(req, ())))
        before[job] = frozenset(names)
    known = set(given)
    for use in uses:
        if use.name in known or use.name in before[use.job]:
            continue
        here = [index for index, name in captures.get(use.job, ()) if name == use.name]
        if any(index < use.index for index in here):
            continue
        whose = ", ".join(job for job, caught in captures.items() if job != use.job
                          and any(name == use.name for _, name in caught))
        matched = ", ".join(sorted({req for by in ready.values() for req, groups in by.items()
                                    if use.name in groups}))
        whose = whose or (matched and f"{matched} (a when: group)")
        if here:
            hint = "captured by this command or a later one of this job"
        elif whose:
            hint = f"captured by job {whose}, not required before this job"
        else:
            hint = "neither given nor captured by a command of the scenario"
        raise Problem(use.line, f"job {use.job}: {{{{ {use.name} }}}} is {hint}")
