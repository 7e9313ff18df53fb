"""A live view of a run: one line per job, refreshed in place, with counts and time left.

``Monitor()`` is an event subscriber (see ``events.py``): give it to a scheduler
with ``scheduler.subscribe(monitor, output=True)``. On a terminal (and in a
Jupyter kernel) it draws with rich (an optional extra: ``pip
install 'nepi-ng[monitor]'``, imported only here): a header with the counts (done,
running, failed, waiting) and the time left before the scheduler's timeout, then
one line per job: a status symbol, its id, label and node, how long it has run,
the last line it printed. Running jobs come first, then failed ones, then the
others, as many as the screen holds. Elsewhere (a pipe, a file, rich missing) it
prints one plain line per job start and end instead.

Everything runs in the event loop: no thread reads the state while jobs change it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import IO, Any

from .events import Event, JobEnded, JobStarted, Output, RunEnded, RunStarted, node_of

__all__ = ["SYMBOLS", "Monitor"]

#: the symbol of each job state in the view
SYMBOLS = {"waiting": "·", "running": "▶", "ok": "✔", "failed": "✘", "cancelled": "⊘",
           "stopped": "■"}

#: how often the view is redrawn, at most and at least (seconds)
REFRESH = 0.25


class _Row:
    __slots__ = ("end", "job", "last", "start", "state")

    def __init__(self, job: Any) -> None:
        self.job = job
        self.state = "waiting"
        self.start: float | None = None
        self.end: float | None = None
        self.last = ""


class Monitor:
    """The live view (see the module's doc). ``file``: where to draw (stdout by
    default); ``live``: force the view on (True) or plain lines (False) instead of
    asking whether ``file`` is a terminal."""

    def __init__(self, file: IO[str] | None = None, *, live: bool | None = None) -> None:
        self.file = file if file is not None else sys.stdout
        self.live = live
        self.rows: dict[Any, _Row] = {}
        self.scheduler: Any = None
        self.started = 0.0
        self._view: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._drawn = 0.0

    # ----- events
    def __call__(self, event: Event) -> None:
        """The subscriber."""
        if type(event) is Output:
            row = self.rows.get(event.job)
            if row is not None and event.data.strip():
                row.last = event.data.rstrip().rsplit(b"\n", 1)[-1].decode(
                    errors="replace")[-200:]
        elif isinstance(event, JobStarted):
            row = self._row(event.job)
            row.state, row.start = "running", event.time
            self._plain(event.time, f"started  {self._name(event.job)}")
        elif isinstance(event, JobEnded):
            row = self._row(event.job)
            row.state, row.end = event.outcome, event.time
            why = f": {event.reason}" if event.reason else ""
            self._plain(event.time, f"{event.outcome:<8} {self._name(event.job)}{why}")
        elif isinstance(event, RunStarted):
            if self.scheduler is None:
                self._open(event)
            return
        elif isinstance(event, RunEnded):
            if event.scheduler is self.scheduler:
                self._close(event)
            return
        else:
            return
        if self._view is not None and time.monotonic() - self._drawn >= REFRESH:
            self._draw()

    def _row(self, job: Any) -> _Row:
        row = self.rows.get(job)
        if row is None:
            row = self.rows[job] = _Row(job)
        return row

    @staticmethod
    def _name(job: Any) -> str:
        node = node_of(job)
        where = f" @{node}" if node else ""
        return f"{job.repr_id()} {job._get_text_label()}{where}"

    # ----- the two ways of showing
    def _open(self, event: RunStarted) -> None:
        self.scheduler, self.started = event.scheduler, event.time
        for job in self.scheduler.iterate_jobs(scan_schedulers=True):
            if job is not self.scheduler:  # nested schedulers have their line too
                self._row(job)
        live = self.live
        if live is None:  # a terminal, or a notebook's cell (rich draws in both)
            live = self.file.isatty() or "ipykernel" in sys.modules
        if not live:
            return
        try:
            from rich.console import Console
            from rich.live import Live
        except ImportError:
            print("monitor: rich is not installed (pip install 'nepi-ng[monitor]'): "
                  "plain lines instead", file=self.file)
            return
        console = Console(file=self.file, force_terminal=True if self.live else None)
        self._view = Live(console=console, auto_refresh=False, transient=False,
                          redirect_stdout=False, redirect_stderr=False)
        self._view.start()
        self._draw()
        self._timer = asyncio.get_running_loop().call_later(REFRESH, self._tick)

    def _plain(self, when: float, text: str) -> None:
        if self._view is None and self.scheduler is not None:
            stamp = time.strftime("%H:%M:%S", time.localtime(when))
            print(f"{stamp} {text}", file=self.file, flush=True)

    def _close(self, event: RunEnded) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._view is not None:
            self._draw(final=event)
            self._view.stop()
            self._view = None
        else:
            why = f": {event.reason}" if event.reason else ""
            self._plain(event.time, f"run {event.outcome}{why} ({self.header()})")

    def header(self) -> str:
        """The counts line: done, running, failed, waiting, and the time left."""
        counts = {"ok": 0, "running": 0, "failed": 0, "waiting": 0, "cancelled": 0}
        for row in self.rows.values():
            state = "ok" if row.state == "stopped" else row.state  # a forever job's end
            counts[state] = counts.get(state, 0) + 1
        text = (f"{counts['ok']} done, {counts['running']} running, "
                f"{counts['failed']} failed, {counts['waiting']} waiting")
        if counts["cancelled"]:
            text += f", {counts['cancelled']} cancelled"
        timeout = getattr(self.scheduler, "timeout", None)
        elapsed = time.time() - self.started
        text += f" - {elapsed:.1f}s"
        if timeout:
            text += f", {max(timeout - elapsed, 0):.1f}s left"
        return text

    def _draw(self, final: RunEnded | None = None) -> None:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        now = time.time()
        self._drawn = time.monotonic()
        title = self.header()
        if final is not None:
            title = f"run {final.outcome}: {title}"
        table = Table(box=None, show_header=False, pad_edge=False)
        for style in ("bold", "", "", "cyan", "dim"):
            table.add_column(style=style, no_wrap=True, overflow="ellipsis")
        order = {"running": 0, "failed": 1, "cancelled": 2, "waiting": 3, "ok": 4}
        rows = sorted(self.rows.values(), key=lambda row: order.get(row.state, 5))
        room = max(self._view.console.size.height - 3, 5)
        for row in rows[:room]:
            took = ""
            if row.start is not None:
                took = f"{(row.end or now) - row.start:6.1f}s"
            node = node_of(row.job) or ""
            table.add_row(SYMBOLS.get(row.state, "?"),
                          f"{row.job.repr_id()} {row.job._get_text_label()}"[:60],
                          took, node, row.last[:80])
        if len(rows) > room:
            table.add_row("", f"... {len(rows) - room} more", "", "", "")
        self._view.update(Group(Text(title, style="bold"), table), refresh=True)

    def _tick(self) -> None:
        """Redraw now and then, so that elapsed times move while nothing happens."""
        if self._view is None:
            return
        if time.monotonic() - self._drawn >= REFRESH:
            self._draw()
        self._timer = asyncio.get_running_loop().call_later(REFRESH, self._tick)
