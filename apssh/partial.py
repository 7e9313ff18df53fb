"""What a failed Pull leaves behind: found, then removed.

Before a Pull writes anything, the local paths it may write are noted (whether
each exists, and for an existing directory filled recursively, what it holds).
When the copy fails or is cancelled, what it created is removed: files and
directories that did not exist before. A file that existed and may have been
overwritten in part cannot be restored: it is named instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any


def _walk(directory: Path) -> set[Path]:
    found: set[Path] = set()
    for root, dirs, files in os.walk(directory):
        found.update(Path(root) / name for name in (*dirs, *files))
    return found


def _remove(path: Path) -> bool:
    """Remove a file or a tree; True when nothing is left."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    return not os.path.lexists(path)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class PartialCopy:
    """The local paths a copy of ``sources`` into ``destination`` may write, as they
    were before it (``recurse``: sources can be directories)."""

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

    def clean(self) -> tuple[list[Path], list[Path]]:
        """Remove what the copy created; ``(removed, left)``: the paths removed, and
        those that existed before and were changed (maybe incomplete now), or could
        not be removed."""
        removed: list[Path] = []
        left: list[Path] = []
        for target in self.targets:
            if not self.existed[target]:
                new = [target] if os.path.lexists(target) else []
            elif target in self.contents:
                new = sorted(_walk(target) - self.contents[target], reverse=True)  # deepest first
            else:
                if target in self.stamps and _stamp(target) != self.stamps[target]:
                    left.append(target)
                new = []
            for path in new:
                if os.path.lexists(path):  # not gone with its directory already
                    (removed if _remove(path) else left).append(path)
        return removed, left

    def failing_file(self, exc: BaseException) -> str:
        """The file ``exc`` is about: its own ``filename``; else for a local error
        (``OSError``) the one local target, for a remote one the one source."""
        name = getattr(exc, "filename", None)
        if name:
            return os.fsdecode(name)
        if isinstance(exc, OSError):
            return str(self.targets[0]) if len(self.targets) == 1 else ""
        return self.sources[0] if len(self.sources) == 1 else ""
