"""Between the rules and the sockets: station events become messages to each user's sockets.

The controller publishes events (controller.events); the hub stores bills (off the event loop,
through the storage), works out each request's state, and queues one message per event on every
socket of the request's user. Each socket has one outgoing queue drained by one writer, so the
messages of a user arrive in the order things happened, a stored bill included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from controller.billing import Bill, EndReason
from controller.events import (
    Called,
    ChargingStarted,
    Displaced,
    Done,
    Event,
    Revised,
    SessionEnded,
)
from controller.live import ControlLoop
from controller.station import Area, Request
from controller.storage import AsyncStorage, StorageError
from controller.storage_schema import StoredBill
from controller.units import round_half_up
from controller.values import Mode
from server.bills_view import log_entry

log = logging.getLogger(__name__)

Message = dict[str, Any]

BILL_RETRY_MAX_S = 5.0  # longest pause between attempts to store a bill
BILL_MESSAGE_WAIT_S = 2.0  # how long a bill message waits for the bill's stored number


NO_SHOW_MSG = (
    "您未在规定时间内插枪，本次排队已取消 "
    "(the car did not plug in within the plug timeout: the request is cancelled, no bill)"
)


class Outbox(Protocol):
    """A socket as the hub sees it."""

    def send(self, message: Message | Awaitable[Message], *, close: bool = False) -> None: ...


class Hub:
    def __init__(self, storage: AsyncStorage, tz: Any, wall_clock: Callable[[], datetime]) -> None:
        self.storage = storage
        self.tz = tz
        self.wall_clock = wall_clock  # real date and time, for the bills' times
        self.loop: ControlLoop | None = None
        self.sockets: dict[str, set[Outbox]] = {}
        self._ahead: dict[str, int | None] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Waits until the station's state as it is now is on disk (the service's saver); a
        # reply that promises a place (`queued`) goes out only after it.
        self.persisted: Callable[[], Awaitable[None]] | None = None

    def attach(self, loop: ControlLoop) -> None:
        self.loop = loop

    def confirmed(self, message: Message) -> asyncio.Future[Message]:
        """`message`, once the state it tells of is saved (a crash after it loses nothing)."""

        async def after_save() -> Message:
            if self.persisted is not None:
                try:
                    await self.persisted()
                except Exception:  # the saver logs and retries; the answer must still go out
                    log.exception("the state was not saved before a reply")
            return message

        return asyncio.ensure_future(after_save())

    async def bills_stored(self) -> None:
        """Return once no bill is waiting to be stored (however long the database takes)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait for the bills still being stored (at shutdown, before the database closes);
        whether all of them were."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for task in pending:
                log.error("shutting down with a bill not yet stored: %s", task)
            return not pending
        return True

    # -- sockets -------------------------------------------------------------------------------
    def join(self, car: str, socket: Outbox) -> None:
        self.sockets.setdefault(car, set()).add(socket)

    def leave(self, car: str, socket: Outbox) -> None:
        group = self.sockets.get(car)
        if group is not None:
            group.discard(socket)
            if not group:
                del self.sockets[car]

    def _send(self, car: str, message: Message | Awaitable[Message], close: bool = False) -> None:
        for socket in list(self.sockets.get(car, ())):
            socket.send(message, close=close)

    # -- state ---------------------------------------------------------------------------------
    def _ahead_of(self, req: Request, lines: dict[Mode, dict[str, int]] | None = None) -> int:
        """Cars ahead: in the pile queue once called, in its line while waiting."""
        if req.area is Area.QUEUE and req.pile is not None:
            return req.pile.queue.index(req)
        if lines is not None:
            return lines[req.mode][req.car]
        assert self.loop is not None
        return self.loop.station.line(req.mode).index(req)

    def _lines(self) -> dict[Mode, dict[str, int]]:
        """Every waiting car's place in its line, worked out once for a round of messages."""
        assert self.loop is not None
        st = self.loop.station
        return {m: {r.car: i for i, r in enumerate(st.line(m))} for m in Mode}

    def state(self, req: Request, ahead: int | None = None) -> Message:
        """What PROTOCOL.md says every message carries about the request."""
        assert self.loop is not None
        units = self.loop.units
        st = self.loop.station
        now = self.loop.now_tick()
        pile = req.pile
        charging = pile is not None and pile.charging() is req
        energy = fee = 0
        if charging and pile is not None:
            energy, charge, service = st.session_so_far(pile, now)
            fee = charge + service
        if req.area is Area.QUEUE and pile is not None:
            area = "charging" if charging else "queue"
        else:
            area = req.area.value
        if ahead is None:
            ahead = self._ahead_of(req)
        message: Message = {
            "queueNo": req.queue_no,
            "mode": req.mode.value,
            "quantity": float(round_half_up(units.kwh(req.asked), 2)),
            "remaining": float(round_half_up(units.kwh(max(0, req.wanted - energy)), 2)),
            "area": area,
            "ahead": ahead,
            "charged": float(round_half_up(units.kwh(req.asked - req.wanted + energy), 2)),
            "fee": float(round_half_up(units.yuan(fee), 2)),
        }
        if pile is not None:
            message["stationId"] = pile.id
        return message

    def message(
        self, kind: str, req: Request | None, ahead: int | None = None, **extra: Any
    ) -> Message:
        body: Message = {"code": 200, "type": kind}
        if req is not None:
            body |= self.state(req, ahead)
        return body | extra

    # -- events --------------------------------------------------------------------------------
    def publish(self, event: Event) -> None:
        """The station's event sink (synchronous: the rules never wait for the network)."""
        assert self.loop is not None
        st = self.loop.station
        if isinstance(event, SessionEnded):
            bill = event.bill
            start, end = self._times(bill)
            stored = self._store(bill, start, end)
            kind = "fault" if bill.reason is EndReason.FAULT else "bill"
            req = st.requests.get(bill.car)
            if self.sockets.get(bill.car):
                # One task, awaited by every socket of the user.
                message = asyncio.ensure_future(
                    self._bill_message(kind, req, stored, bill, start, end)
                )
                self._send(bill.car, message)
        elif isinstance(event, Called):
            req = st.requests[event.car]
            self._send(event.car, self.message("call", req, place=event.place))
        elif isinstance(event, ChargingStarted):
            self._send(event.car, self.message("charging", st.requests[event.car]))
        elif isinstance(event, Revised):
            self._send(event.car, self.message("revised", st.requests[event.car]))
        elif isinstance(event, Displaced):
            self._send(event.car, self.message("position", st.requests[event.car]))
        elif isinstance(event, Done):
            done: Message = {"code": 200, "type": "done", "reason": event.reason}
            if event.reason == "no_show":
                done["msg"] = NO_SHOW_MSG
            self._send(event.car, done, close=True)
            self._ahead.pop(event.car, None)
        self.positions()

    def positions(self) -> None:
        """A `position` message to every connected user whose `ahead` changed."""
        assert self.loop is not None
        if not self.sockets:
            return
        lines = self._lines()  # once: a line of thousands must not be searched per car
        for car in list(self.sockets):
            req = self.loop.station.requests.get(car)
            if req is None:
                continue
            ahead = self._ahead_of(req, lines)
            if self._ahead.get(car) != ahead:
                known = car in self._ahead
                self._ahead[car] = ahead
                if known:
                    self._send(car, self.message("position", req, ahead))

    def progress(self) -> None:
        """A `progress` message to every connected user who is charging."""
        assert self.loop is not None
        for car in list(self.sockets):
            req = self.loop.station.requests.get(car)
            if req is not None and req.pile is not None and req.pile.charging() is req:
                self._send(car, self.message("progress", req))

    # -- bills ---------------------------------------------------------------------------------
    def _times(self, bill: Bill) -> tuple[datetime, datetime]:
        """The session's start and end in real time: it ends now, and lasted what the ticks say."""
        assert self.loop is not None
        end = self.wall_clock()
        seconds = float(self.loop.units.seconds(bill.end_tick - bill.start_tick))
        return end - timedelta(seconds=seconds), end

    def _store(self, bill: Bill, start: datetime, end: datetime) -> asyncio.Future[int]:
        """Store the bill off the loop; the future is its id (None if it could not be stored)."""
        assert self.loop is not None
        units = self.loop.units
        user_id = int(bill.car) if bill.car.isdigit() else None

        async def store() -> int:
            # Kept and retried for as long as the station runs: a locked database or a full
            # disk delays a bill, it never drops it.
            attempt = 0
            while True:
                try:
                    return await self.storage.add_bill(bill, units, user_id, start, end)
                except StorageError as exc:
                    attempt += 1
                    log.error("bill %s not stored (try %d): %s", bill.bill_id, attempt, exc)
                    await asyncio.sleep(min(BILL_RETRY_MAX_S, 0.2 * attempt))

        task = asyncio.ensure_future(store())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _bill_message(
        self,
        kind: str,
        req: Request | None,
        stored: asyncio.Future[int],
        bill: Bill,
        start: datetime,
        end: datetime,
    ) -> Coroutine[Any, Any, Message]:
        base = self.message(kind, req)  # the request's state now, not when the bill is stored

        async def build() -> Message:
            # Shielded: a socket that closes meanwhile must not cancel the bill's storing. The
            # driver is not kept waiting on a struggling database: after a while the bill goes
            # out without its number, and storing it goes on.
            try:
                bill_id: int | None = await asyncio.wait_for(
                    asyncio.shield(stored), BILL_MESSAGE_WAIT_S
                )
            except TimeoutError:
                bill_id = None
            entry = log_entry(self._as_stored(bill_id or 0, bill, start, end), self.tz)
            return base | {"bill": entry | {"id": bill_id}}

        return build()

    def _as_stored(self, bill_id: int, bill: Bill, start: datetime, end: datetime) -> StoredBill:
        assert self.loop is not None
        units = self.loop.units
        return StoredBill(
            id=bill_id,
            user_id=int(bill.car) if bill.car.isdigit() else None,
            car=bill.car,
            queue_no=bill.queue_no,
            pile_id=bill.pile_id,
            pile_name=bill.pile_name,
            start=start,
            end=end,
            reason=bill.reason,
            energy_wh=units.kwh(bill.energy) * 1000,
            charge_fee_yuan=units.yuan(bill.charge_fee),
            service_fee_yuan=units.yuan(bill.service_fee),
        )


def utc_now() -> datetime:
    return datetime.now(UTC)
