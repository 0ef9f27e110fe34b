"""The state saver: the station's queue state on disk soon after it changes.

A burst of changes is one save; meter progress is saved now and then. A saved state never runs
ahead of what it depends on: before each save the saver waits for the bills to be stored (the
ledger) and for whatever else registered a wait (the uplink's messages), so that after a crash
nothing is lost and nothing is billed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from controller.door import Door, Progress, StreamEvent
from controller.live import ControlLoop
from controller.storage import AsyncStorage

log = logging.getLogger(__name__)

SAVE_EVERY_S = 5.0  # the state is saved at least this often while meters move
SAVE_MIN_GAP_S = 0.05  # and at most this often: a burst of events is one save


class StateSaver:
    def __init__(self, loop: ControlLoop, storage: AsyncStorage) -> None:
        self._loop = loop
        self._storage = storage
        self._changed = asyncio.Event()
        self._generation = 0  # changes asked to be saved (`persisted`)
        self._saved_generation = 0  # ... of which saved
        self._saved = asyncio.Condition()
        self._waiting = 0
        self._waits: list[Callable[[], Awaitable[None]]] = []

    def attach(self, door: Door) -> None:
        door.subscribe(self._on_event)

    def waits_for(self, durable: Callable[[], Awaitable[None]]) -> None:
        """Before each save, wait for `durable()` (what the saved state must not run ahead of)."""
        self._waits.append(durable)

    def _on_event(self, seq: int, event: StreamEvent) -> None:
        if not isinstance(event, Progress):  # progress is saved with the meters, now and then
            self._changed.set()

    async def save(self) -> None:
        state = json.dumps(self._loop.snapshot(), separators=(",", ":"))
        await self._storage.run(lambda s: s.save_state(state))

    async def run(self, stop: asyncio.Event) -> None:
        """Save soon after a change, until `stop`. A reply waiting in `persisted` skips the
        pause between saves."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), SAVE_EVERY_S)
            self._changed.clear()
            # A saved state never tells of a session ended whose bill is not stored yet: after
            # a crash meanwhile the session is still open in the saved state, and the pile's
            # meter bills it again, once, when the station is back.
            for durable in self._waits:
                await durable()
            generation = self._generation
            try:
                await self.save()
            except Exception:  # task boundary: log, and try again at the next change
                log.exception("saving the station's state failed")
                await asyncio.sleep(SAVE_MIN_GAP_S)
                continue
            async with self._saved:
                self._saved_generation = generation
                self._saved.notify_all()
            if not self._waiting:
                await asyncio.sleep(SAVE_MIN_GAP_S)

    async def persisted(self) -> None:
        """Return once the state as it is now is on disk."""
        self._generation += 1
        generation = self._generation
        self._changed.set()
        self._waiting += 1
        try:
            async with self._saved:
                await self._saved.wait_for(lambda: self._saved_generation >= generation)
        finally:
            self._waiting -= 1
