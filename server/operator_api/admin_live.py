"""WebSocket `/admin/live`: the operators' dashboard, kept up to date from the station's event
stream (controller.door).

An operator's socket gets a `snapshot` (every pile with its state, power, session and queue;
the waiting area; the priority lines) when it opens and again after anything happens, at most
every SNAPSHOT_GAP_S: a burst of events, or a second of progress on five piles, is one message.
Each event that an operator would want in a log (a call, a bill, a fault, a recovery, a
request leaving) is also sent as an `event` message, numbered as the stream numbers it, in the
same round and before the snapshot that shows its effect: an event names its user, and the name
of a car the feed has not seen yet is read from storage first (the door's events are
synchronous; the storage is not).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

import tornado.websocket

from controller.door import Door, Progress, StreamEvent
from controller.events import Called, Displaced, Done, PileChanged, SessionEnded
from controller.storage import AsyncStorage, StorageError
from controller.units import round_half_up
from controller.values import CarId
from server.accounts import store as accounts_store
from server.accounts.accounts import AccountError, Claims
from server.driver_api.bills_view import shown
from server.http.log_redaction import SafeExceptionLog
from server.operator_api.views import car_view, pile_view

log = logging.getLogger(__name__)

SNAPSHOT_GAP_S = 0.25  # real seconds between two snapshots at most this often
CLOSE_BAD_TOKEN, CLOSE_NOT_OPERATOR = 4401, 4403


class OperatorFeed:
    """The door's subscriber for every operator socket: one snapshot built per round, whatever
    the number of operators watching."""

    def __init__(
        self, door: Door, storage: AsyncStorage, tz: tzinfo, station_now: Callable[[], datetime]
    ) -> None:
        self.door = door
        self.storage = storage
        self.tz = tz
        self.station_now = station_now
        self.sockets: set[LiveSocket] = set()
        self._names: dict[CarId, str] = {}  # car -> username, looked up once per car
        self._dirty = asyncio.Event()
        self._notes: list[tuple[int, dict[str, Any]]] = []  # events of this round, with cars
        self._task: asyncio.Task[None] | None = None
        door.subscribe(self._on_event)

    def join(self, socket: LiveSocket) -> None:
        self.sockets.add(socket)
        self._dirty.set()
        if self._task is None or self._task.done():
            self._notes.clear()  # nobody was watching: the log starts from now
            self._task = asyncio.ensure_future(self._run())

    def leave(self, socket: LiveSocket) -> None:
        self.sockets.discard(socket)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _on_event(self, seq: int, event: StreamEvent) -> None:
        if not self.sockets:
            return
        note = self._note(event)
        if note is not None:
            self._notes.append((seq, note))
        self._dirty.set()

    def _note(self, event: StreamEvent) -> dict[str, Any] | None:
        """The event as the log shows it, naming its car (`car`) until its user is known."""
        if isinstance(event, Progress):
            return None
        if isinstance(event, SessionEnded):
            bill = self.door.bill_view(event.bill)
            # The total as shown is the sum of the shown parts (RULES §6), summed exactly.
            cost = round_half_up(bill.charge_fee_yuan, 2) + round_half_up(bill.service_fee_yuan, 2)
            return {
                "kind": "bill",
                "stationId": bill.pile_id,
                "car": bill.car,
                "queueNo": bill.queue_no,
                "reason": bill.reason,
                "quantity": shown(bill.energy_kwh),
                "cost": float(cost),
            }
        if isinstance(event, Called):
            return {
                "kind": "call",
                "stationId": event.pile_id,
                "car": event.car,
                "queueNo": event.queue_no,
                "place": event.place,
            }
        if isinstance(event, PileChanged):
            return {"kind": "pile", "stationId": event.pile_id, "state": event.state.value}
        if isinstance(event, Displaced):
            return {"kind": "displaced", "stationId": event.pile_id, "car": event.car}
        if isinstance(event, Done):
            return {"kind": "done", "car": event.car, "reason": event.reason}
        return None

    async def _events(self, notes: list[tuple[int, dict[str, Any]]]) -> list[str]:
        """The round's `event` messages, each car named by its user."""
        await self._learn_names({note["car"] for _, note in notes if "car" in note})
        messages = []
        for seq, note in notes:
            body = {"type": "event", "seq": seq, **note}
            if "car" in body:
                car = body.pop("car")
                body["username"] = self._names.get(car, str(car))
            messages.append(json.dumps(body, ensure_ascii=False))
        return messages

    async def _run(self) -> None:
        while self.sockets:
            await self._dirty.wait()
            self._dirty.clear()
            notes, self._notes = self._notes, []
            try:
                messages = await self._events(notes)
                messages.append(json.dumps(await self.snapshot(), ensure_ascii=False))
            except Exception:  # task boundary: log, and try again at the next change
                log.exception("operator snapshot failed")
            else:
                for socket in list(self.sockets):
                    for message in messages:
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
        names, now, tz = self._names, self.station_now(), self.tz
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

    async def _learn_names(self, cars: set[CarId]) -> None:
        unknown = [car for car in cars if isinstance(car, int) and car not in self._names]
        if not unknown:
            return
        try:
            found = await self.storage.run(lambda s: accounts_store.usernames(s, unknown))
        except StorageError as exc:  # shown by number this time; asked again next time
            log.warning("usernames for the operators' feed not read: %s", exc)
            return
        self._names.update(found)


class LiveSocket(SafeExceptionLog, tornado.websocket.WebSocketHandler):
    """One operator's dashboard. The token is checked as on the operator API; a driver's
    token gets an error message and the socket closes (4403)."""

    def initialize(self, feed: OperatorFeed, verify: Callable[[str], Claims]) -> None:
        self.feed = feed
        self.verify = verify
        self.outbox: asyncio.Queue[tuple[str, int | None]] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None

    def check_origin(self, origin: str) -> bool:
        return True  # the token, not a cookie, is the credential: no other site holds it

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        # A token that is not UTF-8 is a bad token (an error message, then 4401), not
        # Tornado's HTTPError after the upgrade, which would drop the socket without a word.
        return value.decode("utf-8", errors="replace")

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
