"""Between the rules and the sockets: station events become messages to each user's sockets.

The hub follows the station's door (controller.door): it works out each request's state and
queues one message per event on every socket of the request's user; a bill's dates and stored
number come from the ledger (controller.ledger), which owns bills. Each socket has one outgoing
queue drained by one writer, so the messages of a user arrive in the order things happened, a
stored bill included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, tzinfo
from typing import Any, Protocol

from controller.billing import Bill, EndReason
from controller.clock import station_moment
from controller.door import Door, PlaceChanged, Progress, RequestView, StreamEvent
from controller.events import (
    Called,
    ChargingStarted,
    Displaced,
    Done,
    Revised,
    SessionEnded,
)
from controller.ledger import Ledger, bill_user_id
from controller.storage_schema import StoredBill
from controller.values import CarId
from server.driver_api.bills_view import log_entry, shown

log = logging.getLogger(__name__)

Message = dict[str, Any]

BILL_MESSAGE_WAIT_S = 2.0  # how long a bill message waits for the bill's stored number


NO_SHOW_MSG = (
    "您未在规定时间内插枪，本次排队已取消 "
    "(the car did not plug in within the plug timeout: the request is cancelled, no bill)"
)


class Outbox(Protocol):
    """A socket as the hub sees it."""

    def send(self, message: Message | Awaitable[Message], *, close: bool = False) -> None: ...


class Hub:
    def __init__(self, ledger: Ledger, door: Door, tz: tzinfo) -> None:
        self.ledger = ledger  # the bills' dates and stored numbers
        self.door = door
        self.tz = tz
        door.subscribe(self.publish)  # after the ledger's subscription
        self.sockets: dict[CarId, set[Outbox]] = {}
        # Waits until the station's state as it is now is on disk (the service's saver); a
        # reply that promises a place (`queued`) goes out only after it.
        self.persisted: Callable[[], Awaitable[None]] | None = None

    def now(self) -> datetime:
        """The station's clock as a date and time: the one bills are dated by."""
        return station_moment(self.door.now_s(), self.tz)

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

    # -- sockets -------------------------------------------------------------------------------
    def join(self, car: CarId, socket: Outbox) -> None:
        self.sockets.setdefault(car, set()).add(socket)

    def leave(self, car: CarId, socket: Outbox) -> None:
        group = self.sockets.get(car)
        if group is not None:
            group.discard(socket)
            if not group:
                del self.sockets[car]

    def _send(self, car: CarId, message: Message | Awaitable[Message], close: bool = False) -> None:
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

    def _view(self, car: CarId, ahead: int | None = None) -> RequestView | None:
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
            kind = "fault" if bill.reason is EndReason.FAULT else "bill"
            if self.sockets.get(bill.car):
                entry = self.ledger.entry(bill)
                # One task, awaited by every socket of the user.
                message = asyncio.ensure_future(
                    self._bill_message(
                        kind, self._view(bill.car), entry.stored, bill, entry.start, entry.end
                    )
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
        shown_bill = self.door.bill_view(bill)
        return StoredBill(
            id=bill_id,
            user_id=bill_user_id(bill.car),
            car=str(bill.car),
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
