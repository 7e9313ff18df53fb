"""What a node is, once: the interface jobs, commands and processes use.

``SshNode`` (any ``SshProxy``) and ``LocalNode`` both honour ``Node``; a third kind
of node (a container, a serial console, a sandbox) is added by writing a class that
does, without touching the commands: a command runs its line with ``node.run()``,
puts its scripts into ``node.workdir()`` with the copy methods, and names the node
with ``display_name()``. mypy checks the two we have (see the bottom); ``SshJob``
checks any other at run time (``isinstance(node, Node)``, ``missing_members()``).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .formatters import Formatter
    from .nodes import LocalNode
    from .process import Process, ProcessHandle
    from .sshproxy import SshProxy

__all__ = ["Node", "is_node", "missing_members", "scratch_directory"]


@runtime_checkable
class Node(Protocol):
    """A place to run commands and copy files to and from."""

    #: its name, as shown in front of its output lines
    hostname: str
    #: where its output lines and events go
    formatter: Formatter
    #: whether its copies expand ``~`` in local paths (SFTP takes them as they are)
    expands_user: bool

    def display_name(self) -> str:
        """Its name in listings and graphs (``user@host``, ``LOCALNODE``)."""

    async def run(self, command: str, /, *, timeout: float | None = None,
                  formatter: Formatter | None = None, stdin: bytes | None = None,
                  x11_forwarding: bool = False) -> int | str | None:
        """Run the shell command line ``command``; its exit status, or its signal
        name. Output bytes go to ``formatter.data()`` (default: the node's),
        cut at line ends; ``stdin`` as ``Run``'s; ``timeout`` raises
        ``CommandTimeoutError`` once the command is stopped; ``x11_forwarding``
        asks for X11 (a node without it may ignore it: a local command sees the
        local display)."""

    def workdir(self, *, shared: bool = False) -> AbstractAsyncContextManager[str]:
        """A scratch directory of its own on the node (for an uploaded script and
        its includes), removed on exit. ``shared``: other users of the node must
        be able to read what is put there (a command run through ``sudo -u``)."""

    def process(self, command: str, **kwds: Any) -> Process:
        """A handle on ``command``, not started yet (``Process``)."""

    async def open_process(self, process: Process, /) -> ProcessHandle:
        """Start ``process`` (called by ``Process.start``)."""

    async def mkdir(self, path: str, /) -> bool:
        """Create a directory (and its parents)."""

    async def put_file_s(self, localpaths: Any, remotepath: Any, **kwds: Any) -> bool:
        """Copy local files to the node."""

    async def get_file_s(self, remotepaths: Any, localpath: Any, **kwds: Any) -> bool:
        """Copy files from the node."""

    async def put_string_script(self, script_body: str, remotefile: str,
                                **kwds: Any) -> bool:
        """Write an executable script on the node."""

    async def chmod(self, path: str, mode: int, /) -> None:
        """Change the mode of a file."""

    async def remove_file(self, path: str, /) -> None:
        """Remove a file if it exists."""

    async def remove_tree(self, path: str, /) -> None:
        """Remove a directory and what it holds."""

    async def connect_lazy(self) -> Any:
        """Connect if needed (nothing to do on this machine)."""

    async def close(self) -> None:
        """Close what connects to it."""


#: the classes whose instances were found to be nodes (checking a Protocol at run
#: time reads every member: 13 µs, too much for each of 100,000 jobs)
_NODE_CLASSES: set[type] = set()


def is_node(candidate: object) -> bool:
    """``isinstance(candidate, Node)``, checked once per class."""
    kind = type(candidate)
    if kind in _NODE_CLASSES:
        return True
    if isinstance(candidate, Node):
        _NODE_CLASSES.add(kind)
        return True
    return False


def missing_members(node: object) -> list[str]:
    """The names of ``Node`` that ``node`` lacks (empty for a node)."""
    wanted = [name for name in vars(Node) if not name.startswith("_")]
    wanted += list(Node.__annotations__)
    return sorted({name for name in wanted if not hasattr(node, name)})


@contextlib.asynccontextmanager
async def scratch_directory(node: Node, base: str, *, shared: bool = False
                            ) -> AsyncIterator[str]:
    """A new directory under ``base`` on ``node``, made with the node's own
    ``mkdir``/``chmod``/``remove_tree``, removed (with what it holds) on exit.

    Private (``0700``) by default. ``shared``: ``base/apssh-<random>`` is ``0711``
    (other users may go through, not list it) and the directory given is a second
    random name inside it, ``0755``: another user reaches it only by its name, which
    nobody can list (it shows in the process list while a command runs from it)."""
    top = f"{base.rstrip('/')}/apssh-{secrets.token_hex(8)}"
    await node.mkdir(top)
    try:
        await node.chmod(top, 0o711 if shared else 0o700)
        if not shared:
            yield top
        else:
            inner = f"{top}/{secrets.token_hex(16)}"
            await node.mkdir(inner)
            await node.chmod(inner, 0o755)
            yield inner
    finally:
        await node.remove_tree(top)


if TYPE_CHECKING:
    def _both_are_nodes(ssh: SshProxy, local: LocalNode) -> tuple[Node, Node]:
        """mypy checks here that both kinds of node honour ``Node``."""
        return ssh, local
