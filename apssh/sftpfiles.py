"""Files over SFTP for ``SshProxy``: one SFTP session per connection, copies that
give up promptly, and the few file operations commands need.

A copy that is cancelled is cancelled in asyncssh too; asyncssh then closes the
copy's remote file, which a stuck server never acknowledges. After
``COPY_CANCEL_TIMEOUT`` the copy's local files are closed (it can write nothing
more, and leaks no handle) and its SFTP session is dropped: the caller goes on
(for a Pull, removes what it wrote), and the next copy opens a new session. The
stuck copy itself ends when the server answers, or the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ._asyncssh import asyncssh
from .partial import writing
from .remote import consume, session_opened

#: how long a cancelled copy waits for the server to acknowledge it before its SFTP
#: session is dropped (well within the time a scheduler grants a cancelled job)
COPY_CANCEL_TIMEOUT = 1.0

if TYPE_CHECKING:
    from .connection import State
    from .formatters import Formatter



def _local_files(task: asyncio.Task[Any]) -> list[Any]:
    """The local files a pending asyncssh copy holds open (its copier's destination
    or source, found along what the task awaits). Cancelled, the copy closes its
    remote file first and skips the local one when that fails (or waits for a
    stuck server): they are closed by the canceller instead."""
    found = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None)
        holder = frame.f_locals.get("self") if frame is not None else None
        for name in ("_src", "_dst"):
            file = getattr(getattr(holder, name, None), "_file", None)
            if hasattr(file, "close") and hasattr(file, "fileno"):
                found.append(file)
        awaited = getattr(awaited, "cr_await", None)
    return found


def _sftp_channel(sftp: Any) -> Any:
    """The channel an asyncssh ``SFTPClient`` runs on (asyncssh has no public name for
    it), or None."""
    writer = getattr(getattr(sftp, "_handler", None), "_writer", None)
    return getattr(writer, "channel", None)


class SftpFiles:
    """The SFTP part of ``SshProxy`` (a mixin: it uses the node's connection)."""

    if TYPE_CHECKING:
        hostname: str
        formatter: Formatter

        def _state(self) -> State: ...

        async def connect_lazy(self) -> Any: ...

    async def sftp_connect_lazy(self) -> Any:
        """The SFTP client, started on first use (it holds one session)."""
        conn = await self.connect_lazy()
        st = self._state()
        async with st.sftp_lock:
            if st.sftp is None:
                await st.sessions.acquire()
                try:
                    st.sftp = await session_opened(conn.start_sftp_client)
                except BaseException:
                    st.sessions.release()
                    raise
                self.formatter.sftp_start(self.hostname)
        return st.sftp

    def _drop_sftp(self, sftp: Any) -> None:
        """Abort ``sftp``'s channel (what waits on it fails at once) and forget it.
        Its session slot is released only when its channel was found (asyncssh has no
        public name for it): otherwise the session may still be open on the server,
        and its slot stays taken."""
        st = self._state()
        channel = _sftp_channel(sftp)
        if st.sftp is sftp:
            st.sftp = None
            if channel is not None:
                st.sessions.release()
        if channel is not None:
            channel.abort()
        else:
            self.formatter.stderr_line(
                "could not find the SFTP session's channel (asyncssh changed?): "
                "its session slot stays taken\n", self.hostname)

    async def _transfer(self, sftp: Any, transfer: Coroutine[Any, Any, Any]) -> None:
        """Await ``transfer``; cancelled, cancel it, and if it is still there after
        ``COPY_CANCEL_TIMEOUT``, close its local files and drop the SFTP session:
        it can write nothing more once this call is over."""
        task = asyncio.ensure_future(transfer)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            held = _local_files(task)  # before asyncssh's cleanup, which may skip them
            task.cancel()
            await asyncio.wait([task], timeout=COPY_CANCEL_TIMEOUT)
            if not task.done():
                self.formatter.stderr_line(
                    f"a cancelled copy got no answer within {COPY_CANCEL_TIMEOUT}s: "
                    "SFTP session dropped\n", self.hostname)
                self._drop_sftp(sftp)
            for file in held:
                file.close()  # nothing more written; no-op when asyncssh closed it
            task.add_done_callback(consume)
            raise

    async def mkdir(self, remotedir: str) -> bool:
        """Create ``remotedir`` (and its parents) if needed."""
        sftp = await self.sftp_connect_lazy()
        await sftp.makedirs(remotedir, exist_ok=True)
        return True

    async def get_file_s(self, remotepaths: Any, localpath: Any, **kwds: Any) -> bool:
        """SFTP get: one or several remote files or directories into ``localpath``.
        Cancelled, it ends within ``COPY_CANCEL_TIMEOUT`` even if the server is stuck."""
        sftp = await self.sftp_connect_lazy()
        with writing(localpath):  # no other copy's cleanup removes a directory there
            await self._transfer(sftp, sftp.get(remotepaths, localpath, **kwds))
        return True

    async def put_file_s(self, localpaths: Any, remotepath: Any, **kwds: Any) -> bool:
        """SFTP put: one or several local files or directories onto ``remotepath``;
        cancelled, as ``get_file_s``."""
        sftp = await self.sftp_connect_lazy()
        await self._transfer(sftp, sftp.put(localpaths, remotepath, **kwds))
        return True

    async def put_string_script(self, script_body: str, remotefile: str, **kwds: Any) -> bool:
        """Write ``script_body`` into ``remotefile``, executable."""
        sftp = await self.sftp_connect_lazy()
        attrs = asyncssh.SFTPAttrs(permissions=0o755)
        async with sftp.open(remotefile, "w", attrs) as file:
            await file.write(script_body)
        return True

    async def chmod(self, remotepath: str, mode: int) -> None:
        """Change the mode of ``remotepath``."""
        sftp = await self.sftp_connect_lazy()
        await sftp.chmod(remotepath, mode)

    async def remove_file(self, remotefile: str) -> None:
        """Remove ``remotefile``, if it exists."""
        sftp = await self.sftp_connect_lazy()
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await sftp.remove(remotefile)

    async def remove_tree(self, remotepath: str) -> None:
        """Remove the directory ``remotepath`` and what it holds, as far as possible."""
        sftp = await self.sftp_connect_lazy()
        await sftp.rmtree(remotepath, ignore_errors=True)
