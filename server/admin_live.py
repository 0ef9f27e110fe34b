"""WebSocket `/admin/live`: the operators' dashboard, kept up to date from the station's event
stream (controller.door).

An operator's socket gets a `snapshot` (every pile with its state, power, session and queue;
the waiting area; the priority lines) when it opens and again after anything happens, at most
every SNAPSHOT_GAP_S: a burst of events, or a second of progress on five piles, is one message.
Each event that an operator would want in a log (a call, a bill, a fault, a recovery, a
request leaving) is also sent as an `event` message, numbered as the stream numbers it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

import tornado.websocket

from controller.door import Door, PlaceChanged, Progress, StreamEvent
from controller.events import Called, Displaced, Done, PileChanged, SessionEnded
from controller.storage import AsyncStorage, StorageError
from server.accounts import AccountError, Claims
from server.admin import car_view, pile_view
from server.bills_view import shown

log = logging.getLogger(__name__)

SNAPSHOT_GAP_S = 0.25  # real seconds between two snapshots at most this often
CLOSE_BAD_TOKEN, CLOSE_NOT_OPERATOR = 4401, 4403


class OperatorFeed:
    """The door's subscriber for every operator socket: one snapshot built per round, whatever
    the number of operators watching."""

    def __init__(
        self, door: Door, storage: AsyncStorage, tz: tzinfo, wall_clock: Callable[[], datetime]
    ) -> None:
        self.door = door
        self.storage = storage
        self.tz = tz
        self.wall_clock = wall_clock
        self.sockets: set[LiveSocket] = set()
        self._names: dict[str, str] = {}  # car -> username, looked up once per car
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[tuple[int, StreamEvent]] = asyncio.Queue()
        self._teller: asyncio.Task[None] | None = None
        door.subscribe(self._on_event)

    def join(self, socket: LiveSocket) -> None:
        self.sockets.add(socket)
        self._dirty.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def leave(self, socket: LiveSocket) -> None:
        self.sockets.discard(socket)

    async def close(self) -> None:
        for task in (self._task, self._teller):
            if task is not None:
                task.cancel()

    def _on_event(self, seq: int, event: StreamEvent) -> None:
        if not self.sockets:
            return
        self._dirty.set()
        if isinstance(event, Progress | PlaceChanged):
            return  # the next snapshot shows it
        # Told in order by one task: a car new to the feed has its username looked up first,
        # so that the event names the driver, not the user's number.
        self._events.put_nowait((seq, event))
        if self._teller is None or self._teller.done():
            self._teller = asyncio.ensure_future(self._tell())

    async def _tell(self) -> None:
        while not self._events.empty():
            seq, event = self._events.get_nowait()
            try:
                car = _car_of(event)
                if car is not None:
                    await self._learn_names({car})
                note = self._note(event)
            except Exception:  # task boundary: log, and tell the next event
                log.exception("operator event %d not told", seq)
                continue
            if note is not None:
                message = json.dumps({"type": "event", "seq": seq, **note}, ensure_ascii=False)
                for socket in list(self.sockets):
                    socket.send(message)

    def _note(self, event: StreamEvent) -> dict[str, Any] | None:
        names = self._names
        if isinstance(event, SessionEnded):
            bill = self.door.bill_view(event.bill)
            return {
                "kind": "bill",
                "stationId": bill.pile_id,
                "username": names.get(bill.car, bill.car),
                "queueNo": bill.queue_no,
                "reason": bill.reason,
                "quantity": shown(bill.energy_kwh),
                "cost": shown(bill.charge_fee_yuan) + shown(bill.service_fee_yuan),
            }
        if isinstance(event, Called):
            return {
                "kind": "call",
                "stationId": event.pile_id,
                "username": names.get(event.car, event.car),
                "queueNo": event.queue_no,
                "place": event.place,
            }
        if isinstance(event, PileChanged):
            return {"kind": "pile", "stationId": event.pile_id, "state": event.state.value}
        if isinstance(event, Displaced):
            return {
                "kind": "displaced",
                "stationId": event.pile_id,
                "username": names.get(event.car, event.car),
            }
        if isinstance(event, Done):
            return {
                "kind": "done",
                "username": names.get(event.car, event.car),
                "reason": event.reason,
            }
        return None

    async def _run(self) -> None:
        while self.sockets:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                message = json.dumps(await self.snapshot(), ensure_ascii=False)
            except Exception:  # task boundary: log, and try again at the next change
                log.exception("operator snapshot failed")
            else:
                for socket in list(self.sockets):
                    socket.send(message)
            await asyncio.sleep(SNAPSHOT_GAP_S)

    async def snapshot(self) -> dict[str, Any]:
        door = self.door
        piles = door.piles()
        queues = door.queues()
        cars = {r.car for p in piles for r in p.queue}
        cars |= {r.car for r in queues.waiting}
        cars |= {r.car for line in queues.priority.values() for r in line}
        await self._learn_names(cars)
        names, now, tz = self._names, self.wall_clock(), self.tz
        return {
            "type": "snapshot",
            "seq": door.seq,
            "time": now.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            "piles": [
                pile_view(p, names, now, tz)
                | {"powerNowW": p.power_now_w, "answering": p.answering}
                for p in piles
            ],
            "waiting": [car_view(r, names, now, tz) for r in queues.waiting],
            "priority": {
                mode.value: [car_view(r, names, now, tz) for r in line]
                for mode, line in queues.priority.items()
            },
        }

    async def _learn_names(self, cars: set[str]) -> None:
        unknown = [int(car) for car in cars if car not in self._names and car.isdigit()]
        if not unknown:
            return
        try:
            found = await self.storage.usernames(unknown)
        except StorageError as exc:  # shown by number this time; asked again next time
            log.warning("usernames for the operators' feed not read: %s", exc)
            return
        self._names.update({str(user_id): name for user_id, name in found.items()})


def _car_of(event: StreamEvent) -> str | None:
    """The car an event names to the operators, if any."""
    if isinstance(event, SessionEnded):
        return event.bill.car
    if isinstance(event, Called | Displaced | Done):
        return event.car
    return None


class LiveSocket(tornado.websocket.WebSocketHandler):
    """One operator's dashboard. The token is checked as on the operator API; a driver's
    token gets an error message and the socket closes (4403)."""

    def initialize(self, feed: OperatorFeed, verify: Callable[[str], Claims]) -> None:
        self.feed = feed
        self.verify = verify
        self.outbox: asyncio.Queue[tuple[str, int | None]] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None

    def check_origin(self, origin: str) -> bool:
        return True  # the token, not a cookie, is the credential: no other site holds it

    def send(self, message: str, close_code: int | None = None) -> None:
        self.outbox.put_nowait((message, close_code))

    async def _write_all(self) -> None:
        while True:
            message, close_code = await self.outbox.get()
            try:
                await self.write_message(message)
            except tornado.websocket.WebSocketClosedError:
                return
            if close_code is not None:
                self.close(close_code)
                return

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.writer = asyncio.ensure_future(self._write_all())
        token = self.get_query_argument("token", "")
        try:
            claims = self.verify(token)
        except AccountError as exc:
            self._refuse(exc.error, exc.msg, CLOSE_BAD_TOKEN)
            return
        if claims.role != "operator":
            self._refuse("not_operator", "仅限运营人员 (operators only)", CLOSE_NOT_OPERATOR)
            return
        self.feed.join(self)

    def _refuse(self, error: str, msg: str, close_code: int) -> None:
        body = {"code": -1, "type": "error", "error": error, "msg": msg}
        self.send(json.dumps(body, ensure_ascii=False), close_code)

    def on_message(self, message: str | bytes) -> None:
        pass  # the feed only speaks; operators act through the operator API

    def on_close(self) -> None:
        self.feed.leave(self)
        if self.writer is not None:
            self.writer.cancel()
