"""HostJob: one host's job in the command-line tools."""

from __future__ import annotations

from typing import Any

from ..sshjob import SshJob


class HostJob(SshJob):
    """An SshJob that shows on the progress line and, with ``close_when_done`` (the
    tools set it for every host that is not a gateway of others), closes its
    connection when done: connections, file descriptors and memory stay bounded by
    the hosts in flight, not by all the hosts of the run."""

    def __init__(self, node: Any, *, progress: Any = None, close_when_done: bool = False,
                 **kwds: Any) -> None:
        super().__init__(node, **kwds)
        self.progress = progress
        self.close_when_done = close_when_done

    async def co_run(self) -> Any:
        """Run the command, telling the progress line."""
        if self.progress is not None:
            self.progress.started()
        ok = False
        try:
            result = await super().co_run()
            ok = result == 0
            return result
        finally:
            if self.progress is not None:
                self.progress.finished(ok)
            if self.close_when_done:
                await self.node.close()
