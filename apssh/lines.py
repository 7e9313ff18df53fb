"""Cutting a byte stream into runs of whole lines, in linear time and bounded memory.

One ``LineSplitter`` per stream (a command's stdout, its stderr) hands its
``emit`` callback runs of bytes that end where a line ends, so that output from
different streams or hosts is never interleaved within a line:

- one or more whole lines, each ending with ``b"\\n"``;
- a piece of a line longer than ``limit`` bytes (64 KiB by default): such a
  line is handed over in pieces of ``limit`` bytes counted from its start (a
  cut moves back up to 3 bytes rather than split a UTF-8 character), so a
  partial line never holds more than that in memory, and the pieces are the
  same however the bytes were packed into packets;
- at the end, the last line when it has no newline, as it is.

Nothing is added or removed: the runs, put end to end, are the stream. The new
data alone is searched for newlines, and each byte is copied a bounded number
of times, whatever the line lengths: the work is linear in the stream's size.
"""

from __future__ import annotations

from collections.abc import Callable

#: the longest piece of a line kept in memory before it is handed over
LINE_LIMIT = 64 * 1024
#: how far back a cut may move to stay on a UTF-8 character boundary
_UTF8_BACKTRACK = 3


class LineSplitter:
    """Feed bytes in; ``emit`` receives them back in runs that end at line ends
    (see the module's docstring); ``close()`` hands over what is left."""

    def __init__(self, emit: Callable[[bytes], None], limit: int = LINE_LIMIT) -> None:
        if limit <= 2 * _UTF8_BACKTRACK:
            raise ValueError(f"line limit {limit} is too small")
        self.emit = emit
        self.limit = limit
        self._pending: list[bytes] = []  # the current partial line, in pieces
        self._size = 0

    @property
    def pending(self) -> int:
        """How many bytes of a partial line are held (never more than ``limit``)."""
        return self._size

    def feed(self, data: bytes) -> None:
        """Take ``data``: what completes lines is emitted now, the rest is kept."""
        if len(data) <= self.limit:
            if data:
                self._feed(data)
            return
        # slices no longer than the limit: a line within one of them fits the limit
        view = memoryview(data)
        for start in range(0, len(data), self.limit):
            self._feed(bytes(view[start:start + self.limit]))

    def _feed(self, data: bytes) -> None:
        first = data.find(b"\n")
        if first < 0:
            self._pending.append(data)
            self._size += len(data)
            if self._size > self.limit:
                buffer = b"".join(self._pending)
                start = self._cut(buffer, len(buffer))
                self._pending = [buffer[start:]]
                self._size = len(buffer) - start
            return
        end = data.rfind(b"\n") + 1
        whole = data if end == len(data) else data[:end]
        if self._pending:
            self._pending.append(whole)
            run = b"".join(self._pending)
            self._pending.clear()
            line_length = self._size + first
            if line_length > self.limit:
                run = run[self._cut(run, line_length):]
        else:
            run = whole
        self.emit(run)
        self._size = len(data) - end
        if self._size:
            self._pending.append(data[end:])

    def _cut(self, buffer: bytes, length: int) -> int:
        """Emit the first line of ``buffer`` (``length`` bytes, newline excluded) in
        pieces of ``limit`` bytes until what is left of it fits the limit; returns
        where the rest of ``buffer`` starts."""
        start = 0
        while length - start > self.limit:
            cut = start + self.limit
            while cut > start + self.limit - _UTF8_BACKTRACK and buffer[cut] & 0xC0 == 0x80:
                cut -= 1  # buffer[cut] continues a UTF-8 character: cut before it
            self.emit(buffer[start:cut])
            start = cut
        return start

    def close(self) -> None:
        """The stream ended: emit the last line if it had no newline (as it is)."""
        if self._pending:
            rest = b"".join(self._pending)
            self._pending.clear()
            self._size = 0
            self.emit(rest)
