"""The embedded lab: N virtual nodes served over real SSH on loopback ports.

Built on asyncssh's server side, in the caller's event loop. Each node runs the
commands it receives as local subprocesses (in their own process group) in a
working directory of its own, and serves SFTP with relative paths resolved there.
The lab generates its host key and a client key, and writes a known_hosts file
and an ssh_config snippet, so clients (apssh, or OpenSSH's ``ssh -F``) keep
host-key checking on. With ``gateway=True``, nodes are named ``fit01``... and
only the lab's gateway resolves those names: clients reach them through it.

    async with Lab(nodes=3) as lab:
        node = lab.ssh_node("node1")
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._asyncssh import asyncssh
from .formatters import Formatter, HostFormatter
from .localproc import kill_group
from .names import local_user
from .nodes import SshNode


@dataclass
class LabNode:
    """One virtual node: its name, where it listens, its working directory."""

    name: str
    port: int
    home: Path
    server: Any = None


class _NodeServer(asyncssh.SSHServer):
    """Accepts the lab's client key for any user; the gateway also forwards by name."""

    def __init__(self, lab: Lab, node: LabNode) -> None:
        self.lab = lab
        self.node = node
        self.conn: Any = None

    def connection_made(self, conn: Any) -> None:
        self.conn = conn
        self.lab._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lab._connections.discard(self.conn)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> Any:
        if self.node is not self.lab.gateway:
            return False
        target = self.lab.by_name.get(dest_host)
        if target is None:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED,
                                            f"unknown host {dest_host} in the lab")
        return _Relay.to(target.port)


class _Relay(asyncssh.SSHTCPSession[bytes]):
    """Pipes a forwarded channel to a local port."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.chan: Any = None
        self.pump: asyncio.Task[None] | None = None

    @classmethod
    async def to(cls, port: int) -> _Relay:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def connection_made(self, chan: Any) -> None:
        self.chan = chan
        self.pump = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        with contextlib.suppress(OSError):
            while data := await self.reader.read(65536):
                self.chan.write(data)
        self.chan.write_eof()

    def data_received(self, data: bytes, datatype: Any) -> None:
        self.writer.write(data)

    def eof_received(self) -> bool:
        with contextlib.suppress(OSError):
            self.writer.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.writer.close()
        if self.pump is not None:
            self.pump.cancel()


class _HomeSFTP(asyncssh.SFTPServer):
    """SFTP where relative paths start in the node's working directory."""

    def __init__(self, chan: Any, home: Path) -> None:
        super().__init__(chan)
        self.home = home

    def map_path(self, path: bytes) -> bytes:
        if not path.startswith(b"/"):
            path = os.fsencode(self.home) + b"/" + path
        return path


