"""The debug switch: asyncio's debug mode and a traceback for each failing job."""

from __future__ import annotations

#: when True, runs enable asyncio debug mode and print each failing job's traceback
DEBUG = False


def set_debug(debug: bool = True) -> None:
    """Turn debugging of scheduler runs on or off."""
    global DEBUG
    DEBUG = bool(debug)
