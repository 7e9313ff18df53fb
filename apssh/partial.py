"""What a failed Pull leaves behind: found, then removed.

Before a Pull writes anything, the local paths it may write are noted (whether
each exists, and for an existing directory filled recursively, what it holds).
While it copies, the files it opens are noted too (asyncssh's ``progress_handler``
names each destination file as it is written, its ``error_handler`` the one that
failed). When the copy fails or is cancelled, only what this copy wrote and did
not exist before is removed: those files (and a target file that did not exist
before, which asyncssh may have created before it reported anything), then the
directories above them that it created, once empty, unless another copy of this
process is writing at or under them (``writing()``, which SFTP copies hold while
they run): directories may be shared by concurrent copies, and one copy
removing a directory another one just made would make that one fail. Files
other jobs wrote meanwhile in the same directories stay (``appull -t a,b
@:results/ ./`` with one host failing keeps the other's files). A file that
existed and was overwritten, maybe in part, cannot be restored: it is named
instead.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

#: the local destinations copies of this process are writing into now, with how many
_writing: Counter[str] = Counter()


@contextlib.contextmanager
def writing(destination: Any) -> Iterator[None]:
    """While in it, a copy writes at or under the local path ``destination``: no
    failed copy removes a directory there, or above it."""
    key = os.path.abspath(os.fsdecode(destination))
    _writing[key] += 1
    try:
        yield
    finally:
        _writing[key] -= 1
        if not _writing[key]:
            del _writing[key]


def _in_use(directory: Path) -> bool:
    """Whether a running copy writes at, under or above ``directory``."""
    path = os.path.abspath(directory)
    return any(path == other or other.startswith(path.rstrip(os.sep) + os.sep)
               or path.startswith(other.rstrip(os.sep) + os.sep) for other in _writing)


def _walk(directory: Path) -> set[Path]:
    found: set[Path] = set()
    for root, dirs, files in os.walk(directory):
        found.update(Path(root) / name for name in (*dirs, *files))
    return found


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _path(name: Any) -> Path:
    return Path(os.fsdecode(name))


class PartialCopy:
    """The local paths a copy of ``sources`` into ``destination`` may write, as they
    were before it (``recurse``: sources can be directories); ``track()`` gives the
    copy the hooks that note what it writes."""

    def __init__(self, sources: Any, destination: Any, *, recurse: bool = False,
                 expand_user: bool = False) -> None:
        items = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
        dest = Path(os.path.expanduser(destination) if expand_user else destination)
        self.sources = [str(item) for item in items]
        self.targets = ([dest / PurePosixPath(str(item)).name for item in items]
                        if dest.is_dir() else [dest])
        self.existed = {target: os.path.lexists(target) for target in self.targets}
        self.contents = {target: _walk(target) for target in self.targets
                         if recurse and target.is_dir() and not target.is_symlink()}
        self.stamps = {target: _stamp(target) for target in self.targets if target.is_file()}
        #: the local paths this copy wrote (files, or a directory it failed in)
        self.written: set[Path] = set()
        #: where the copy failed: (source, destination), as asyncssh said first
        self.failed_at: tuple[str, Path] | None = None

    def track(self, kwds: dict[str, Any]) -> dict[str, Any]:
        """``kwds`` for the copy, with a ``progress_handler`` and an ``error_handler``
        that note what it writes (the caller's own handlers are called too)."""
        progress: Callable[..., None] | None = kwds.get("progress_handler")
        on_error: Callable[[Exception], None] | None = kwds.get("error_handler")

        def progress_handler(srcpath: Any, dstpath: Any, copied: int, total: int) -> None:
            self.written.add(_path(dstpath))
            if progress is not None:
                progress(srcpath, dstpath, copied, total)

        def error_handler(exc: Exception) -> None:
            # asyncssh calls it at each level of a recursive copy, deepest first
            dstpath = getattr(exc, "dstpath", None)
            if dstpath is not None:
                self.written.add(_path(dstpath))
                if self.failed_at is None:
                    self.failed_at = (os.fsdecode(getattr(exc, "srcpath", b"") or b""),
                                      _path(dstpath))
            if on_error is None:
                raise exc
            on_error(exc)

        return {**kwds, "progress_handler": progress_handler, "error_handler": error_handler}

    def _target_of(self, path: Path) -> Path | None:
        for target in self.targets:
            if path == target or target in path.parents:
                return target
        return None

    def _existed_before(self, path: Path) -> bool:
        target = self._target_of(path)
        if target is None or not self.existed[target]:
            return False
        if target in self.contents:
            return path == target or path in self.contents[target]
        return True

    def clean(self) -> tuple[list[Path], list[Path]]:
        """Remove what the copy wrote that did not exist before; ``(removed, left)``:
        the paths removed, and those that existed before and were written (maybe
        incomplete now), or could not be removed."""
        removed: list[Path] = []
        left: list[Path] = []
        created_dirs: set[Path] = set()
        # a target file that was not there before is this copy's, even if asyncssh
        # created it before reporting anything (a server stuck on the first read)
        written = self.written | {target for target, existed in self.existed.items()
                                  if not existed and os.path.lexists(target)
                                  and (target.is_symlink() or not target.is_dir())}
        for path in sorted(written, key=lambda p: len(p.parts), reverse=True):
            target = self._target_of(path)
            if target is None:
                continue
            created_dirs.update(parent for parent in (path, *path.parents)
                                if (parent == target or target in parent.parents)
                                and not self._existed_before(parent))
            if self._existed_before(path):
                if not path.is_dir() and (path not in self.stamps
                                          or _stamp(path) != self.stamps[path]):
                    left.append(path)
                continue
            if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
                try:
                    path.unlink()
                    removed.append(path)
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(path)
        # the directories it created, deepest first, once empty (others' files stay),
        # unless another copy is writing there: it may have just made it its own
        for directory in sorted(created_dirs, key=lambda p: len(p.parts), reverse=True):
            if _in_use(directory):
                continue
            with contextlib.suppress(OSError):
                directory.rmdir()
                removed.append(directory)
        return removed, left

    def failing_file(self, exc: BaseException) -> str:
        """The file ``exc`` is about: its own ``filename``; else where the copy
        failed, local (``OSError``) or remote; else the one target or source."""
        name = getattr(exc, "filename", None)
        if name:
            return os.fsdecode(name)
        local = isinstance(exc, OSError)
        if self.failed_at is not None:
            source, destination = self.failed_at
            if local or not source:
                return str(destination)
            return source
        if local:
            return str(self.targets[0]) if len(self.targets) == 1 else ""
        return self.sources[0] if len(self.sources) == 1 else ""
