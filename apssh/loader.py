"""YamlLoader: scenarios written in YAML (with Jinja2), checked before anything runs.

The file is rendered with Jinja2 when variables are given or its name ends in
``.j2``; names it does not know stay as ``{{ name }}``, for ``Capture`` and
``Deferred`` at run time. Then every mistake a scenario can hold is reported
before a single job starts, as one line naming the file and the line: a YAML
syntax error, a key given twice, an unknown key, a value of the wrong kind, a
duplicate or unknown node or job id, a cycle, a bad host or user name, a
``{{ variable }}`` that is neither given nor captured before it is used (see
``scenario_checks.py`` for the checks themselves).

Local files (RunScript scripts, includes) are not read by ``load()``: as in
apssh 0.27, a scenario is built (listed, drawn, tested) before its scripts exist,
and its commands read them when they run. ``check()`` refuses a scenario whose
files are missing, in the same one-line form; ``nepi-ng run`` calls it before
running anything.
"""

from __future__ import annotations

import shlex
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from asynciojobs import CycleError, Scheduler, graph

from .commands import AbstractCommand, Run, RunScript, RunString
from .deferred import Capture, Deferred, Variables
from .errors import ApsshError, KeyFileError
from .filecopy import Pull, Push
from .forward import ForwardJob
from .nodes import LocalNode, SshNode
from .scenario_checks import (
    COMMANDS,
    JOB,
    KINDS,
    LOCAL_NODE,
    NODE,
    LateName,
    Marked,
    MarkedList,
    MarkingLoader,
    Problem,
    check_fields,
    check_given,
    check_late_names,
    check_node_names,
    described,
    leftovers,
)
from .scenario_formatters import node_formatter
from .scenario_forward import close_forwards, forward_job
from .scenario_pernode import QUOTED, Values, fill_any, node_values
from .scenario_when import requirements, resolve
from .service import Service
from .sshjob import SshJob

#: command keys given as they are to the command's class
_PASSED = ("label", "verbose", "x11", "allowed_exits", "timeout", "ignore_outputs", "recurse",
           "preserve", "follow_symlinks", "remote_name", "env", "sudo", "retries",
           "retry_on_exit")


class ScenarioError(ApsshError, ValueError):
    """A scenario that cannot run; the message names the file and the line."""


@dataclass
class LocalFile:
    """A local file a scenario's command reads when it runs: checked by ``check()``."""

    line: int
    #: the message when it is missing (after ``file:line: ``)
    missing: str
    path: Path


