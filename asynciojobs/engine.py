"""Engine: the seed's name for the scheduler, with its historical methods and defaults.

An ``Engine`` never raises for a failed run: it returns False, as the seed shows.
Its own ``critical`` flag (False by default) is the default of its jobs.
"""

from __future__ import annotations

from typing import Any

from .scheduler import PureScheduler, Scheduler


class Engine(Scheduler):
    """The historical scheduler: ``orchestrate(timeout=...)``, ``rain_check()``...

    ``orchestrate()`` and ``co_orchestrate()`` are those of every scheduler: their
    ``timeout`` and ``jobs_window`` apply to that run only.
    """

    def __init__(self, *jobs_or_sequences: Any, critical: bool = False, **kwds: Any) -> None:
        super().__init__(*jobs_or_sequences, critical=critical, **kwds)

    def default_critical(self) -> bool:
        """Jobs whose ``critical`` is None take the engine's own flag."""
        return bool(self.critical)

    async def co_run(self) -> bool:
        """Run; False (never an exception) when the run failed or timed out."""
        return await PureScheduler.co_run(self)

    def rain_check(self) -> bool:
        """The historical name of ``check_cycles()``."""
        return self.check_cycles()
