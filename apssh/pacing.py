"""Pacing ssh handshakes: a window that grows while they succeed, halves when one is dropped.

sshd drops handshakes beyond its ``MaxStartups`` (10 unauthenticated connections
by default); a fixed cap per address cannot know that 16 addresses are one
server. One window per event loop adapts instead, as TCP paces its sends, and
each dropped handshake is retried after a back-off.
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
    """

    def __init__(self, start: float = 64, floor: float = 4, ceiling: float = 256) -> None:
        self.limit = start
        self.floor = floor
        self.ceiling = ceiling
        self.in_flight = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def __aenter__(self) -> None:
        while self.in_flight >= int(self.limit):
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
        self.in_flight += 1

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        self.wake()

    def wake(self) -> None:
        """Let waiting handshakes go, as many as the limit allows."""
        free = int(self.limit) - self.in_flight
        while free > 0 and self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def succeeded(self) -> None:
        """A handshake went through: open up a little."""
        self.limit = min(self.ceiling, self.limit + 1 / self.limit)
        self.wake()

    def reset(self) -> None:
        """A server dropped a handshake: back off."""
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
