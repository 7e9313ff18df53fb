"""What a node holds in one event loop, and the asyncssh client of its connection."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ._asyncssh import asyncssh
from .errors import ConnectError
from .remote import Killer

if TYPE_CHECKING:
    from .sshproxy import SshProxy


class State:
    """What a node holds in one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_sessions: int) -> None:
        self.loop = loop
        self.conn: Any = None
        self.sftp: Any = None
        self.pending: asyncio.Future[None] | None = None
        self.failure: ConnectError | None = None
        self.failure_run: object | None = None
        self.sessions = asyncio.Semaphore(max(1, max_sessions - 1))
        #: stops this node's commands, in batches
        self.killer = Killer()
        self.sftp_lock = asyncio.Lock()
        #: the nodes connected through this one, with their state: closed before it
        self.dependents: dict[SshProxy, State] = {}
        #: set when closing starts, done when closed
        self.closing: asyncio.Future[None] | None = None
        #: why each connection of this state was lost, when not on purpose
        self.lost: dict[Any, ConnectError] = {}


class Client(asyncssh.SSHClient):
    """Reports connection events to the node, and applies its host key policy."""

    def __init__(self, proxy: SshProxy) -> None:
        self.proxy = proxy
        self.host_key_problem: str | None = None
        self.conn: Any = None

    def connection_made(self, conn: Any) -> None:
        self.conn = conn

    def auth_completed(self) -> None:
        self.proxy.formatter.auth_completed(self.proxy.hostname, self.proxy.username)

    def connection_lost(self, exc: Exception | None) -> None:
        self.proxy._connection_lost(self.conn, exc)

    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        checker = self.proxy.host_key_checker
        if checker.accept(host, addr, port, key):
            return True
        self.host_key_problem = checker.unknown_or_changed(host, addr, port)
        return False
