"""The formatters a YAML scenario can name.

``formatter:`` takes a name from ``FORMATTERS`` (with the names used before
apssh 0.24), or a mapping ``{type: SubdirFormatter, dir: DIR}``: then each
node's stdout goes to ``DIR/<node id>`` and its stderr to ``DIR/<node id>.err``
(``DIR`` relative to the current directory, as a ``Pull``'s ``localpath``),
through a ``SubdirFormatter`` of its own, named by the node's id and lazy:
loading a scenario writes nothing, the directory is made on first output.
Every node gets a formatter object of its own, as in apssh 0.27: output lines
read ``fit01:hello``, never padded to another node's name.
"""

from __future__ import annotations

from collections.abc import Callable

from .formatters import (
    Formatter,
    HostFormatter,
    RawFormatter,
    SubdirFormatter,
    TimeHostFormatter,
)
from .names import BadNameError
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


def node_formatter(entry: Marked, node_id: str, what: str) -> Formatter:
    """The formatter of node ``node_id`` (``what`` names it in messages): a new one
    for each node, as in apssh 0.27 (no columns padded to the other nodes' names)."""
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
            return SubdirFormatter(str(directory), verbose=verbose, file_name=node_id,
                                   lazy=True)
        except BadNameError as exc:
            raise Problem(entry.line_of("id"), f"{what}: as a file name: {exc}") from None
    if directory is not None:
        raise Problem(line, f"{what}: formatter: dir: is for {NODE_FILES} only")
    if spec not in FORMATTERS:
        known = ", ".join(sorted([*FORMATTERS, f"{NODE_FILES} (with dir:)"]))
        raise Problem(line, f"{what}: unknown formatter {spec!r} (known: {known})")
    return FORMATTERS[spec](verbose)
