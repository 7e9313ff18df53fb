"""Pacing ssh handshakes: a window that grows while they succeed, halves when one is dropped.

sshd drops handshakes beyond its ``MaxStartups`` (10 unauthenticated connections
by default); a fixed cap per address cannot know that 16 addresses are one
server. One window per event loop adapts instead, as TCP paces its sends, and
each dropped handshake is retried after a back-off.

The bookkeeping is O(1) per handshake: a handshake that ends hands its slot to
the first waiter in line (FIFO), which is woken once and never checks again; a
waiter cancelled while in line stays there, and is skipped when its turn comes.
Waiting for a turn is not handshaking: ``SshProxy`` bounds only the handshake
with its timeout (see docs/scale.md). The line always moves: a slot is given
back when its handshake ends, however it ends (``async with``), each handshake is
bounded by its node's timeout, and the window never drops below ``floor``.
"""

from __future__ import annotations

import asyncio
import collections
import weakref

#: back-off before retrying a handshake that the server reset
RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


class HandshakePacer:
    """How many handshakes may be in flight at once, in one event loop.

    The limit grows by about one for each limit's worth of handshakes that succeed,
    and halves when a server resets one (sshd's ``MaxStartups`` dropping a burst):
    additive increase, multiplicative decrease, as TCP paces its window.
    ``async with pacer:`` holds one slot for a handshake; ``waiting`` is how many
    handshakes wait for a turn; ``queued`` and ``wakeups`` count the handshakes
    that waited and the wake-ups (one per handshake that waited, never more).
    """

    def __init__(self, start: float = 64, floor: float = 4, ceiling: float = 256) -> None:
        self.limit = start
        self.floor = floor
        self.ceiling = ceiling
        #: slots held: handshakes under way, and waiters given a slot not yet resumed
        self.in_flight = 0
        #: the line, first come first served; cancelled waiters stay until their turn
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        #: waiters still in line (cancelled ones not counted)
        self.waiting = 0
        #: handshakes that joined the line so far, and those woken (given a slot)
        self.queued = self.wakeups = 0

    async def __aenter__(self) -> None:
        if self.in_flight < int(self.limit) and not self.waiting:
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self.waiting += 1
        self.queued += 1
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                self.waiting -= 1  # still in line: skipped when its turn comes
            else:  # given a slot, then cancelled before it ran: the slot goes on
                self._release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        self.in_flight -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        """Give the free slots, if any, to the first waiters in line: each is woken
        once, its slot already counted (it never looks at the window again)."""
        waiters = self.waiters
        while self.in_flight < int(self.limit) and waiters:
            waiter = waiters.popleft()
            if waiter.done():  # cancelled while in line
                continue
            self.waiting -= 1
            self.in_flight += 1
            self.wakeups += 1
            waiter.set_result(None)

    def succeeded(self) -> None:
        """A handshake went through: open up a little (waking only what now fits)."""
        before = int(self.limit)
        self.limit = min(self.ceiling, self.limit + 1 / self.limit)
        if int(self.limit) > before:
            self._hand_over()

    def reset(self) -> None:
        """A server dropped a handshake: back off (handshakes under way go on; no
        slot is given until fewer than the new limit are in flight)."""
        self.limit = max(self.floor, self.limit / 2)


_pacers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HandshakePacer]
_pacers = weakref.WeakKeyDictionary()


def pacer() -> HandshakePacer:
    """This event loop's handshake pacer."""
    loop = asyncio.get_running_loop()
    found = _pacers.get(loop)
    if found is None:
        found = _pacers[loop] = HandshakePacer()
    return found


def waiting_handshakes() -> int:
    """How many handshakes wait for a turn in this thread's running loop (0 outside one)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return 0
    found = _pacers.get(loop)
    return 0 if found is None else found.waiting
