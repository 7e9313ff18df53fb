"""SshNode (an SshProxy with the usual defaults) and LocalNode (this machine)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

from .errors import CommandTimeoutError
from .formatters import EXTENDED_DATA_STDERR, Formatter, HostFormatter
from .lines import LineSplitter
from .localproc import forward, kill_group, settle, start_group
from .localproc import status as status_of
from .names import local_user
from .node import scratch_directory
from .process import LocalHandle, Process, open_local
from .shellwrap import check_env
from .sshproxy import SshProxy

#: how much a LocalNode copies at a time (a cancelled copy stops within one chunk)
COPY_CHUNK = 1024 * 1024

_T = TypeVar("_T")


class SshNode(SshProxy):
    """A node to run jobs on: ``username`` defaults to root (unless the ssh config names
    one), keys are found automatically.

    Other keywords as ``SshProxy``; the node can be built anywhere, inside a
    running event loop included.
    """

    default_username = "root"

    def __init__(self, hostname: str, *, username: str | None = None,
                 keys: list[Any] | None = None, **kwds: Any) -> None:
        super().__init__(hostname, username=username, keys=keys, **kwds)


class LocalNode:
    """This machine, as a node: commands run as local subprocesses.

    Without a ``formatter``, a ``HostFormatter()`` of its own, and no warning, as
    0.27. ``env``: variables given to every Run/RunScript/RunString on this node
    (beneath the command's own ``env``). Like 0.27's, it fires no events (no session
    start/end), so even a verbose formatter prints only its output lines: ``LOCALNODE:hello``.
    """

    hostname = "LOCALNODE"
    #: its copies expand ``~`` in local paths (SFTP takes them as they are)
    expands_user = True

    def __init__(self, formatter: Formatter | None = None, verbose: bool | None = None,
                 *, env: dict[str, Any] | None = None) -> None:
        self.username = local_user()
        #: variables exported to each command run on this node (a command's own win)
        self.env = check_env(env)
        # none given: a HostFormatter, as in 0.27 (and no warning, as 0.27); it stays
        # quiet all the same, since this node fires no events
        self.formatter = formatter if formatter is not None else HostFormatter()
        if verbose is not None:
            self.formatter.verbose = verbose  # type: ignore[attr-defined]
        self.formatter.adapt_to_proxy(self)
        self.gateway = None

    def __str__(self) -> str:
        return "LocalNode"

    def __repr__(self) -> str:
        return "<LocalNode>"

    def display_name(self) -> str:
        """``LOCALNODE``: its name in listings and graphs."""
        return self.hostname

    def workdir(self, *, shared: bool = False) -> AbstractAsyncContextManager[str]:
        """A scratch directory under the temporary directory (``$TMPDIR``, ``/tmp``),
        removed on exit; ``shared`` as ``SshProxy.workdir`` (see
        ``node.scratch_directory``)."""
        return scratch_directory(self, tempfile.gettempdir(), shared=shared)

    async def run(self, command: str, *, ignore_outputs: bool = False, cwd: Any = None,
                  timeout: float | None = None, formatter: Formatter | None = None,
                  stdin: bytes | None = None,
                  x11_forwarding: bool = False) -> int | str | None:
        """Run ``command`` in a local shell; returns its exit status, or its signal name.

        ``stdin``, when given, is fed to the command (else it reads nothing). The
        output goes to ``formatter`` (default: the node's) as ``SshProxy.run``
        gives it: bytes cut at line ends, however long the lines; with
        ``ignore_outputs`` it is dropped unread. ``x11_forwarding`` is ignored: a
        local command sees this machine's ``DISPLAY`` already.

        The command runs in its own process group, killed if cancelled or timed
        out (then ``CommandTimeoutError``).
        """
        output = asyncio.subprocess.DEVNULL if ignore_outputs else asyncio.subprocess.PIPE
        feed_from = asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE
        proc = await start_group(command, stdin=feed_from, stdout=output, stderr=output,
                                 cwd=cwd)
        # no session_start/session_stop: 0.27's LocalNode fired no events, so a
        # verbose formatter prints its lines only (no "Session started" on stderr)
        lines = formatter if formatter is not None else self.formatter

        async def lines_of(stream: asyncio.StreamReader | None, datatype: int | None) -> None:
            splitter = LineSplitter(lambda raw: lines.data(raw, datatype, self.hostname))
            try:
                await forward(stream, splitter.feed)
            finally:  # a partial last line is handed over, even when stopped
                splitter.close()

        async def feed() -> None:
            if proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.write(stdin or b"")
                    await proc.stdin.drain()
                proc.stdin.close()

        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                await asyncio.gather(feed(), lines_of(proc.stdout, None),
                                     lines_of(proc.stderr, EXTENDED_DATA_STDERR))
                status = await proc.wait()
        except BaseException as exc:
            kill_group(proc.pid)
            await settle(proc.wait())
            if isinstance(exc, TimeoutError) and deadline.expired():
                raise CommandTimeoutError(str(self), command, timeout or 0) from None
            raise
        return status_of(status)

    def process(self, command: str, **kwds: Any) -> Process:
        """A handle on ``command`` run on this machine, not started yet (see
        ``Process``): ``async with node.process("cmd") as p:`` starts it and kills
        its process group on exit."""
        return Process(self, command, **kwds)

    async def open_process(self, process: Process) -> LocalHandle:
        """Start ``process`` (``Process.start`` calls this) in a session of its own."""
        return await open_local(self.hostname, process)

    async def mkdir(self, localdir: str) -> bool:
        """Create ``localdir`` (and parents)."""
        Path(localdir).expanduser().mkdir(parents=True, exist_ok=True)
        return True

    async def put_file_s(self, localpaths: Any, remotepath: Any, **kwds: Any) -> bool:
        """A local copy, as Push does remotely; cancelled, it returns once the copy
        has stopped (nothing is written after)."""
        await in_thread(_copy, localpaths, remotepath, kwds)
        return True

    async def get_file_s(self, remotepaths: Any, localpath: Any, **kwds: Any) -> bool:
        """A local copy, as Pull does remotely; cancelled, it returns once the copy
        has stopped, so that the Pull's cleanup comes after its last write."""
        await in_thread(_copy, remotepaths, localpath, kwds)
        return True

    async def put_string_script(self, script_body: str, remotefile: str, **kwds: Any) -> bool:
        """Write an executable script."""
        path = Path(remotefile).expanduser()
        path.write_text(script_body)
        path.chmod(0o755)
        return True

    async def remove_file(self, remotefile: str) -> None:
        """Remove a file if it exists."""
        Path(remotefile).expanduser().unlink(missing_ok=True)

    async def chmod(self, remotepath: str, mode: int) -> None:
        """Change the mode of a file."""
        Path(remotepath).expanduser().chmod(mode)

    async def remove_tree(self, remotepath: str) -> None:
        """Remove a directory and what it holds, as far as possible."""
        await asyncio.to_thread(shutil.rmtree, Path(remotepath).expanduser(), True)

    async def connect_lazy(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to close."""


class CopyStopped(Exception):
    """Raised inside a copy's thread when its caller was cancelled."""


async def in_thread(func: Callable[..., _T], *args: Any) -> _T:
    """``func(*args, stop)`` in a thread, ``stop`` a ``threading.Event`` it checks
    between chunks of work. Cancelled, the caller sets ``stop``, waits (shielded)
    until the thread has returned, then re-raises the cancellation."""
    stop = threading.Event()
    work = asyncio.ensure_future(asyncio.to_thread(func, *args, stop))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        stop.set()
        await settle(work)
        raise


def _copy(sources: Any, destination: Any, kwds: dict[str, Any],
          stop: threading.Event) -> None:
    """Copy files (or directories with ``recurse=True``) like SFTP put/get would;
    ``progress_handler(src, dst, copied, total)`` hears of each file before it is
    copied and after each chunk (``error_handler``: SFTP's alone, ignored). Once
    ``stop`` is set, ``CopyStopped`` is raised before the next chunk is written."""
    items = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    target = Path(destination).expanduser()
    several = len(items) > 1
    progress = kwds.get("progress_handler")
    preserve = bool(kwds.get("preserve"))

    def copy_file(source: str, dest: str, *, tree: bool = True) -> None:
        if stop.is_set():
            raise CopyStopped(source)
        if os.path.exists(dest) and os.path.samefile(source, dest):
            raise shutil.SameFileError(f"{source} and {dest} are the same file")
        size = os.path.getsize(source)
        if progress is not None:
            progress(source, dest, 0, size)
        copied = 0
        with open(source, "rb") as reader, open(dest, "wb") as writer:
            while chunk := reader.read(COPY_CHUNK):
                if stop.is_set():
                    raise CopyStopped(source)
                writer.write(chunk)
                copied += len(chunk)
                if progress is not None:
                    progress(source, dest, copied, size)
        if preserve or tree:  # in a tree, modes and times are kept (as copytree did)
            shutil.copystat(source, dest)

    for item in items:
        source = Path(item).expanduser()
        dest = target / source.name if (several or target.is_dir()) else target
        if source.is_dir():
            if not kwds.get("recurse"):
                raise IsADirectoryError(f"{source} is a directory (use recurse=True)")
            shutil.copytree(source, dest, dirs_exist_ok=True, copy_function=copy_file)
        else:
            copy_file(str(source), str(dest), tree=False)