class YamlLoader:
    """Load a scenario file into a Scheduler of SshJobs."""

    def __init__(self, filename: str | Path) -> None:
        self.filename = Path(filename)
        self._shifted = False
        self.variables = Variables()
        self.rendered: str | None = None
        #: with a dict: nodes written the same way in later loads are the same
        #: objects (their connections kept: a sweep's loads share them)
        self.node_cache: dict[str, Any] | None = None
        #: the local files of the last load, for ``check()``
        self.local_files: list[LocalFile] | None = None

    def load(self, env: dict[str, Any] | None = None, *,
             save_intermediate: bool | str | Path | None = None) -> Scheduler:
        """The scenario's scheduler; raises ``ScenarioError`` on any mistake."""
        return self.load_with_maps(env, save_intermediate=save_intermediate)[2]

    def load_with_maps(self, env: dict[str, Any] | None = None, *,
                       save_intermediate: bool | str | Path | None = None
                       ) -> tuple[dict[str, Any], dict[str, SshJob | ForwardJob], Scheduler]:
        """(nodes by id, jobs by id, scheduler)."""
        source = self._read()
        text = self._render(source, env)
        #: the scenario as the last load read it (Jinja2 rendered), for records
        self.rendered = text
        self._shifted = text.count("\n") != source.count("\n")
        if save_intermediate:
            self._save(text, save_intermediate)
        self.variables = Variables(env or {})
        self.local_files = []
        try:
            return self._build(self._parse(text))
        except Problem as problem:
            self.local_files = None
            raise self.error(problem.line, problem.message) from None

    def check(self) -> None:
        """Refuse the scenario when a local file its commands read is missing (a
        RunScript's script, an include): ``ScenarioError``, one line ``file:line:
        what``. Checks the last ``load()``; without one, loads with no variables (a
        template that needs some is then refused for them). Not done by ``load()``:
        the files are read when the commands run.

        Push sources are not checked: an earlier job may make them."""
        if self.local_files is None:
            self.load()
        for local in sorted(self.local_files or (), key=lambda f: f.line):  # file order
            if not local.path.exists():
                raise self.error(local.line, local.missing)

    # ----- reading
    def _read(self) -> str:
        try:
            data = self.filename.read_bytes()
        except OSError as exc:
            raise ScenarioError(f"{self.filename}: cannot read: {exc.strerror}") from None
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            raise self.error(data[:exc.start].count(b"\n") + 1,
                             f"not a text file (byte {data[exc.start]:#04x} is not UTF-8)"
                             ) from None
        if "\0" in text:
            raise self.error(text[:text.index("\0")].count("\n") + 1,
                             "not a text file (a NUL byte)")
        return text

    def _render(self, source: str, env: dict[str, Any] | None) -> str:
        if env is None and self.filename.suffix != ".j2":
            return source
        import jinja2

        try:
            template = jinja2.Environment(undefined=jinja2.DebugUndefined,
                                          keep_trailing_newline=True).from_string(source)
            return template.render(**(env or {}))
        except Exception as exc:  # a template's own error, or one of its expressions'
            line = getattr(exc, "lineno", None) or next(
                (number for frame, number in reversed(list(traceback.walk_tb(exc.__traceback__)))
                 if frame.f_code.co_filename in ("<template>", "<unknown>")), 1)
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            raise ScenarioError(f"{self.filename}:{line}: Jinja2: {message}") from None

    def _parse(self, text: str) -> Any:
        try:
            return yaml.load(text, Loader=MarkingLoader)  # a SafeLoader
        except yaml.reader.ReaderError as exc:
            raise Problem(text[:exc.position].count("\n") + 1,
                          f"YAML: {exc.reason} ({exc.character!r})") from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            problem = exc.problem or exc.context or "syntax error"
            lines = text.splitlines()
            names = leftovers(lines[line - 1]) if 0 < line <= len(lines) else []
            if names:  # hostname: {{ host }} rendered without host: a YAML mapping
                raise Problem(line, f"{{{{ {names[0]} }}}} is not given (YAML: {problem}; "
                                    "quote a value that starts with {{)") from None
            raise Problem(line, f"YAML syntax: {problem}") from None
        except yaml.YAMLError as exc:
            raise Problem(1, f"YAML: {' '.join(str(exc).split())}") from None

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
        return ScenarioError(f"{where}: {' '.join(message.splitlines())}")

    # ----- building
    def _build(self, data: Any
               ) -> tuple[dict[str, Any], dict[str, SshJob | ForwardJob], Scheduler]:
        if not isinstance(data, Marked):
            raise Problem(1, "expected a mapping with 'nodes:' and 'jobs:'")
        check_fields(data, {"nodes": "any", "jobs": "any"}, "the top level")
        for key in ("nodes", "jobs"):
            if not isinstance(data.get(key), MarkedList):
                raise Problem(data.line_of(key), f"'{key}:' must be a list")
        nodes = self._nodes(data["nodes"])
        return self._jobs(data["jobs"], nodes)

    def _entries(self, items: MarkedList, kind: str) -> list[tuple[str, Marked]]:
        """(id, mapping) of each item, refusing ids given twice."""
        seen: dict[str, int] = {}
        entries = []
        for index, entry in enumerate(items):
            if not isinstance(entry, Marked):
                raise Problem(items.line_of(index),
                              f"a {kind} must be a mapping, got {described(entry)}")
            if "id" not in entry:
                raise Problem(entry.line, f"{kind}: missing 'id:'")
            ident, line = str(entry["id"]), entry.line_of("id")
            if not KINDS["name"][0](entry["id"]):
                raise Problem(line, f"{kind}: id: must be a name, got {described(entry['id'])}")
            if ident in seen:
                raise Problem(line, f"{kind} {ident}: {kind} id given twice "
                                    f"(first at line {seen[ident]})")
            seen[ident] = line
            entries.append((ident, entry))
        return entries

    def _nodes(self, items: MarkedList) -> dict[str, Any]:
        nodes: dict[str, Any] = {}
        #: each node's values ({host}, {rank}...), by node id
        self._values: dict[str, Values] = {}
        for rank, (node_id, entry) in enumerate(self._entries(items, "node")):
            reuse = None
            if self.node_cache is not None:  # the same node as in an earlier load
                reuse = f"{node_id} {sorted((str(k), str(v)) for k, v in entry.items())}"
                if reuse in self.node_cache:
                    nodes[node_id] = self.node_cache[reuse]
                    self._values[node_id] = node_values(entry, nodes[node_id], rank,
                                                        f"node {node_id}")
                    continue
            self._node(nodes, rank, node_id, entry)
            if reuse is not None:
                self.node_cache[reuse] = nodes[node_id]  # type: ignore[index]
        return nodes

    def _node(self, nodes: dict[str, Any], rank: int, node_id: str, entry: Marked) -> None:
        """Build node ``node_id`` from its ``entry`` into ``nodes``."""
        local = entry.get("localnode") is True
        what = f"{'local ' if local else ''}node {node_id}"
        check_fields(entry, LOCAL_NODE if local else NODE, what)
        formatter = node_formatter(entry, node_id, what)
        if local:
            try:
                nodes[node_id] = LocalNode(formatter=formatter, env=entry.get("env"))
            except (TypeError, ValueError) as exc:
                raise Problem(entry.line_of("env"), f"{what}: {exc}") from None
            self._values[node_id] = node_values(entry, nodes[node_id], rank, what)
            return
        if "hostname" not in entry:
            raise Problem(entry.line, f"{what}: missing 'hostname:'")
        check_node_names(entry, what)
        kwds = {k: entry[k] for k in ("username", "port", "keys", "known_hosts",
                                       "host_key_policy", "timeout", "ssh_config", "env")
                if k in entry}
        gateway = entry.get("gateway")
        if gateway is not None:
            if str(gateway) not in nodes:
                raise Problem(entry.line_of("gateway"),
                              f"{what}: unknown gateway {gateway!r} (a node given before)")
            if isinstance(nodes[str(gateway)], LocalNode):
                raise Problem(entry.line_of("gateway"),
                              f"{what}: gateway {gateway!r} is a local node")
            kwds["gateway"] = nodes[str(gateway)]
        try:
            nodes[node_id] = SshNode(entry["hostname"], formatter=formatter, **kwds)
        except (ApsshError, OSError, TypeError, ValueError) as exc:
            line = (entry.line_of("keys") if isinstance(exc, KeyFileError)
                    else entry.line_of("env") if str(exc).startswith("env:")
                    else entry.line)
            raise Problem(line, f"{what}: {exc}") from None
        self._values[node_id] = node_values(entry, nodes[node_id], rank, what)

    def _jobs(self, items: MarkedList, nodes: dict[str, Any]
              ) -> tuple[dict[str, Any], dict[str, SshJob | ForwardJob], Scheduler]:
        entries = self._entries(items, "job")
        self._captures: dict[str, list[tuple[int, str]]] = {}
        self._uses: list[LateName] = []
        jobs: dict[str, SshJob | ForwardJob] = {}
        for job_id, entry in entries:
            jobs[job_id] = self._job(job_id, entry, nodes)
        requires: dict[str, list[str]] = {}
        ready: dict[str, dict[str, list[str]]] = {}  # the names each when: captures
        for job_id, entry in entries:
            found = requirements(entry, f"job {job_id}")
            requires[job_id] = [req.job for req in found]
            required, ready[job_id] = resolve(job_id, found, jobs, self.variables)
            jobs[job_id].requires(required)
        scheduler = Scheduler(*jobs.values())
        ids: dict[Any, str] = {job: job_id for job_id, job in jobs.items()}
        try:
            plan = graph.plan_tree(scheduler)[scheduler]
        except CycleError as exc:
            cycle = [ids[job] for job in exc.jobs]
            order = {job_id: index for index, (job_id, _) in enumerate(entries)}
            start = min(range(len(cycle)), key=lambda i: order[cycle[i]])  # first in the file
            cycle = cycle[start:] + cycle[:start]
            first = dict(entries)[cycle[0]]
            raise Problem(first.line_of("required"),
                          f"jobs form a cycle: {' -> '.join([*cycle, cycle[0]])}") from None
        check_late_names([ids[job] for job in plan.order], requires, self._captures,
                         self._uses, self.variables, ready)
        close_forwards(entries, jobs, requires, scheduler)  # jobs no one requires
        return nodes, jobs, scheduler

    def _job(self, job_id: str, entry: Marked, nodes: dict[str, Any]) -> SshJob | ForwardJob:
        what = f"job {job_id}"
        check_fields(entry, JOB, what)
        if "node" not in entry:
            raise Problem(entry.line, f"{what}: missing 'node:'")
        node_id = str(entry["node"])
        if node_id not in nodes:
            raise Problem(entry.line_of("node"), f"{what}: unknown node id {node_id!r}")
        if "forward" in entry:  # a port forward, not commands (see scenario_forward.py)
            return forward_job(job_id, entry, nodes[node_id], self.variables, self._captures)
        if "commands" in entry and "command" in entry:
            raise Problem(entry.line_of("command"), f"{what}: give commands: or command:, "
                                                    "not both")
        key = "commands" if "commands" in entry else "command"
        if key not in entry:
            raise Problem(entry.line, f"{what}: missing 'commands:'")
        raw = entry[key]
        self._here = self._values[node_id]  # the values its commands are filled with
        items = raw if isinstance(raw, MarkedList) else MarkedList([raw])
        if not isinstance(raw, MarkedList):
            items.line, items.lines = entry.line_of(key), []
        commands = [self._command(item, items.line_of(index), job_id, index)
                    for index, item in enumerate(items)]
        label = entry.get("label")
        return SshJob(nodes[node_id], commands=commands,
                      label=" ".join(str(label).split()) if label else job_id,
                      critical=entry.get("critical", True), forever=entry.get("forever", False),
                      keep_connection=entry.get("keep_connection", False),
                      verbose=entry.get("verbose"), timeout=entry.get("timeout"),
                      retries=entry.get("retries", 0),
                      retry_on_exit=entry.get("retry_on_exit", False))

    def _late(self, value: Any, line: int, job_id: str, index: int) -> Any:
        """A string, made Deferred when it holds ``{{ names }}`` (checked later:
        each must be captured before this command runs)."""
        names = leftovers(value)
        if not names:  # a quoted Jinja2 literal ({{ '{host}' }}) is rendered when run
            quoted = isinstance(value, str) and QUOTED.search(value)
            return Deferred(value, self.variables) if quoted else value
        self._uses.extend(LateName(job_id, index, name, line) for name in names)
        return Deferred(value, self.variables)

    def _command(self, item: Any, line: int, job_id: str, index: int) -> AbstractCommand:
        what = f"job {job_id}"
        if isinstance(item, str):  # a bare string: one Run
            return Run(self._late(fill_any(item, self._here), line, job_id, index))
        if not isinstance(item, Marked):
            raise Problem(line, f"{what}: a command must be a string or a mapping, "
                                f"got {described(item)}")
        kind = item.get("type", "Run")
        if not isinstance(kind, str) or kind not in COMMANDS:
            known = ", ".join(sorted(COMMANDS))
            raise Problem(item.line_of("type"),
                          f"{what}: unknown command type {kind!r} (known: {known})")
        what = f"{what}, {kind}"
        check_fields(item, COMMANDS[kind], what)
        line = item.line
        needed = {"Push": ("localpaths", "remotepath"), "Pull": ("remotepaths", "localpath"),
                  "Service": ("service_id",)}.get(kind, ())
        if kind == "Service" and item.get("action", "start") == "start":
            needed = ("service_id", "command")
        for key in needed:
            if key not in item:
                raise Problem(line, f"{what}: missing '{key}:'")
        if "capture" in item:
            self._captures.setdefault(job_id, []).append((index, item["capture"]))

        def late(value: Any) -> Any:  # the node's values, then the late names
            return self._late(fill_any(value, self._here), line, job_id, index)

        def path(key: str) -> Any:  # the node's values, each one safe path component
            return fill_any(item[key], self._here, path=True)

        kwds = {k: item[k] for k in _PASSED if k in item}
        if "capture" in item:
            kwds["capture"] = Capture(item["capture"], self.variables)
        args = item.get("args") or []
        args = [late(a) for a in ([args] if not isinstance(args, list) else args)]
        try:
            if kind == "Run":
                if ("argv" in item) == ("command" in item):
                    raise Problem(line, f"{what}: needs 'command:' or 'argv:' (one of them)")
                return Run(*[late(a) for a in item.get("argv") or [item["command"]]], **kwds)
            if kind in ("RunScript", "RunString"):
                return self._script(kind, item, args, kwds, late, what)
            if kind == "Push":
                return Push(path("localpaths"), path("remotepath"), **kwds)
            if kind == "Pull":
                return Pull(path("remotepaths"), path("localpath"), **kwds)
            return self._service(item, late(item.get("command")), kwds)
        except (TypeError, ValueError) as exc:
            raise Problem(line, f"{what}: {exc}") from None

    def _script(self, kind: str, item: Marked, args: list[Any], kwds: dict[str, Any],
                late: Callable[[Any], Any], what: str) -> AbstractCommand:
        line = item.line
        base = self.filename.parent
        includes = [base / p for p in item.get("includes") or []]
        self._files(item.line_of("includes"), f"{what}: include not found", includes)
        if kind == "RunString":
            if "script_body" not in item:
                raise Problem(line, f"{what}: needs 'script_body:'")
            return RunString(late(item["script_body"]), *args, includes=includes, **kwds)
        if "local_script" in item:
            script = item["local_script"]
        elif "command" in item:
            words = shlex.split(item["command"])
            if not words or set(leftovers(item["command"])) != {
                    name for word in words for name in leftovers(word)}:
                raise Problem(line, f"{what}: command: must be a script then its arguments "
                                    "({{name}} written without spaces)")
            script, args = words[0], [*map(late, words[1:]), *args]
            check_given(script, line, f"{what}: command", "a capture cannot fill a path")
        else:
            raise Problem(line, f"{what}: needs 'local_script:'")
        path = base / script
        self._files(item.line_of("local_script"), f"{what.partition(',')[0]}: script not found",
                    [path])
        return RunScript(path, *args, includes=includes, **kwds)

    def _files(self, line: int, missing: str, paths: list[Path]) -> None:
        """Record files for ``check()``: ``missing: <path>`` when one is missing."""
        if self.local_files is not None:
            self.local_files.extend(LocalFile(line, f"{missing}: {path}", path)
                                    for path in paths)

    def _service(self, item: Marked, command: Any, kwds: dict[str, Any]) -> AbstractCommand:
        service = Service(command, service_id=str(item["service_id"]),
                          tty=item.get("tty", False),
                          systemd_type=item.get("systemd_type", "simple"),
                          environ={k: str(v) for k, v in (item.get("environ") or {}).items()},
                          stop_if_running=item.get("stop_if_running", True))
        action = item.get("action", "start")
        run = {k: kwds[k] for k in ("label", "verbose", "capture") if k in kwds}
        if action == "start":
            return service.start_command(**run)
        if action == "stop":
            return service.stop_command(**run)
        if action == "status":
            return service.status_command(output=item.get("output"), **run)
        return service.journal_command(since=item.get("since"), **run)
