"""What ``apssh`` makes per host: its command (per-node values, ``--args``), and the
``--diff`` view of the outputs against the most common one."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from ..formatters import write_to
from ..names import fold
from ..pernode import ArgsFile, NodeValues, PerNodeError, expand_command, uses
from .errors import UsageError
from .pipe import drop_stream
from .targets import Target


def read_args(path: str | None) -> ArgsFile | None:
    """The ``--args`` file, or None; ``UsageError`` naming the file and the line."""
    if path is None:
        return None
    try:
        return ArgsFile.read(path)
    except PerNodeError as exc:
        raise UsageError(f"--args {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise UsageError(f"--args {path}: {why}") from None


def host_command(args: argparse.Namespace, node: NodeValues, args_file: ArgsFile | None,
                 *, stdin: bytes) -> Any:
    """The command (``Run``, or with ``-s`` ``RunScript``/``RunString``) of one host:
    its values filled in, each shell-quoted; its ``--args`` words where the command
    says ``{args}``, else at its end (after the script's arguments with ``-s``)."""
    from ..commands import Run, RunScript, RunString

    words: tuple[str, ...] = ()
    if args_file is not None:
        try:
            words = args_file.for_node(node.fqdn, node.rank)
        except PerNodeError as exc:
            raise UsageError(f"--args {exc}") from None
    values = {**node.as_dict(), "args": words}
    common = {"stdin": stdin, "timeout": args.command_timeout,
              "sudo": getattr(args, "sudo", None)}
    if not args.script:
        template = " ".join(args.commands)
        if args_file is not None and not uses(template, "args"):
            template += " {args}"
        return Run(expand_command(template, values).rstrip(), **common)
    first, *rest = args.commands
    if args_file is not None and not any(uses(word, "args") for word in rest):
        rest.append("{args}")
    filled = [word for word in (expand_command(word, values) for word in rest) if word]
    if Path(first).is_file():
        return RunScript(first, *filled, includes=args.includes, **common)
    return RunString(first, *filled, includes=args.includes, **common)


def print_diff(outputs: Iterable[tuple[Target, str]], stream: TextIO | None = None) -> None:
    """``--diff``: the most common output is the reference (the first host's, on a
    tie); every other distinct output is shown once as a unified diff against it,
    headed by the folded hosts of each side. Nothing when all outputs are the same."""
    stream = stream or sys.stdout
    groups: dict[str, list[str]] = {}
    for target, text in outputs:
        groups.setdefault(text, []).append(target.host)
    if len(groups) < 2:
        return
    reference = max(groups, key=lambda text: len(groups[text]))  # first on a tie
    ref_hosts = groups[reference]
    try:
        for text, hosts in groups.items():
            if text == reference:
                continue
            lines = difflib.unified_diff(
                reference.splitlines(), text.splitlines(), lineterm="",
                fromfile=f"{fold(ref_hosts)} ({len(ref_hosts)})",
                tofile=f"{fold(hosts)} ({len(hosts)})")
            write_to(stream, "".join(f"{line}\n" for line in lines))
        stream.flush()
    except BrokenPipeError:
        if stream is sys.stdout:
            drop_stream()
