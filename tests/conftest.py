"""Shared helpers for the asynciojobs tests."""

from __future__ import annotations

import asyncio

import pytest


class Recorder:
    """Records events in order, and lets tests wait for one (no sleeps)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self._waiters: dict[str, asyncio.Event] = {}

    def __call__(self, event: str) -> None:
        self.events.append(event)
        self._event(event).set()

    def _event(self, event: str) -> asyncio.Event:
        return self._waiters.setdefault(event, asyncio.Event())

    async def wait_for(self, event: str) -> None:
        await self._event(event).wait()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


async def never() -> None:
    """A coroutine that only ends when cancelled."""
    await asyncio.Event().wait()


async def value(x: object) -> object:
    return x


async def boom(message: str = "boom") -> None:
    raise ValueError(message)
