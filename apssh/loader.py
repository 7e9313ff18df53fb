"""YamlLoader: scenarios written in YAML (with Jinja2), checked before anything runs.

The file is rendered with Jinja2 when variables are given or its name ends in
``.j2``; names it does not know stay as ``{{ name }}``, for ``Capture`` and
``Deferred`` at run time. Then every mistake a scenario can hold is reported
before a single job starts, as one line naming the file and the line: a YAML
syntax error, an unknown key, an unknown node or job id, a cycle, a
``{{ variable }}`` that is neither given nor captured, a missing script file.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from asynciojobs import CycleError, Scheduler, graph

from . import formatters as formatters_module
from .commands import AbstractCommand, Pull, Push, Run, RunScript, RunString
from .deferred import Capture, Deferred, Variables
from .errors import ApsshError
from .nodes import LocalNode, SshNode
from .service import Service
from .sshjob import SshJob

NODE_KEYS = {"id", "hostname", "gateway", "username", "formatter", "verbose", "port", "keys",
             "known_hosts", "host_key_policy", "timeout", "localnode", "ssh_config"}
JOB_KEYS = {"id", "node", "commands", "command", "required", "critical", "forever",
            "keep_connection", "verbose", "label"}
COMMON = {"type", "label", "verbose", "capture"}
COMMAND_KEYS = {
    "Run": COMMON | {"command", "argv", "x11", "allowed_exits", "ignore_outputs", "timeout"},
    "RunScript": COMMON | {"command", "local_script", "args", "includes", "x11",
                           "allowed_exits", "timeout"},
    "RunString": COMMON | {"command", "script_body", "args", "includes", "x11", "remote_name",
                           "allowed_exits", "timeout"},
    "Push": COMMON | {"localpaths", "remotepath", "recurse", "preserve", "follow_symlinks"},
    "Pull": COMMON | {"remotepaths", "localpath", "recurse", "preserve", "follow_symlinks"},
    "Service": COMMON | {"command", "service_id", "action", "tty", "systemd_type", "environ",
                         "stop_if_running", "since", "output"},
}
_LEFTOVER = re.compile(r"\{\{\s*([A-Za-z_]\w*)")


class ScenarioError(ApsshError, ValueError):
    """A scenario that cannot run; the message names the file and the line (or job)."""


class _Marked(dict[str, Any]):
    """A YAML mapping that remembers the line of each key (1-based)."""

    line = 0
    lines: dict[str, int]


class _MarkingLoader(yaml.SafeLoader):
    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        mapping = _Marked(super().construct_mapping(node, deep=True))  # type: ignore[arg-type]
        mapping.line = node.start_mark.line + 1
        mapping.lines = {key.value: key.start_mark.line + 1 for key, _ in node.value
                         if hasattr(key, "value")}
        return mapping


_MarkingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                               _MarkingLoader.construct_mapping)


class YamlLoader:
    """Load a scenario file into a Scheduler of SshJobs."""

    def __init__(self, filename: str | Path) -> None:
        self.filename = Path(filename)

    def load(self, env: dict[str, Any] | None = None, *,
             save_intermediate: bool | str | Path | None = None) -> Scheduler:
        """The scenario's scheduler; raises ``ScenarioError`` on any mistake."""
        return self.load_with_maps(env, save_intermediate=save_intermediate)[2]

    def load_with_maps(self, env: dict[str, Any] | None = None, *,
                       save_intermediate: bool | str | Path | None = None
                       ) -> tuple[dict[str, Any], dict[str, SshJob], Scheduler]:
        """(nodes by id, jobs by id, scheduler)."""
        try:
            source = self.filename.read_text()
        except OSError as exc:
            raise ScenarioError(f"{self.filename}: cannot read: {exc.strerror}") from None
        text = self._render(source, env)
        self._shifted = text.count("\n") != source.count("\n")
        if save_intermediate:
            self._save(text, save_intermediate)
        try:
            data = yaml.load(text, Loader=_MarkingLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 0
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.error(line, f"YAML syntax: {problem}") from None
        self.variables = Variables(env or {})
        return self._build(data)

    # ----- reading
    def _render(self, source: str, env: dict[str, Any] | None) -> str:
        if env is None and self.filename.suffix != ".j2":
            return source
        import jinja2

        try:
            template = jinja2.Environment(undefined=jinja2.DebugUndefined,
                                          keep_trailing_newline=True).from_string(source)
            return template.render(**(env or {}))
        except jinja2.TemplateError as exc:
            line = getattr(exc, "lineno", 0) or 0
            raise ScenarioError(f"{self.filename}:{line}: Jinja2: {exc}") from None

    def _save(self, text: str, where: bool | str | Path) -> None:
        if where is True:
            name = self.filename
            path = name.with_suffix("") if name.suffix == ".j2" else Path(f"{name}.tmp")
        else:
            path = Path(where)  # type: ignore[arg-type]
        header = (f"# WARNING: this file was produced automatically - DO NOT EDIT !\n"
                  f"# see {self.filename} instead\n")
        path.write_text(header + text)
        print(f"save_intermediate: (over)wrote plain YAML {path}")

    def error(self, line: int, message: str) -> ScenarioError:
        """``file:line: message`` (the rendered line when Jinja2 moved lines)."""
        where = f"{self.filename} (rendered line {line})" if self._shifted and line \
            else f"{self.filename}:{line}"
        return ScenarioError(f"{where}: {message}")

    # ----- building
    def _build(self, data: Any) -> tuple[dict[str, Any], dict[str, SshJob], Scheduler]:
        if not isinstance(data, dict):
            raise self.error(1, "expected a mapping with 'nodes:' and 'jobs:'")
        self._check_keys(data, {"nodes", "jobs"}, "the top level")
        for key in ("nodes", "jobs"):
            if not isinstance(data.get(key), list):
                raise self.error(getattr(data, "lines", {}).get(key, 1),
                                 f"'{key}:' must be a list")
        formatters: dict[str, Any] = {}
        nodes: dict[str, Any] = {}
        for entry in data["nodes"]:
            node_id, node = self._node(entry, nodes, formatters)
            nodes[node_id] = node
        captured = {c["capture"] for j in data["jobs"] if isinstance(j, dict)
                    for c in (j.get("commands") or []) if isinstance(c, dict) and "capture" in c}
        jobs: dict[str, SshJob] = {}
        for entry in data["jobs"]:
            job = self._job(entry, nodes, captured)
            jobs[entry["id"]] = job
        for entry in data["jobs"]:
            required = entry.get("required") or []
            for req in [required] if isinstance(required, str) else required:
                if req not in jobs:
                    raise self.error(entry.lines.get("required", entry.line),
                                     f"job {entry['id']}: unknown job id {req!r} in required")
                jobs[entry["id"]].requires(jobs[req])
        scheduler = Scheduler(*jobs.values())
        try:
            graph.plan_tree(scheduler, check=True)
        except CycleError as exc:
            raise ScenarioError(f"{self.filename}: jobs form a cycle: "
                                + " -> ".join(str(j.label) for j in [*exc.jobs, exc.jobs[0]])
                                ) from None
        except ValueError as exc:
            raise ScenarioError(f"{self.filename}: {exc}") from None
        return nodes, jobs, scheduler

    def _check_keys(self, entry: Any, allowed: set[str], what: str) -> None:
        for key in entry:
            if key not in allowed:
                raise self.error(entry.lines.get(key, entry.line), f"{what}: unknown key {key!r}")

    def _required(self, entry: Any, key: str, what: str) -> Any:
        if key not in entry:
            raise self.error(entry.line, f"{what}: missing '{key}:'")
        return entry[key]

    def _node(self, entry: Any, nodes: dict[str, Any], formatters: dict[str, Any]
              ) -> tuple[str, Any]:
        if not isinstance(entry, _Marked):
            raise self.error(0, f"a node must be a mapping, got {entry!r}")
        node_id = str(self._required(entry, "id", "node"))
        what = f"node {node_id}"
        self._check_keys(entry, NODE_KEYS, what)
        formatter = self._formatter(entry, formatters, what)
        if entry.get("localnode"):
            return node_id, LocalNode(formatter=formatter)
        kwds = {k: entry[k] for k in ("username", "port", "keys", "known_hosts",
                                       "host_key_policy", "timeout", "ssh_config") if k in entry}
        gateway = entry.get("gateway")
        if gateway is not None:
            if gateway not in nodes:
                raise self.error(entry.lines["gateway"], f"{what}: unknown gateway {gateway!r}")
            kwds["gateway"] = nodes[gateway]
        try:
            node = SshNode(str(self._required(entry, "hostname", what)), formatter=formatter,
                           **kwds)
        except (TypeError, ValueError) as exc:
            raise self.error(entry.line, f"{what}: {exc}") from None
        return node_id, node

    def _formatter(self, entry: Any, formatters: dict[str, Any], what: str) -> Any:
        name = entry.get("formatter", "HostFormatter")
        verbose = bool(entry.get("verbose", False))
        key = f"{name}/{verbose}"
        if key not in formatters:
            cls = getattr(formatters_module, str(name), None)
            if not (isinstance(cls, type) and issubclass(cls, formatters_module.Formatter)):
                raise self.error(entry.lines.get("formatter", entry.line),
                                 f"{what}: unknown formatter {name!r}")
            formatters[key] = cls(verbose=verbose)  # type: ignore[call-arg]
        return formatters[key]

    def _job(self, entry: Any, nodes: dict[str, Any], captured: set[str]) -> SshJob:
        if not isinstance(entry, _Marked):
            raise self.error(0, f"a job must be a mapping, got {entry!r}")
        job_id = str(self._required(entry, "id", "job"))
        what = f"job {job_id}"
        self._check_keys(entry, JOB_KEYS, what)
        node_id = self._required(entry, "node", what)
        if node_id not in nodes:
            raise self.error(entry.lines["node"], f"{what}: unknown node id {node_id!r}")
        raw = entry.get("commands", entry.get("command"))
        if raw is None:
            raise self.error(entry.line, f"{what}: missing 'commands:'")
        items = raw if isinstance(raw, list) else [raw]
        commands = [self._command(item, entry, what, captured) for item in items]
        label = entry.get("label")
        return SshJob(nodes[node_id], commands=commands,
                      label=" ".join(str(label).split()) if label else job_id,
                      critical=bool(entry.get("critical", True)),
                      forever=bool(entry.get("forever", False)),
                      keep_connection=bool(entry.get("keep_connection", False)),
                      verbose=entry.get("verbose"))

    def _text(self, value: Any, line: int, what: str, captured: set[str]) -> Any:
        """A string, made Deferred when it still holds ``{{ names }}`` (all captured)."""
        if not isinstance(value, str) or "{{" not in value:
            return value
        for name in _LEFTOVER.findall(value):
            if name not in captured:
                raise self.error(line, f"{what}: {{{{ {name} }}}} is neither given nor "
                                       "captured by a command of the scenario")
        return Deferred(value, self.variables)

    def _command(self, item: Any, job: Any, what: str, captured: set[str]
                 ) -> AbstractCommand:
        if isinstance(item, str):  # a bare string: one Run
            return Run(self._text(item, job.line, what, captured))
        if not isinstance(item, _Marked):
            raise self.error(job.line, f"{what}: a command must be a mapping, got {item!r}")
        kind = item.get("type", "Run")
        if kind not in COMMAND_KEYS:
            raise self.error(item.lines.get("type", item.line),
                             f"{what}: unknown command type {kind!r}")
        self._check_keys(item, COMMAND_KEYS[kind], f"{what}, {kind}")
        line = item.line
        kwds = {k: item[k] for k in item if k not in ("type", "capture", "command", "argv",
                                                       "local_script", "script_body", "args",
                                                       "localpaths", "remotepath",
                                                       "remotepaths", "localpath")}
        if "capture" in item:
            kwds["capture"] = Capture(str(item["capture"]), self.variables)
        text = self._text(item.get("command"), line, what, captured)
        args = item.get("args", [])
        args = [args] if isinstance(args, str) else list(args)  # a string is one argument
        args = [self._text(a, line, what, captured) for a in args]
        try:
            if kind == "Run":
                argv = item.get("argv")
                if argv is None and text is None:
                    raise self.error(line, f"{what}: Run needs 'command:' or 'argv:'")
                parts = [self._text(a, line, what, captured) for a in argv] if argv else [text]
                return Run(*parts, **kwds)
            if kind in ("RunScript", "RunString"):
                return self._script(kind, item, text, args, kwds, line, what, captured)
            if kind == "Push":
                return Push(item["localpaths"], item["remotepath"], **kwds)
            if kind == "Pull":
                return Pull(item["remotepaths"], item["localpath"], **kwds)
            return self._service(item, text, line, what)
        except KeyError as exc:
            raise self.error(line, f"{what}, {kind}: missing '{exc.args[0]}:'") from None
        except (FileNotFoundError, TypeError, ValueError) as exc:
            raise self.error(line, f"{what}, {kind}: {exc}") from None

    def _script(self, kind: str, item: Any, text: Any, args: list[Any], kwds: dict[str, Any],
                line: int, what: str, captured: set[str]) -> AbstractCommand:
        base = self.filename.parent
        includes = [base / p for p in kwds.pop("includes", None) or []]
        missing = [str(p) for p in includes if not p.exists()]
        if missing:
            raise self.error(line, f"{what}, {kind}: include not found: {', '.join(missing)}")
        if kind == "RunScript":
            if "local_script" in item:
                script = item["local_script"]
            elif text is not None:
                script, *more = shlex.split(str(text))
                args = [*more, *args]
            else:
                raise self.error(line, f"{what}: RunScript needs 'local_script:'")
            path = base / str(script)
            if not path.exists():
                raise self.error(item.lines.get("local_script", line),
                                 f"{what}: script not found: {path}")
            return RunScript(path, *args, includes=includes, **kwds)
        body = item.get("script_body")
        if body is None:
            raise self.error(line, f"{what}: RunString needs 'script_body:'")
        return RunString(self._text(body, line, what, captured), *args, includes=includes,
                         **kwds)

    def _service(self, item: Any, text: Any, line: int, what: str) -> AbstractCommand:
        service = Service(text, service_id=str(item["service_id"]),
                          tty=bool(item.get("tty", False)),
                          systemd_type=str(item.get("systemd_type", "simple")),
                          environ=item.get("environ"),
                          stop_if_running=bool(item.get("stop_if_running", True)))
        action = item.get("action", "start")
        if action == "start":
            return service.start_command(label=item.get("label"))
        if action == "stop":
            return service.stop_command(label=item.get("label"))
        if action == "status":
            return service.status_command(output=item.get("output"), label=item.get("label"))
        if action == "journal":
            return service.journal_command(since=item.get("since"), label=item.get("label"))
        raise self.error(line, f"{what}: Service action must be start, stop, status or "
                               f"journal, got {action!r}")
