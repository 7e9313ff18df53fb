"""SshProxy: one ssh connection to a node, shared by all its jobs, opened once.

- The connection opens lazily; concurrent openers share one attempt. A failed
  attempt is remembered until the outermost scheduler run ends, so N jobs on a
  dead node (or behind a dead gateway) fail at once with the same reason.
- Sessions wait in a queue sized on the server's ``MaxSessions`` (10 by default;
  SFTP holds one, one is kept to stop commands) instead of being refused.
- Handshakes are paced (a window that grows while they succeed and halves when
  a server drops one, as sshd does beyond ``MaxStartups``), and a dropped
  handshake is retried with back-off.
- A command runs as its own process group on the node (sshd makes each session a
  new session); when it is cancelled or times out, the group is killed from a
  second session, so nothing is left running.
- A connection belongs to an event loop: used from another loop (the previous
  one being closed), the node reconnects instead of failing.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from asynciojobs import events
from asynciojobs.scheduler import outermost_run

from . import remote, sshconfig
from ._asyncssh import asyncssh
from .connection import Client as _Client
from .connection import State as _State
from .errors import (
    CommandTimeoutError,
    ConnectError,
    ConnectionLostError,
    GatewayError,
    reason,
)
from .failures import classify
from .fdlimit import raise_once
from .formatters import Formatter, no_formatter_given
from .hostkeys import HostKeyChecker, warn_no_check
from .names import check_hostname, check_username, local_user
from .node import scratch_directory
from .pacing import RETRY_DELAYS, pacer
from .process import Process, SshHandle, open_ssh
from .remote import (
    KILL_TIMEOUT,
    LineSession,
    command_started,
    wrap_command,
)
from .sftpfiles import SftpFiles
from .shellwrap import check_env
from .sshoptions import (
    ENCRYPTION_ALGS,
    KEX_ALGS,
    client_keys,
    known_hosts_paths,
    preferred_algs,
    resolve_host_key_policy,
)

#: where private scratch directories go, relative to the remote home
REMOTE_WORKDIR = ".apssh-remote"
#: "not given": distinct from None, which means "none" for known_hosts and ssh_config
DEFAULT: Any = object()

__all__ = ["DEFAULT", "ENCRYPTION_ALGS", "KEX_ALGS", "KILL_TIMEOUT", "SshProxy", "preferred_algs"]


class SshProxy(SftpFiles):
    """How to reach a node over ssh, and the one connection to it.

    ``gateway`` is another node to go through (any depth); ``keys`` the private
    keys to offer (default: the agent, then ``~/.ssh/id_*``, read once);
    ``known_hosts`` a file or list of files (default: the ssh config's
    ``UserKnownHostsFile``, else ``~/.ssh/known_hosts``; ``None`` disables
    checking, as in asyncssh); ``host_key_policy`` is ``verify``, ``accept-new``
    or ``off`` (default: the ssh config's ``StrictHostKeyChecking``, else
    ``verify``; see ``hostkeys``); ``ssh_config`` a config file (default
    ``~/.ssh/config`` when it exists; ``None`` to ignore it); ``timeout`` bounds
    the connection, authentication included (not the wait for a turn when many
    handshakes are paced, see ``pacing``); ``max_sessions`` is the server's
    ``MaxSessions``; ``env`` variables given to every Run/RunScript/RunString on
    this node (beneath the command's own ``env``). The user is ``username``, else
    the ssh config's ``User``, else ``default_username`` (root for ``SshNode``),
    else the local user.
    """

    #: its copies take local paths as they are (``~`` is not expanded)
    expands_user = False
    #: the user when neither the caller nor the ssh config name one; None: the
    #: local user, as OpenSSH does
    default_username: str | None = None

    def __init__(self, hostname: str, *, username: str | None = None,
                 gateway: SshProxy | None = None, keys: list[Any] | None = None,
                 known_hosts: Any = DEFAULT, port: Any = DEFAULT,
                 formatter: Formatter | None = None, verbose: bool | None = None,
                 debug: bool = False, timeout: float = 30, host_key_policy: str | None = None,
                 ssh_config: Any = DEFAULT, max_sessions: int = 10,
                 env: dict[str, Any] | None = None) -> None:
        if not isinstance(hostname, str):
            raise ValueError(f"hostname is expected to be a str, got {hostname!r}")
        # names are data: checked before the ssh config (Match exec) or a resolver sees them
        check_hostname(hostname)
        if username is not None:
            check_username(username)
        if gateway is not None and not isinstance(gateway, SshProxy):
            raise ValueError(f"gateway is expected to be an SshProxy, got {gateway!r}")
        if ssh_config is DEFAULT:
            default = Path.home() / ".ssh" / "config"
            ssh_config = default if default.exists() else None
        self.ssh_config = ssh_config
        # what the caller gives wins, then the ssh config, then the defaults
        config, parsed = (sshconfig.lookup(ssh_config, hostname)
                          if ssh_config is not None else ({}, None))
        self._parsed_config: Any = parsed  # given to asyncssh at each connection
        self.hostname = hostname
        self.username: str = (username or config.get("User") or self.default_username
                              or local_user())
        check_username(self.username)
        self.gateway = gateway
        self.port = int(port if port is not DEFAULT else config.get("Port", 22))
        # keys: key objects, or files to read (once per process), all usable
        self.keys = client_keys(keys, config)
        # none given: 0.27's verbose HostFormatter, and its warning (once per process)
        self.formatter = formatter if formatter is not None else no_formatter_given(self)
        if verbose is not None:
            self.formatter.verbose = verbose  # type: ignore[attr-defined]
        self.formatter.adapt_to_proxy(self)
        self.debug = debug
        self.timeout = timeout
        self.max_sessions = max_sessions
        #: variables exported to each command run on this node (a command's own win)
        self.env = check_env(env)
        if known_hosts is None:
            host_key_policy = "off"
            warn_no_check()
        paths = known_hosts_paths(None if known_hosts is DEFAULT else known_hosts, config)
        self.known_hosts = known_hosts
        self.host_key_checker = HostKeyChecker(
            resolve_host_key_policy(host_key_policy, config), paths)
        self._key_host: str = config.get("Hostname") or hostname  # where ssh-keyscan goes
        self._st: _State | None = None

    # ----- names
    def __user_host__(self) -> str:
        return f"{self.username}@{self.hostname}"

    def display_name(self) -> str:
        """``user@host``: its name in listings and graphs."""
        return self.__user_host__()

    def __str__(self) -> str:
        prefix = f"{self.gateway}->" if self.gateway is not None else ""
        return prefix + self.__user_host__()

    def __repr__(self) -> str:
        keys = f"[{len(self.keys)} keys]" if self.keys else "[no key]"
        links = ("<-SSH->" if self.is_connected() else "") + \
            ("<-SFTP->" if self.is_sftp_connected() else "")
        return f"<{type(self).__name__} {self.__user_host__()} {keys} {links}>".replace(" >", ">")

    def debug_line(self, line: str) -> None:
        """With ``debug``, a line about this node on stderr."""
        if self.debug:
            self.formatter.stderr_line(f"{line} ((from:{self!r}))", self.hostname)

    def distance(self) -> int:
        """1 for a node reached directly, 1 + its gateway's distance otherwise."""
        return 1 if self.gateway is None else 1 + self.gateway.distance()

    # ----- the connection
    def _state(self) -> _State:
        loop = asyncio.get_running_loop()
        st = self._st
        if st is None or st.loop is not loop:
            # a connection belongs to its loop: in another one, start afresh
            st = self._st = _State(loop, self.max_sessions)
        return st

    def is_connected(self) -> bool:
        """True when the connection is open."""
        return self._st is not None and self._st.conn is not None

    def is_sftp_connected(self) -> bool:
        """True when the SFTP subsystem is open."""
        return self._st is not None and self._st.sftp is not None

    async def connect_lazy(self) -> Any:
        """The connection, opened on first use; concurrent callers share one attempt.

        Raises a ``ConnectError`` subclass; a failure is remembered (and raised
        again at once) until the outermost scheduler run ends.
        """
        st = self._state()
        while True:
            if st.conn is not None:
                return st.conn
            if st.failure is not None:
                run = outermost_run()
                if run is not None and run is st.failure_run:
                    raise st.failure
                st.failure = None
            if st.pending is not None:
                await asyncio.shield(st.pending)
                continue
            pending = st.pending = st.loop.create_future()
            began = time.time()
            try:
                st.conn = await self._open()
                if (bus := events.emitting()) is not None:
                    bus.emit(events.ConnectionOpened(node=self.hostname, user=self.username,
                                                     duration=time.time() - began))
                return st.conn
            except ConnectError as exc:
                st.failure, st.failure_run = exc, outermost_run()
                self.formatter.connection_lost(self.hostname, exc, self.username)
                if (bus := events.emitting()) is not None:
                    bus.emit(events.ConnectionFailed(node=self.hostname, reason=reason(exc),
                                                     duration=time.time() - began))
                raise
            finally:
                st.pending = None
                pending.set_result(None)

    def forget_failure(self) -> None:
        """Forget a failed connection, so that the next command tries again (a
        retry) instead of raising the remembered failure at once."""
        if self._st is not None:
            self._st.failure = None

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "username": self.username,
            "known_hosts": self.host_key_checker.known_hosts(),
            **preferred_algs(),
            "x509_trusted_certs": None,
            "client_keys": self.keys,
        }
        if self._parsed_config is not None:
            options["options"] = self._parsed_config  # the config, parsed once for this host
        else:
            options["config"] = [str(self.ssh_config)] if self.ssh_config is not None else None
        return options

    async def _open(self) -> Any:
        node = self.__user_host__()
        gateway_conn = None
        if self.gateway is not None:
            try:
                gateway_conn = await self.gateway.connect_lazy()
            except ConnectError as exc:
                raise GatewayError(node, exc) from exc
        self.formatter.connection_made(self.hostname, self.username,
                                       self.gateway is None)
        raise_once()  # the first connection of a process: room for many more
        client = _Client(self)
        try:
            return await self._handshake(client, gateway_conn)
        except Exception as exc:  # not a cancellation (a BaseException): goes through
            raise self._classify(exc, client) from exc

    async def _handshake(self, client: _Client, gateway_conn: Any) -> Any:
        """The handshake, retried with back-off when the server drops it. ``timeout``
        bounds the time spent connecting (attempts and back-offs), not the time spent
        waiting for a turn in the pacer: a host is never failed for our own queue,
        and that queue always moves (see ``pacing``)."""
        connect = (asyncssh.create_connection if gateway_conn is None
                   else gateway_conn.create_ssh_connection)
        delays = iter(RETRY_DELAYS)
        pace = pacer()
        loop = asyncio.get_running_loop()
        budget = self.timeout
        while True:
            async with pace:
                began = loop.time()
                try:
                    async with asyncio.timeout(budget):
                        conn, _ = await connect(lambda: client, self.hostname, self.port,
                                                **self._options())
                except (ConnectionResetError, asyncssh.ConnectionLost, BrokenPipeError):
                    pace.reset()
                    delay = next(delays, None)
                    if delay is None:
                        raise
                else:
                    pace.succeeded()
                    if self.gateway is not None:
                        self.gateway._state().dependents[self] = self._state()
                    return conn
                finally:
                    if budget is not None:
                        budget -= loop.time() - began
            # back-off before trying again, out of the window, counted in the budget
            if budget is not None:
                if budget <= delay:
                    raise TimeoutError
                budget -= delay
            await asyncio.sleep(delay)

    def _classify(self, exc: Exception, client: _Client) -> ConnectError:
        hint = None
        if client.host_key_problem == "unknown":
            gateway = self.gateway
            hint = self.host_key_checker.accept_hint(
                self.hostname, self._key_host, self.port,
                None if gateway is None else gateway.__user_host__()
                + (f" -p {gateway.port}" if gateway.port != 22 else ""))
        return classify(exc, self.__user_host__(), self.timeout, client.host_key_problem, hint)

    def _connection_lost(self, conn: Any, exc: Exception | None) -> None:
        """asyncssh says ``conn`` is closed. A close we asked for (``close()``, or
        our gateway's) was reported by whoever closed it; anything else is a loss,
        remembered for the commands that were running on it."""
        st = self._st
        if st is None or st.conn is not conn or conn is None:
            return
        st.conn = None
        if st.sftp is not None:  # its session slot is free again: the state is reused
            st.sftp = None
            st.sessions.release()
        lost = self._loss(exc)
        # a command still running on it has no result: it says why
        st.lost[conn] = lost or ConnectionLostError(self.__user_host__(),
                                                    "connection closed by the server")
        self.formatter.connection_lost(self.hostname, lost, self.username)
        events.emit(events.ConnectionClosed(
            node=self.hostname, reason=None if lost is None else reason(lost)))

    def _loss(self, exc: Exception | None) -> ConnectError | None:
        """Why our connection closed when we did not close it: None for a normal
        close (the server ended it cleanly, or our gateway is being closed)."""
        gateway = self.gateway
        if gateway is not None:
            gw_st = gateway._st
            if gw_st is None or gw_st.closing is not None:
                return None  # the gateway is closed on purpose: so are we
            if gw_st.conn is None:  # the gateway's connection was lost under us
                return ConnectionLostError(self.__user_host__(), "connection lost: gateway "
                                           f"{gateway.__user_host__()} lost")
        if exc is None:
            return None
        return ConnectionLostError(self.__user_host__())

    # ----- commands
    async def run(self, command: str, *, x11_forwarding: bool = False,
                  timeout: float | None = None, formatter: Formatter | None = None,
                  stdin: bytes | None = None, **kwds: Any) -> int | str | None:
        """Run ``command``; returns its exit status, or its signal name, or None.

        ``timeout`` bounds the command (``CommandTimeoutError``); a timed out or
        cancelled command is killed on the node, with its children. Output lines
        go to ``formatter`` (default: the node's). ``stdin``, when given, is sent
        to the command, then end-of-file (``b""``: the command reads ``/dev/null``).
        Once the command exited, its session is closed when its output stays silent
        for ``OUTPUT_GRACE`` seconds (a process it left in the background holds it).
        """
        conn = await self.connect_lazy()
        st = self._state()
        lines = formatter if formatter is not None else self.formatter
        async with st.sessions:
            # cancelled while asyncssh waits for the reply to exec, the command runs
            # already: it is stopped once its session is open
            chan, session = await command_started(
                lambda: conn.create_session(
                    lambda: LineSession(self, command, lines),
                    wrap_command(command, no_input=stdin == b""),
                    encoding=None, x11_forwarding=x11_forwarding, **kwds),
                lambda opened: self._stop_remote(conn, *opened))
            if stdin:
                chan.write(stdin)
                chan.write_eof()
            try:
                async with asyncio.timeout(timeout):
                    if not await session.ended():
                        # exited, its output held open by a process left in the background
                        self.formatter.session_closed_early(self.hostname, command,
                                                            remote.OUTPUT_GRACE)
                        chan.close()
                    if session.error is None:
                        await chan.wait_closed()
            except TimeoutError:
                await self._stop_remote(conn, chan, session)
                raise CommandTimeoutError(self.__user_host__(), command,
                                          timeout or 0) from None
            except asyncio.CancelledError:
                await self._stop_remote(conn, chan, session)
                raise
            if session.error is not None:  # the formatter failed: nothing more is shown
                await self._stop_remote(conn, chan, session)
                raise session.error
        if session.exit is None and conn in st.lost:
            raise st.lost[conn]
        return session.exit

    def workdir(self, *, shared: bool = False) -> AbstractAsyncContextManager[str]:
        """A scratch directory for a command's files, removed on exit: private, under
        ``~/.apssh-remote``; ``shared`` (a script run by another user through
        ``sudo -u``, who cannot enter this user's home), under ``/tmp`` (see
        ``node.scratch_directory``)."""
        return scratch_directory(self, "/tmp" if shared else REMOTE_WORKDIR, shared=shared)

    def process(self, command: str, **kwds: Any) -> Process:
        """A handle on ``command`` run on this node, not started yet (see ``Process``):
        ``async with node.process("cmd") as p:`` starts it and kills it on exit."""
        return Process(self, command, **kwds)

    async def open_process(self, process: Process) -> SshHandle:
        """Start ``process`` (``Process.start`` calls this): it holds a session slot
        until it ends, and is stopped as ``run()``'s commands are."""
        conn = await self.connect_lazy()
        return await open_ssh(self, process, conn, self._state().sessions, self._stop_remote)

    async def _stop_remote(self, conn: Any, chan: Any, session: LineSession) -> None:
        """Kill a command's process group from a second session (one kill session per
        batch of the node's commands being stopped), then close its channel. Waiting
        for the pid and for the batch before this one take ``KILL_TIMEOUT`` at most,
        the kill itself too (``WORST_STOP`` in all, with the session's open)."""
        st = self._state()
        start_by = asyncio.get_running_loop().time() + KILL_TIMEOUT
        try:
            async with asyncio.timeout_at(start_by):
                await asyncio.shield(session.pid_known)
            if session.pid is not None:
                await st.killer.kill(conn, session.pid, start_by)
        except TimeoutError:
            self.formatter.stderr_line(
                f"could not stop a command: no answer within {KILL_TIMEOUT}s\n", self.hostname)
        except (asyncssh.Error, OSError) as exc:
            self.formatter.stderr_line(f"could not stop a command: {exc}\n", self.hostname)
        finally:
            chan.close()

    # ----- closing
    async def close(self) -> None:
        """Close the connection (the nodes behind this one first, then SFTP);
        bounded by ``timeout``, never hangs."""
        st, self._st = self._st, None
        if st is None or st.loop.is_closed():
            return
        if st.loop is not asyncio.get_running_loop():
            st.loop.call_soon_threadsafe(self._abort_state, st)
            return
        await self._close_state(st)

    async def _close_state(self, st: _State) -> None:
        if st.closing is not None:  # already closing: wait for it
            await asyncio.shield(st.closing)
            return
        st.closing = st.loop.create_future()
        if self.gateway is not None and self.gateway._st is not None:
            self.gateway._st.dependents.pop(self, None)
        try:
            # nodes reached through this connection close first: it carries theirs
            for proxy, dependent in list(st.dependents.items()):
                if proxy._st is dependent:
                    proxy._st = None
                await proxy._close_state(dependent)
            sftp, conn = st.sftp, st.conn
            st.sftp = st.conn = None
            if sftp is not None:
                sftp.exit()
                self.formatter.sftp_stop(self.hostname)
            if conn is not None:
                conn.close()
                try:
                    await asyncio.wait_for(conn.wait_closed(), self.timeout)
                except TimeoutError:
                    self.formatter.stderr_line(
                        f"Timeout ({self.timeout}s) while waiting for {self} to close\n",
                        self.hostname)
                self.formatter.connection_lost(self.hostname, None, self.username)
                events.emit(events.ConnectionClosed(node=self.hostname))
        finally:
            st.closing.set_result(None)

    def abort(self) -> None:
        """Drop the connection at once, without the exchange ``close()`` makes: for a
        process about to exit, whose commands are over."""
        st, self._st = self._st, None
        if st is not None and not st.loop.is_closed():
            self._abort_state(st)

    def _abort_state(self, st: _State) -> None:
        for proxy, dependent in list(st.dependents.items()):
            if proxy._st is dependent:
                proxy._st = None
            proxy._abort_state(dependent)
        conn, st.conn, st.sftp = st.conn, None, None
        if conn is not None:
            conn.abort()

    async def __aenter__(self) -> SshProxy:
        await self.connect_lazy()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
