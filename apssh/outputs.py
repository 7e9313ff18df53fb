"""A command's stdout and stderr, also sent where the user wants them.

``Run(..., stdout="out/{host}.out", stderr="out/{host}.err")`` (and the same
keywords on ``RunScript``/``RunString``) writes the command's output into files,
byte for byte, besides the node's formatter (which still gets its lines). A target
is one of:

- a path template: ``{host}`` (the short host name), ``{fqdn}``, ``{user}``,
  ``{port}``, ``{rank}`` (the node's ``rank`` attribute) and ``{label}`` (the
  command's label, else its job's) are filled in; ``{{host}}`` is the literal
  ``{host}``, other braces stay as written. Each value must be a single safe path
  component (``names.path_in``): a value never takes the path out of its
  directory. A name without a value (``{rank}`` on a node with no ``rank``,
  ``{label}`` when neither the command nor its job has one, ``{port}`` on a
  ``LocalNode``) is refused rather than left out, so that two nodes never write
  into one file by accident;
- a callable, ``callback(chunk, host, stream)``: each chunk of bytes as it comes
  (cut at line ends), the node's hostname, and ``"stdout"`` or ``"stderr"``; what
  it raises fails the command, which is stopped.

A file is opened (made anew: truncated, its directory created) when the command
starts and closed when it ends, failed or cancelled; a command retried writes
each attempt anew, so the file holds the last one. ``stdout`` and ``stderr``
may name the same file: both go into it, in the order they came. Two commands
running at the same time may not write into the same file (``OutputFileError``).
``ignore_outputs`` hides the output from the formatter, not from these targets.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from asynciojobs.events import Output

from .errors import ApsshError
from .formatters import EXTENDED_DATA_STDERR, Formatter, shorten_hostname
from .names import path_in

#: a chunk's receiver: ``callback(chunk, host, stream)``
OutputCallback = Callable[[bytes, str, str], Any]
#: where a stream goes: a path template, or a callback
OutputTarget = str | os.PathLike[str] | OutputCallback

__all__ = ["OUTPUT_NAMES", "EventTee", "OutputCallback", "OutputFileError", "OutputTarget",
           "OutputTee", "check_target", "expand_output_path", "output_values", "teeing"]

#: the names a path template may use
OUTPUT_NAMES = ("host", "fqdn", "user", "port", "rank", "label")

_PATTERN = re.compile(r"\{\{(" + "|".join(OUTPUT_NAMES) + r")\}\}|\{("
                      + "|".join(OUTPUT_NAMES) + r")\}")

#: the files commands are writing now (absolute paths), and its lock (loops of
#: several threads)
_WRITING: set[Path] = set()
_WRITING_LOCK = threading.Lock()


class OutputFileError(ApsshError, ValueError):
    """An output target that cannot be used: a template name without a value, a
    value that would leave the directory, or a file another command is writing."""


def check_target(stream: str, target: Any) -> OutputTarget | None:
    """``target`` as given for ``stream`` (None: nowhere); ``TypeError`` for what is
    neither a path nor a callable."""
    if target is None or callable(target) or isinstance(target, str | os.PathLike):
        return target
    raise TypeError(f"{stream}: expected a path template or a callable, got {target!r}")


def output_values(node: Any, label: str | None) -> dict[str, str]:
    """The values a path template is filled with on ``node``."""
    hostname = str(node.hostname)
    values = {"host": shorten_hostname(hostname), "fqdn": hostname}
    for name, attribute in (("user", "username"), ("port", "port"), ("rank", "rank")):
        value = getattr(node, attribute, None)
        if value is not None:
            values[name] = str(value)
    if label is not None:
        values["label"] = label
    return values


def expand_output_path(template: str, values: Mapping[str, str], stream: str) -> Path:
    """``template`` filled in with ``values``, in one pass (see the module)."""
    def fill(found: re.Match[str]) -> str:
        literal, name = found.group(1), found.group(2)
        if literal is not None:
            return "{" + literal + "}"
        if name not in values:
            raise OutputFileError(f"{stream}: {template}: no value for {{{name}}} here")
        try:
            path_in(".", values[name])
        except ValueError as exc:
            raise OutputFileError(f"{stream}: {template}: {{{name}}} = {values[name]!r} "
                                  "would leave the directory") from exc
        return values[name]

    return Path(_PATTERN.sub(fill, template))


class OutputTee(Formatter):
    """Hands each chunk to ``inner``, after giving a copy to the sink of its stream
    (``sinks["stdout"]``, ``sinks["stderr"]``, each optional)."""

    def __init__(self, inner: Formatter, sinks: Mapping[str, Callable[[bytes], Any]]) -> None:
        super().__init__()
        self.inner = inner
        self.sinks = dict(sinks)

    def _copy(self, raw: bytes, datatype: int | None) -> None:
        sink = self.sinks.get("stderr" if datatype == EXTENDED_DATA_STDERR else "stdout")
        if sink is not None:
            sink(raw)

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        self._copy(raw, datatype)
        self.inner.data(raw, datatype, hostname)

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        self._copy(line.encode(), datatype)
        self.inner.line(line, datatype, hostname)


class EventTee(OutputTee):
    """Hands each chunk to ``inner``, after sending it as an ``Output`` event of the
    run (for its records and live views), bytes as received: an ``OutputTee`` whose
    copy is the event. One is made for each command a run listens to: it holds its
    fields and nothing else (no ``Formatter.__init__``: it never formats, and takes
    only output, ``data()`` and ``line()``, as what a command's run is given)."""

    def __init__(self, inner: Formatter, job: Any, index: int,
                 emit: Callable[[Output], None], host: str) -> None:
        self.inner, self.job, self.index, self.emit, self.host = (
            inner, job, index, emit, host)

    def _copy(self, raw: bytes, datatype: int | None) -> None:
        self.emit(Output(job=self.job, node=self.host, index=self.index, data=raw,
                         stream="stderr" if datatype == EXTENDED_DATA_STDERR else "stdout"))


@contextlib.contextmanager
def _writing(path: Path, stream: str) -> Iterator[IO[bytes]]:
    """``path`` opened anew for this command alone, closed on exit."""
    key = path.absolute()
    with _WRITING_LOCK:
        if key in _WRITING:
            raise OutputFileError(f"{stream}: {path} is being written by another command")
        _WRITING.add(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as file:
            yield file
    finally:
        with _WRITING_LOCK:
            _WRITING.discard(key)


def _writer(file: IO[bytes]) -> Callable[[bytes], None]:
    def write(raw: bytes) -> None:
        file.write(raw)
        file.flush()  # readable as it comes (tail -f), and nothing left on a crash
    return write


@contextlib.contextmanager
def teeing(formatter: Formatter, targets: Mapping[str, OutputTarget | None], node: Any,
           label: str | None) -> Iterator[Formatter]:
    """``formatter``, with the streams of ``targets`` (``"stdout"``, ``"stderr"``)
    also sent to them while the block runs (``formatter`` itself when none is given).
    Files are opened on entry and closed on exit."""
    wanted = {stream: target for stream, target in targets.items() if target is not None}
    if not wanted:
        yield formatter
        return
    with contextlib.ExitStack() as stack:
        sinks: dict[str, Callable[[bytes], Any]] = {}
        files: dict[Path, Callable[[bytes], None]] = {}
        values: dict[str, str] | None = None
        for stream, target in wanted.items():
            if callable(target):
                sinks[stream] = _calling(target, str(node.hostname), stream)
                continue
            if values is None:
                values = output_values(node, label)
            path = expand_output_path(os.fspath(target), values, stream)
            if path not in files:
                files[path] = _writer(stack.enter_context(_writing(path, stream)))
            sinks[stream] = files[path]
        yield OutputTee(formatter, sinks)


def _calling(callback: OutputCallback, host: str, stream: str) -> Callable[[bytes], Any]:
    return lambda raw: callback(raw, host, stream)
