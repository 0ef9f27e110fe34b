"""The ledger: the one owner of bills.

It follows the door's event stream, dates every bill by the station's clock (the instants the
rules priced it at, RULES §6), stores it off the event loop, and keeps trying for as long as the
station runs: a locked database or a full disk delays a bill, it never drops one. Whoever must
not run ahead of the stored bills (the state saver, the safe stop) waits on it; whoever tells
of a bill (the drivers' hub) takes its dates and its stored number from here.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, tzinfo
from typing import Any, NamedTuple

from controller.billing import Bill
from controller.clock import station_moment
from controller.door import Door, StreamEvent
from controller.events import SessionEnded
from controller.storage import AsyncStorage, StorageError
from controller.units import Units
from controller.values import CarId

log = logging.getLogger(__name__)

RETRY_MAX_S = 5.0  # longest pause between attempts to store a bill


class Entry(NamedTuple):
    """A bill as the ledger keeps it: its dates, and its stored number once it has one."""

    bill: Bill
    start: datetime
    end: datetime
    stored: asyncio.Future[int]


class Ledger:
    """Attach it to the door before any subscriber that tells of bills."""

    def __init__(self, storage: AsyncStorage, units: Units, tz: tzinfo) -> None:
        self._storage = storage
        self._units = units
        self._tz = tz
        self._pending: dict[int, Entry] = {}  # by bill id, until stored
        self._tasks: set[asyncio.Task[Any]] = set()

    def attach(self, door: Door) -> None:
        door.subscribe(self._on_event)

    def _on_event(self, seq: int, event: StreamEvent) -> None:
        if isinstance(event, SessionEnded):
            self.record(event.bill)

    def record(self, bill: Bill) -> Entry:
        """Date the bill and start storing it (once per bill: a second call returns the first
        entry while it is being stored)."""
        entry = self._pending.get(bill.bill_id)
        if entry is not None:
            return entry
        units = self._units
        start = station_moment(units.seconds(bill.start_tick), self._tz)
        end = station_moment(units.seconds(bill.end_tick), self._tz)
        task = asyncio.ensure_future(self._store(bill, start, end))
        entry = Entry(bill, start, end, task)
        self._pending[bill.bill_id] = entry
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._stored(bill.bill_id, done))
        return entry

    def entry(self, bill: Bill) -> Entry:
        """The bill's entry: its dates and the future of its stored number."""
        return self._pending.get(bill.bill_id) or self.record(bill)

    def _stored(self, bill_id: int, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._pending.pop(bill_id, None)

    async def _store(self, bill: Bill, start: datetime, end: datetime) -> int:
        user_id = bill_user_id(bill.car)
        units = self._units
        attempt = 0
        while True:
            try:
                return await self._storage.run(
                    lambda s: s.add_bill(bill, units, user_id, start, end)
                )
            except StorageError as exc:
                attempt += 1
                log.error("bill %s not stored (try %d): %s", bill.bill_id, attempt, exc)
                await asyncio.sleep(min(RETRY_MAX_S, 0.2 * attempt))

    async def all_stored(self) -> None:
        """Return once no bill is waiting to be stored (however long the database takes)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait for the bills still being stored (at the safe stop, before the database
        closes); whether all of them were."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            log.error("shutting down with a bill not yet stored: %s", task)
        return not pending


def bill_user_id(car: CarId) -> int | None:
    """The account a bill is charged to: a live station's cars are its users' ids."""
    return car if isinstance(car, int) else None
