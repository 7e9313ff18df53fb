"""What a node is, once: the interface jobs, commands and processes use.

``SshNode`` (any ``SshProxy``) and ``LocalNode`` both honour ``Node``; a third kind
of node (a container, a serial console) is added by writing a class that does,
without touching the commands. mypy checks the two we have (see the bottom).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .formatters import Formatter
    from .nodes import LocalNode
    from .process import Process, ProcessHandle
    from .sshproxy import SshProxy

__all__ = ["Node"]


@runtime_checkable
class Node(Protocol):
    """A place to run commands and copy files to and from."""

    #: its name, as shown in front of its output lines
    hostname: str
    #: where its output lines and events go
    formatter: Formatter

    async def run(self, command: str, /, *, timeout: float | None = None,
                  formatter: Formatter | None = None,
                  stdin: bytes | None = None) -> int | str | None:
        """Run ``command``; its exit status, or its signal name."""

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


if TYPE_CHECKING:
    def _both_are_nodes(ssh: SshProxy, local: LocalNode) -> tuple[Node, Node]:
        """mypy checks here that both kinds of node honour ``Node``."""
        return ssh, local
