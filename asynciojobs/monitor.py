"""A live view of a run: one line per job, refreshed in place, with counts and time left.

``Monitor()`` is an event subscriber (see ``events.py``): give it to a scheduler
with ``scheduler.subscribe(monitor, output=True)``. On a terminal it draws with rich
(an optional extra: ``pip install 'nepi-ng[monitor]'``, imported only here): a header
with the counts (done, running, failed, waiting) and the time left before the
scheduler's timeout, then one line per job: a status symbol, its id, label and node,
how long it has run, the last line it printed. Running jobs come first, then failed
ones, then the others, as many as the screen holds. In a Jupyter kernel the same
view is one output of the running cell, replaced in place through an IPython
display handle (text and HTML; no widget library needed). Elsewhere (a pipe, a
file, rich missing) it prints one plain line per job start and end instead.

Everything runs in the event loop: no thread reads the state while jobs change it.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from typing import IO, Any

from .events import Event, JobEnded, JobStarted, Output, RunEnded, RunStarted, node_of

__all__ = ["SYMBOLS", "Monitor", "in_jupyter_kernel"]

#: the symbol of each job state in the view
SYMBOLS = {"waiting": "·", "running": "▶", "ok": "✔", "failed": "✘", "cancelled": "⊘",
           "stopped": "■"}

#: how often the view is redrawn, at most and at least (seconds)
REFRESH = 0.25

#: in a notebook's cell, how many job lines the view shows at most, and how wide it is
CELL_ROWS = 40
CELL_WIDTH = 120


def in_jupyter_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (a notebook's, JupyterLab's, VS
    Code's...): IPython's shell of this process has a kernel. IPython is looked at
    only when something imported it already, as every kernel did."""
    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _TerminalView:
    """The view on a terminal: a rich ``Live`` that rewrites its lines in place."""

    def __init__(self, file: IO[str], force: bool) -> None:
        from rich.console import Console
        from rich.live import Live

        # force_jupyter=False: even in a kernel, a file given here is drawn on as
        # a terminal (rich would otherwise go through ipywidgets)
        console = Console(file=file, force_terminal=True if force else None,
                          force_jupyter=False)
        self.live = Live(console=console, auto_refresh=False, transient=False,
                         redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def room(self) -> int:
        return max(self.live.console.size.height - 3, 5)

    def show(self, renderable: Any) -> None:
        self.live.update(renderable, refresh=True)

    def stop(self) -> None:
        self.live.stop()


class _CellView:
    """The view in a notebook's cell: one output, displayed once with a display id,
    then replaced through its handle; rich renders it as text and as HTML."""

    #: the HTML around rich's spans (inline styles: no stylesheet to ship)
    HTML = ('<pre style="white-space:pre;overflow-x:auto;line-height:normal;'
            'font-family:Menlo,\'DejaVu Sans Mono\',Consolas,monospace">{code}</pre>')

    def __init__(self) -> None:
        from rich.console import Console

        self.sink = io.StringIO()  # what the console prints: only its record is used
        self.console = Console(file=self.sink, record=True, width=CELL_WIDTH,
                               force_terminal=False, force_jupyter=False,
                               color_system="truecolor")
        self.handle: Any = None

    def room(self) -> int:
        return CELL_ROWS

    def show(self, renderable: Any) -> None:
        from IPython.display import display

        self.console.print(renderable)
        self.sink.seek(0)
        self.sink.truncate()
        text = self.console.export_text(clear=False)
        bundle = {"text/plain": "\n".join(line.rstrip() for line in text.splitlines()),
                  "text/html": self.console.export_html(inline_styles=True,
                                                        code_format=self.HTML)}
        if self.handle is None:
            self.handle = display(bundle, raw=True, display_id=True)
        else:
            self.handle.update(bundle, raw=True)

    def stop(self) -> None:
        pass


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
    asking whether ``file`` is a terminal, or the running cell's output in a
    Jupyter kernel (where ``file`` is the kernel's stdout or stderr)."""

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
        cell = live is not False and self._in_cell()
        if live is None:  # a terminal, or a notebook's cell
            live = cell or self.file.isatty()
        if not live:
            return
        try:
            self._view = _CellView() if cell else _TerminalView(self.file, bool(self.live))
        except ImportError:
            print("monitor: rich is not installed (pip install 'nepi-ng[monitor]'): "
                  "plain lines instead", file=self.file)
            return
        self._draw()
        self._timer = asyncio.get_running_loop().call_later(REFRESH, self._tick)

    def _in_cell(self) -> bool:
        """Whether to draw in a notebook's cell: in a Jupyter kernel, when drawing on
        its stdout or stderr (those of the cell); another file is drawn on as is."""
        return self.file in (sys.stdout, sys.stderr) and in_jupyter_kernel()

    def _plain(self, when: float, text: str) -> None:
        if self._view is None and self.scheduler is not None:
            stamp = time.strftime("%H:%M:%S", time.localtime(when))
            print(f"{stamp} {text}", file=self.file, flush=True)

    def _close(self, event: RunEnded) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._view is not None:
            self._draw(final=event)  # the last state, whenever the last draw was
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
        room = self._view.room()
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
        self._view.show(Group(Text(title, style="bold"), table))

    def _tick(self) -> None:
        """Redraw now and then, so that elapsed times move while nothing happens."""
        if self._view is None:
            return
        if time.monotonic() - self._drawn >= REFRESH:
            self._draw()
        self._timer = asyncio.get_running_loop().call_later(REFRESH, self._tick)
