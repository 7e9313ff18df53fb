"""ForwardJob: a TCP port forward through a node's ssh connection, as a job.

``ForwardJob(node, listen=0, to="127.0.0.1:5432")`` listens on 127.0.0.1 here
and carries each connection through ``node``'s connection (the one its SshJobs
share) to 127.0.0.1:5432 as seen from the node (``ssh -L``); with
``reverse=True`` it listens on the node and connects to ``to`` here (``ssh -R``).

The job ends as soon as the listener is open: jobs that require it (an ordinary
requirement) start then, while the forward stays open, and its result is the
port it listens on (the one chosen by the system for ``listen=0``; also the
attribute ``port``, and a variable for ``Deferred`` commands through
``capture=Capture(name, variables)``). It is closed when its scheduler ends
(``co_shutdown()``), or earlier by the job ``forward.close_after(*jobs)`` adds:
as soon as those jobs are done.

Ending the job when the listener is open, rather than keeping it running as a
forever job whose dependents would wait for a readiness, keeps the requirement
an ordinary edge: ``required=forward`` reads as it means, in Python and in
YAML, and a listing shows the forward done (listening) or failed.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from asynciojobs import AbstractJob, Job

from .deferred import Capture
from .errors import ApsshError, reason
from .names import hostname_problem
from .sshproxy import SshProxy

#: where a listener binds, and what a bare port connects to, when no host is given
LOOPBACK = "127.0.0.1"


class ForwardError(ApsshError):
    """A forward could not listen: ``node`` (the node's name), ``where`` (host:port)."""

    def __init__(self, node: str, where: str, why: str, reverse: bool) -> None:
        self.node = node
        self.where = where
        self.reason = why
        side = f"on {node}" if reverse else f"here, for {node}"
        super().__init__(f"cannot listen on {where} {side}: {why}")


def parse_endpoint(value: Any, *, listen: bool, what: str = "port") -> tuple[str, int]:
    """``(host, port)`` from ``PORT``, ``"HOST:PORT"``, ``"[V6]:PORT"`` or a
    ``(host, port)`` pair; the host defaults to 127.0.0.1. Port 0 (the system
    chooses) only with ``listen``. Raises ``ValueError`` naming ``what``."""
    wanted = ("a port (0-65535) or HOST:PORT" if listen
              else "HOST:PORT or a port (1-65535)")
    host, port = LOOPBACK, value
    if isinstance(value, tuple) and len(value) == 2:
        host, port = value
    elif isinstance(value, str):
        head, colon, tail = value.strip().rpartition(":")
        if colon:
            host, port = head.removeprefix("[").removesuffix("]") or LOOPBACK, tail
        else:
            port = tail
        if isinstance(port, str) and port.isdigit():
            port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not (
            (0 if listen else 1) <= port <= 65535):
        raise ValueError(f"{what}: must be {wanted}, got {value!r}")
    problem = hostname_problem(host) if isinstance(host, str) else "not a string"
    if problem is not None:
        raise ValueError(f"{what}: bad host {host!r} in {value!r}: {problem}")
    return host, port


def _join(host: str, port: int | str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ForwardJob(AbstractJob):
    """Forward a TCP port through ``node``'s ssh connection (see the module docstring).

    ``listen`` is where the listener binds: a port (0: any free one) or
    ``"HOST:PORT"``, here, or on the node with ``reverse``; ``to`` is where each
    connection goes: ``"HOST:PORT"`` (or a port on 127.0.0.1) as seen from the
    node, or from here with ``reverse``. ``capture`` stores the port listened on
    into its variables once open. Other keywords (``label``, ``required``,
    ``critical``, ``scheduler``) go to ``AbstractJob``.

    A listener that cannot open (the port is in use, the server refuses)
    fails the job with ``ForwardError``, one line naming the node and the port.
    """

    def __init__(self, node: SshProxy, *, listen: int | str | tuple[str, int] = 0,
                 to: int | str | tuple[str, int], reverse: bool = False,
                 capture: Capture | None = None, **kwds: Any) -> None:
        if not isinstance(node, SshProxy):
            raise ValueError(f"ForwardJob: node is expected to be an SshNode, got {node!r}")
        self.node = node
        self.listen_host, self.listen_port = parse_endpoint(listen, listen=True,
                                                            what="ForwardJob: listen")
        self.dest_host, self.dest_port = parse_endpoint(to, listen=False, what="ForwardJob: to")
        self.reverse = bool(reverse)
        self.capture = capture
        #: the port listened on, once open (None before, and after the close)
        self.port: int | None = None
        #: asyncssh's listener while the forward is open
        self.listener: Any = None
        self._last_port: int | None = None
        super().__init__(**kwds)

    # ----- the job
    async def co_run(self) -> int:
        """Open the listener and return its port; the forward stays open."""
        await self.co_close()  # a previous run's, never shut down
        conn = await self.node.connect_lazy()
        opener = conn.forward_remote_port if self.reverse else conn.forward_local_port
        from ._asyncssh import asyncssh

        try:
            listener = await opener(self.listen_host, self.listen_port,
                                    self.dest_host, self.dest_port)
        except (OSError, asyncssh.Error, asyncssh.ChannelListenError) as exc:
            why = (os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno
                   else reason(exc))
            raise ForwardError(str(self.node), _join(self.listen_host, self.listen_port),
                               why, self.reverse) from None
        if listener is None:  # asyncssh's "the request failed", in older versions
            raise ForwardError(str(self.node), _join(self.listen_host, self.listen_port),
                               "refused by the server", self.reverse)
        self.listener = listener
        self.port = self._last_port = int(listener.get_port())
        if self.capture is not None:
            self.capture.store(str(self.port))
        return self.port

    async def co_shutdown(self) -> None:
        """The scheduler ends: close the forward."""
        await self.co_close()

    def close(self) -> None:
        """Close the listener at once (connections already carried may go on)."""
        listener, self.listener, self.port = self.listener, None, None
        if listener is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                listener.close()

    async def co_close(self) -> None:
        """Close the listener and wait until it is closed."""
        listener = self.listener
        self.close()
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.wait_closed()

    def close_after(self, *jobs: Any, label: str | None = None) -> Job:
        """A job that closes this forward as soon as ``jobs`` are done.

        Without ``jobs``, the jobs of this forward's scheduler that require it
        now. The new job joins that scheduler (when there is one); it requires
        ``jobs`` only, so it runs whatever their outcome.
        """
        if not jobs:
            if self.scheduler is None:
                raise ValueError(f"{self.repr_main()}.close_after(): give the jobs, "
                                 "or add the forward to a scheduler first")
            jobs = tuple(job for job in self.scheduler.jobs if self in job.required)
            if not jobs:
                raise ValueError(f"{self.repr_main()}.close_after(): no job requires it")
        return Job(self.co_close, label=label or f"close {self._get_text_label()}",
                   required=jobs, scheduler=self.scheduler)

    # ----- how it is shown
    def spec(self) -> str:
        """``-L 127.0.0.1:43210:127.0.0.1:22`` as ssh writes it (the port chosen, once open)."""
        port = self.port if self.port is not None else self.listen_port
        flag = "-R" if self.reverse else "-L"
        return f"{flag} {_join(self.listen_host, port)}:{_join(self.dest_host, self.dest_port)}"

    def text_label(self) -> str:
        """``forward -L 127.0.0.1:0:127.0.0.1:22``."""
        return f"forward {self.spec()}"

    def graph_label(self) -> str:
        """The job's id, the node, the forward."""
        return f"{self.repr_id()}: {self.node.__user_host__()}\n{self.spec()}"

    def details(self) -> str:
        """As in graphs."""
        return self.graph_label()

    def repr_result(self) -> str:
        """``listening on 127.0.0.1:43210``, ``closed 127.0.0.1:43210``, or the failure."""
        if self.is_done() and not self.raised_exception():
            if self.port is not None:
                return f"listening on {_join(self.listen_host, self.port)}"
            return f"closed {_join(self.listen_host, self._last_port or self.listen_port)}"
        return super().repr_result() if self.is_done() else ""

    def failure_lines(self, exc: BaseException) -> list[str] | None:
        """apssh's own errors in one line, no traceback."""
        lines = super().failure_lines(exc)
        if lines is None and isinstance(exc, ApsshError):
            lines = [f"{type(exc).__name__}: {exc}"]
        return lines
