"""PrintJob: a job that prints a message, and optionally sleeps; handy in scenarios."""

from __future__ import annotations

import asyncio
from typing import Any

from .job import AbstractJob


class PrintJob(AbstractJob):
    """Print ``messages`` (after ``banner`` if given), then sleep ``sleep`` seconds if given.

    Other keywords (``label``, ``required``, ``scheduler``, ``critical``,
    ``forever``) go to ``AbstractJob``.
    """

    def __init__(
        self, *messages: Any, sleep: float | None = None, banner: str | None = None, **kwds: Any
    ) -> None:
        self.messages = messages
        self.sleep = sleep
        self.banner = banner
        super().__init__(**kwds)

    async def co_run(self) -> None:
        """Print, then sleep."""
        if self.banner is not None:
            print(self.banner + " ", end="")
        print(*self.messages)
        if self.sleep:
            print(f"Sleeping for {self.sleep}s")
            await asyncio.sleep(self.sleep)

    def details(self) -> str:
        """``[+ sleep Ns] msg= first message...``."""
        text = f"[+ sleep {self.sleep}s] " if self.sleep else ""
        first = self.messages[0] if self.messages else ""
        more = "..." if len(self.messages) > 1 else ""
        return f"{text}msg= {first}{more}"
