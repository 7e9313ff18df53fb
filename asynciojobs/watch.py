"""Watch: elapsed time since a start, for timestamping feedback (monotonic clock)."""

from __future__ import annotations

import time
from datetime import datetime


class Watch:
    """Measure and print the time elapsed since creation or the last ``reset()``.

    Creating one prints the elapsed time (``000.000  message``, or ``000.000  ``
    with no message) unless ``show_elapsed`` is False, and with
    ``show_wall_clock`` the time of day (``14:18:36.123 message``), as in 0.21.

    Elapsed times come from the monotonic clock, so a change of the system clock
    does not distort them; the wall clock is only used to print the time of day.
    """

    def __init__(
        self, message: str | None = None, *, show_elapsed: bool = True,
        show_wall_clock: bool = False,
    ) -> None:
        self.show_elapsed = show_elapsed
        self.show_wall_clock = show_wall_clock
        self.reset()
        # as 0.21: printed with or without a message (``Watch()`` prints ``000.000  ``)
        text = "" if message is None else message
        if show_elapsed:
            print(f"{self.elapsed()}  {text}")
        if show_wall_clock:
            self.print_wall_clock()
            print(text)

    def reset(self) -> None:
        """Start counting from now."""
        self.start = time.monotonic()

    def seconds(self) -> float:
        """Seconds elapsed since the start."""
        return time.monotonic() - self.start

    def elapsed(self) -> str:
        """Elapsed time as ``SSS.mmm``."""
        return f"{self.seconds():07.3f}"

    def print_elapsed(self, suffix: str = " ") -> None:
        """Print the elapsed time and ``suffix``, without a newline."""
        print(f"{self.elapsed()} {suffix}", end="")

    @staticmethod
    def wall_clock() -> str:
        """The time of day as ``HH:MM:SS.mmm``."""
        return datetime.now().strftime("%H:%M:%S.%f")[:-3]

    @staticmethod
    def print_wall_clock(suffix: str = " ") -> None:
        """Print the time of day and ``suffix``, without a newline."""
        print(Watch.wall_clock() + suffix, end="")
