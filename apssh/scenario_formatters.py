"""The formatters a YAML scenario can name, and the one that writes a node's output in files.

``formatter:`` takes a name from ``FORMATTERS`` (with the names used before
apssh 0.24), or a mapping ``{type: SubdirFormatter, dir: DIR}``: then each
node's stdout goes to ``DIR/<node id>`` and its stderr to ``DIR/<node id>.err``
(``DIR`` relative to the current directory, as a ``Pull``'s ``localpath``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .formatters import (
    EXTENDED_DATA_STDERR,
    Formatter,
    HostFormatter,
    RawFormatter,
    TimeHostFormatter,
    VerboseFormatter,
)
from .names import BadNameError, path_in
from .scenario_checks import Marked, Problem, check_fields

#: the formatter names a scenario may give (with the names used before apssh 0.24)
FORMATTERS: dict[str, Callable[[bool], Formatter]] = {
    "HostFormatter": lambda verbose: HostFormatter(verbose=verbose),
    "ColonFormatter": lambda verbose: HostFormatter(verbose=verbose),
    "TimeHostFormatter": lambda verbose: TimeHostFormatter(verbose=verbose),
    "TimeColonFormatter": lambda verbose: TimeHostFormatter(verbose=verbose),
    "RawFormatter": lambda verbose: RawFormatter(verbose=verbose),
}
#: the formatter that writes each node's output in files (it needs ``dir:``)
NODE_FILES = "SubdirFormatter"


class NodeFilesFormatter(VerboseFormatter):
    """One node's stdout in ``directory/<name>``, its stderr in ``directory/<name>.err``
    (``name`` is the node's id in the scenario), byte for byte. The directory is made,
    and each file emptied, when its first output comes: loading a scenario writes nothing."""

    def __init__(self, directory: str | Path, name: str, *, verbose: bool = False) -> None:
        super().__init__("{linenl}", verbose)
        self.stdout_path = path_in(directory, name)
        self.stderr_path = path_in(directory, f"{name}.err")
        self._started: set[Path] = set()

    def writes_bytes(self) -> bool:
        """True: output is written byte for byte."""
        return True

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        self._write(raw, datatype)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        self._write(line.encode(), datatype)

    def _write(self, raw: bytes, datatype: int | None) -> None:
        path = self.stderr_path if datatype == EXTENDED_DATA_STDERR else self.stdout_path
        if path not in self._started:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
            self._started.add(path)
        with path.open("ab") as file:
            file.write(raw)


def node_formatter(entry: Marked, node_id: str, formatters: dict[tuple[str, bool], Formatter],
                   what: str) -> Formatter:
    """The formatter of node ``node_id`` (``what`` names it in messages). Terminal
    formatters are shared by the nodes that name the same one, so columns line up."""
    spec = entry.get("formatter", "HostFormatter")
    verbose = bool(entry.get("verbose", False))
    line = entry.line_of("formatter")
    directory = None
    if isinstance(spec, Marked):
        check_fields(spec, {"type": "text", "dir": "file"}, f"{what}: formatter")
        if "type" not in spec:
            raise Problem(line, f"{what}: formatter: missing 'type:'")
        spec, directory = spec["type"], spec.get("dir")
    if spec == NODE_FILES:
        if directory is None:
            raise Problem(line, f"{what}: {NODE_FILES} needs a directory: write "
                                f"formatter: {{type: {NODE_FILES}, dir: DIR}}")
        try:
            return NodeFilesFormatter(directory, node_id, verbose=verbose)
        except BadNameError as exc:
            raise Problem(entry.line_of("id"), f"{what}: as a file name: {exc}") from None
    if directory is not None:
        raise Problem(line, f"{what}: formatter: dir: is for {NODE_FILES} only")
    if spec not in FORMATTERS:
        known = ", ".join(sorted([*FORMATTERS, f"{NODE_FILES} (with dir:)"]))
        raise Problem(line, f"{what}: unknown formatter {spec!r} (known: {known})")
    key = (spec, verbose)
    if key not in formatters:
        formatters[key] = FORMATTERS[spec](verbose)
    return formatters[key]