class Lab:
    """Virtual nodes over SSH on 127.0.0.1; use ``async with Lab(nodes=5) as lab``."""

    def __init__(self, nodes: int = 5, *, workdir: str | Path | None = None,
                 gateway: bool = False) -> None:
        self.count = nodes
        self.with_gateway = gateway
        self._tmp = None if workdir is not None else tempfile.TemporaryDirectory(
            prefix="nepi-ng-lab-")
        self.workdir = Path(workdir if workdir is not None else self._tmp.name)  # type: ignore[union-attr]
        self.nodes: list[LabNode] = []
        self.gateway: LabNode | None = None
        self.by_name: dict[str, LabNode] = {}
        self.username = local_user()
        self.client_key = self.workdir / "client_key"
        self.known_hosts = self.workdir / "known_hosts"
        self.ssh_config = self.workdir / "ssh_config"
        self._processes: set[asyncio.subprocess.Process] = set()
        self._connections: set[Any] = set()

    async def __aenter__(self) -> Lab:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Generate the keys, start every node, write known_hosts and ssh_config."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key.write_private_key(str(self.client_key))
        self.client_key.chmod(0o600)
        authorized = asyncssh.import_authorized_keys(
            client_key.export_public_key().decode())
        prefix = "fit" if self.with_gateway else "node"
        names = [f"{prefix}{i:02d}" if self.with_gateway else f"node{i}"
                 for i in range(1, self.count + 1)]
        if self.with_gateway:
            names.append("gateway")
        for name in names:
            home = self.workdir / "nodes" / name
            home.mkdir(parents=True, exist_ok=True)
            node = LabNode(name, 0, home)
            node.server = await asyncssh.listen(
                "127.0.0.1", 0, server_factory=lambda n=node: _NodeServer(self, n),
                server_host_keys=[host_key], authorized_client_keys=authorized,
                process_factory=lambda process, n=node: self._serve(process, n),
                sftp_factory=lambda chan, n=node: _HomeSFTP(chan, n.home),
                encoding=None, allow_scp=False)
            node.port = node.server.sockets[0].getsockname()[1]
            self.by_name[name] = node
            if name == "gateway":
                self.gateway = node
            else:
                self.nodes.append(node)
        self._write_client_files(host_key.export_public_key().decode().strip())

    def _write_client_files(self, host_public: str) -> None:
        known, config = [], []
        for node in self.nodes + ([self.gateway] if self.gateway else []):
            behind = self.gateway is not None and node is not self.gateway
            known.append(f"{node.name} {host_public}" if behind
                         else f"[127.0.0.1]:{node.port} {host_public}")
            config.append(f"Host {node.name}\n")
            if behind:
                config.append("  ProxyJump gateway\n")
            else:
                config.append(f"  HostName 127.0.0.1\n  Port {node.port}\n")
            config.append(f"  User {self.username}\n  IdentityFile {self.client_key}\n"
                          f"  UserKnownHostsFile {self.known_hosts}\n"
                          "  StrictHostKeyChecking yes\n")
        self.known_hosts.write_text("\n".join(known) + "\n")
        self.ssh_config.write_text("".join(config))

    async def _serve(self, process: Any, node: LabNode) -> None:
        """Run one command as a local subprocess; kill its group if the client goes."""
        env = dict(os.environ, HOME=str(node.home), SHELL="/bin/sh", LAB_NODE=node.name)
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", process.command or "exec /bin/sh", cwd=node.home, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        self._processes.add(proc)
        feed = asyncio.get_running_loop().create_task(_pump_in(process.stdin, proc.stdin))
        try:
            await asyncio.gather(_pump_out(proc.stdout, process.stdout),
                                 _pump_out(proc.stderr, process.stderr))
            status = await proc.wait()
        except BaseException:
            kill_group(proc.pid)  # the client went away, or the lab stops: nothing left running
            raise
        finally:
            feed.cancel()
            self._processes.discard(proc)
        if status < 0:
            process.exit_with_signal(signal.Signals(-status).name.removeprefix("SIG"))
        else:
            process.exit(status)

    def ssh_node(self, name: str, *, formatter: Formatter | None = None, **kwds: Any
                 ) -> SshNode:
        """An SshNode reaching ``name`` (through the lab's gateway when there is one).

        Without ``formatter``, the node (and the gateway made for it) gets a quiet
        ``HostFormatter(verbose=False)`` of its own (not shared, so not padded):
        output lines ``node1:hello``, no connection or session events, and no
        "no formatter specified" warning; ``verbose=True`` turns the events on.
        """
        node = self.by_name[name]
        given = formatter
        if formatter is None:
            formatter = HostFormatter(verbose=False)
        kwds.setdefault("username", self.username)
        kwds.setdefault("keys", [self.client_key])
        kwds.setdefault("known_hosts", self.known_hosts)
        if self.gateway is not None and node is not self.gateway:
            gateway = kwds.pop("gateway", None) or self.ssh_node("gateway", formatter=given)
            return SshNode(name, gateway=gateway, formatter=formatter, ssh_config=None, **kwds)
        # by name: the lab's ssh_config says where it listens
        kwds.setdefault("ssh_config", self.ssh_config)
        return SshNode(name, formatter=formatter, **kwds)

    async def stop(self) -> None:
        """Stop every node and kill what still runs; remove a temporary workdir."""
        for proc in list(self._processes):
            kill_group(proc.pid)
        for node in [*self.nodes, *([self.gateway] if self.gateway else [])]:
            node.server.close()
            await node.server.wait_closed()
        for conn in list(self._connections):
            conn.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(conn.wait_closed(), 5)
        if self._tmp is not None:
            self._tmp.cleanup()


async def _pump_out(source: asyncio.StreamReader | None, channel: Any) -> None:
    """Forward a subprocess's output to the client until it ends."""
    assert source is not None
    while data := await source.read(65536):
        channel.write(data)


async def _pump_in(channel: Any, sink: asyncio.StreamWriter | None) -> None:
    """Forward what the client sends to the subprocess's stdin."""
    assert sink is not None
    with contextlib.suppress(OSError, asyncssh.Error):
        while data := await channel.read(65536):
            sink.write(data)
            await sink.drain()
        sink.close()

