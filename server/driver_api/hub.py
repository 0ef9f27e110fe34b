"""Between the rules and the sockets: station events become messages to each user's sockets.

The hub follows the station's door (controller.door): it stores bills (off the event loop,
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
from controller.door import Door, PlaceChanged, Progress, RequestView, StreamEvent
from controller.events import (
    Called,
    ChargingStarted,
    Displaced,
    Done,
    Revised,
    SessionEnded,
)
from controller.storage import AsyncStorage, StorageError
from controller.storage_schema import StoredBill
from server.driver_api.bills_view import log_entry, shown

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
        self.door: Door | None = None
        self.sockets: dict[str, set[Outbox]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Waits until the station's state as it is now is on disk (the service's saver); a
        # reply that promises a place (`queued`) goes out only after it.
        self.persisted: Callable[[], Awaitable[None]] | None = None

    def attach(self, door: Door) -> None:
        """Take the station's door and follow its event stream."""
        self.door = door
        door.subscribe(self.publish)

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
    @staticmethod
    def state(view: RequestView, ahead: int | None = None) -> Message:
        """What PROTOCOL.md says every message carries about the request."""
        message: Message = {
            "queueNo": view.queue_no,
            "mode": view.mode.value,
            "quantity": shown(view.asked_kwh),
            "remaining": shown(view.remaining_kwh),
            "area": view.area,
            "ahead": view.ahead if ahead is None else ahead,
            "charged": shown(view.charged_kwh),
            "fee": shown(view.fee_yuan),
        }
        if view.pile_id is not None:
            message["stationId"] = view.pile_id
        return message

    def message(
        self, kind: str, view: RequestView | None, ahead: int | None = None, **extra: Any
    ) -> Message:
        body: Message = {"code": 200, "type": kind}
        if view is not None:
            body |= self.state(view, ahead)
        return body | extra

    def _view(self, car: str, ahead: int | None = None) -> RequestView | None:
        assert self.door is not None
        return self.door.request_of(car, ahead)

    # -- events --------------------------------------------------------------------------------
    def publish(self, seq: int, event: StreamEvent) -> None:
        """The door's subscriber (synchronous: the rules never wait for the network)."""
        if isinstance(event, Progress):
            if self.sockets.get(event.car):
                self._send(event.car, self.message("progress", self._view(event.car)))
            return
        if isinstance(event, PlaceChanged):
            if self.sockets.get(event.car):
                view = self._view(event.car, event.ahead)
                self._send(event.car, self.message("position", view, event.ahead))
            return
        if isinstance(event, SessionEnded):
            bill = event.bill
            start, end = self._times(bill)
            stored = self._store(bill, start, end)
            kind = "fault" if bill.reason is EndReason.FAULT else "bill"
            if self.sockets.get(bill.car):
                # One task, awaited by every socket of the user.
                message = asyncio.ensure_future(
                    self._bill_message(kind, self._view(bill.car), stored, bill, start, end)
                )
                self._send(bill.car, message)
        elif isinstance(event, Called):
            self._send(event.car, self.message("call", self._view(event.car), place=event.place))
        elif isinstance(event, ChargingStarted):
            self._send(event.car, self.message("charging", self._view(event.car)))
        elif isinstance(event, Revised):
            self._send(event.car, self.message("revised", self._view(event.car)))
        elif isinstance(event, Displaced):
            self._send(event.car, self.message("position", self._view(event.car)))
        elif isinstance(event, Done):
            done: Message = {"code": 200, "type": "done", "reason": event.reason}
            if event.reason == "no_show":
                done["msg"] = NO_SHOW_MSG
            self._send(event.car, done, close=True)

    # -- bills ---------------------------------------------------------------------------------
    def _times(self, bill: Bill) -> tuple[datetime, datetime]:
        """The session's start and end in real time: it ends now, and lasted what the ticks say."""
        assert self.door is not None
        end = self.wall_clock()
        seconds = float(self.door.bill_seconds(bill))
        return end - timedelta(seconds=seconds), end

    def _store(self, bill: Bill, start: datetime, end: datetime) -> asyncio.Future[int]:
        """Store the bill off the loop; the future is its id (None if it could not be stored)."""
        assert self.door is not None
        units = self.door.units
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
        view: RequestView | None,
        stored: asyncio.Future[int],
        bill: Bill,
        start: datetime,
        end: datetime,
    ) -> Coroutine[Any, Any, Message]:
        base = self.message(kind, view)  # the request's state now, not when the bill is stored

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
        assert self.door is not None
        shown_bill = self.door.bill_view(bill)
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
            energy_wh=shown_bill.energy_kwh * 1000,
            charge_fee_yuan=shown_bill.charge_fee_yuan,
            service_fee_yuan=shown_bill.service_fee_yuan,
        )


def utc_now() -> datetime:
    return datetime.now(UTC)
