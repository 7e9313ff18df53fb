"""The copies an SshJob runs on its node: Push (local files to the node) and Pull
(files from the node), through the node's ``put_file_s`` / ``get_file_s`` (SFTP on
an ssh node, a local copy on a LocalNode). A copy that fails or is cancelled
removes what it wrote (``apssh.partial``); its result is 0 when it completed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from .commands import AbstractCommand
from .errors import ApsshError, CopyError, reason
from .partial import PartialCopy

__all__ = ["Pull", "Push"]


class _Copy(AbstractCommand):
    """A file transfer through the node's ``method`` (SFTP, or a copy on a LocalNode)."""

    preposition = ""
    method = ""

    def __init__(self, sources: Any, destination: Any, *, label: str | None = None,
                 verbose: bool = False, **kwds: Any) -> None:
        super().__init__(label=label, verbose=verbose)
        self.sources = sources
        self.destination = destination
        self.kwds = kwds

    def label_line(self) -> str:
        items = [self.sources] if isinstance(self.sources, str | Path) else list(self.sources)
        first = str(items[0]) if items else "nothing"
        more = f" ... ({len(items)} total)" if len(items) > 1 else ""
        return f"{type(self).__name__}: {first}{more} {self.preposition} {self.destination}"

    def _partial(self, node: Any) -> PartialCopy | None:
        """What to clean up locally if the copy fails (a Pull's files)."""
        return None

    async def co_run(self, node: Any) -> Any:
        self._verbose_message(node, self.label_line())
        partial = self._partial(node)
        try:
            kwds = partial.track(self.kwds) if partial is not None else self.kwds
            await getattr(node, self.method)(self.sources, self.destination, **kwds)
        except ApsshError:  # the connection's errors, as they are
            if partial is not None:
                partial.clean()
            raise
        except Exception as exc:  # what failed, with what was being copied
            raise CopyError(str(node), self.label_line(), _copy_failure(exc, partial)) from exc
        except BaseException:  # cancelled, interrupted: nothing partial left either
            if partial is not None:
                partial.clean()
            raise
        return 0


def _copy_failure(exc: Exception, partial: PartialCopy | None) -> str:
    """One line: the file and why, then what a failed Pull removed or left."""
    # the file is named apart: an OSError's strerror alone
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else reason(exc)
    why = " ".join(why.split())  # one line, whatever the server said
    if partial is None:
        name = getattr(exc, "filename", None)
        return f"{os.fsdecode(name)}: {why}" if name else why
    name = partial.failing_file(exc)
    line = f"{name}: {why}" if name else why
    removed, left = partial.clean()
    if removed:
        line += f" (removed the partial {', '.join(map(str, removed))})"
    if left:
        line += f" (left incomplete: {', '.join(map(str, left))})"
    return line


class Push(_Copy):
    """Copy local files (directories with ``recurse=True``) onto the node."""

    preposition, method = "onto", "put_file_s"

    def __init__(self, localpaths: Any, remotepath: Any, *, label: str | None = None,
                 verbose: bool = False, **kwds: Any) -> None:
        super().__init__(localpaths, remotepath, label=label, verbose=verbose, **kwds)


#: the local directories that running Pulls copy into, and how many of them; the
#: lock makes "count it and make it" and "uncount it and remove what is unused" one
#: step each, for Pulls run from several threads' loops
_PULLING_INTO: Counter[Path] = Counter()
_PULLING_LOCK = threading.Lock()


class Pull(_Copy):
    """Copy files (directories with ``recurse=True``) from the node to here.

    A Pull that fails or is cancelled removes the local files and directories it
    created; a file it overwrote in part cannot be restored and is named in the
    ``CopyError`` instead.

    With ``mkdir=True``, the local directory is created when the Pull runs (not
    before): ``localpath`` itself when there are several remote paths, when it
    ends with ``/`` or is a directory already, else its parent. If the Pull fails,
    the directories it created are removed again, once empty and unless another
    running Pull copies into them."""

    preposition, method = "into", "get_file_s"

    def __init__(self, remotepaths: Any, localpath: Any, *, label: str | None = None,
                 verbose: bool = False, mkdir: bool = False, **kwds: Any) -> None:
        super().__init__(remotepaths, localpath, label=label, verbose=verbose, **kwds)
        self.mkdir = mkdir

    def _partial(self, node: Any) -> PartialCopy | None:
        return PartialCopy(self.sources, self.destination, recurse=bool(self.kwds.get("recurse")),
                           expand_user=node.expands_user)

    def _directory(self, node: Any) -> Path:
        """The local directory this Pull writes into."""
        items = [self.sources] if isinstance(self.sources, str | Path) else list(self.sources)
        name = os.fspath(self.destination)
        local = Path(os.path.expanduser(name) if node.expands_user else name)
        if len(items) > 1 or name.endswith("/") or local.is_dir():
            return local
        return local.parent

    async def co_run(self, node: Any) -> Any:
        if not self.mkdir:
            return await super().co_run(node)
        directory = self._directory(node).absolute()
        created: list[Path] = []
        done = False
        try:
            with _PULLING_LOCK:
                _PULLING_INTO[directory] += 1
                try:
                    _make_directory(directory, created)
                except OSError as exc:
                    raise CopyError(str(node), self.label_line(),
                                    _copy_failure(exc, None)) from exc
            result = await super().co_run(node)
            done = True
            return result
        finally:
            with _PULLING_LOCK:
                _PULLING_INTO[directory] -= 1
                if not _PULLING_INTO[directory]:
                    del _PULLING_INTO[directory]
                if not done:
                    _unmake_directories(created)


def _make_directory(directory: Path, created: list[Path]) -> None:
    """Make ``directory`` and its missing parents; each one made is added to
    ``created`` (top first) as soon as it exists."""
    missing = [path for path in (directory, *directory.parents) if not path.is_dir()]
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:  # made by another job meanwhile: not ours
            if not path.is_dir():
                raise
        else:
            created.append(path)


def _unmake_directories(created: list[Path]) -> None:
    """Remove the directories of ``created`` (deepest first) that are empty and
    that no running Pull copies into."""
    for path in reversed(created):
        if any(path == used or path in used.parents for used in _PULLING_INTO):
            continue
        with contextlib.suppress(OSError):
            path.rmdir()
