"""WebSocket `/user/charge`: a driver's request, from the queue number to the bill.

The upgrade is always accepted (browsers cannot read an HTTP error body on a WebSocket); the
first message answers the opening, `queued` or `resumed`, or an error followed by a close with
a 4000-range code (PROTOCOL.md). Operations come from a table, as in OCPP implementations.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.websocket

from controller.door import Refused
from controller.values import Mode
from server.accounts.accounts import AccountError, Claims
from server.driver_api.hub import Hub, Message
from server.http.limits import JsonRefused, parse_json
from server.http.log_redaction import SafeExceptionLog

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024
MAX_CAPACITY_KWH = 1000.0  # no car battery is larger
MODES = {
    "fast": Mode.FAST,
    "quick": Mode.FAST,
    "F": Mode.FAST,
    "common": Mode.COMMON,
    "slow": Mode.COMMON,
    "trickle": Mode.COMMON,
    "T": Mode.COMMON,
}
CLOSE_BAD_INPUT, CLOSE_BAD_TOKEN, CLOSE_REFUSED = 4400, 4401, 4409
CLOSE_NOT_ALLOWED = 4403  # a valid token whose account may not charge (an operator's)


class BadInput(Exception):
    def __init__(self, error: str, msg: str) -> None:
        super().__init__(msg)
        self.error = error
        self.msg = msg


def parse_mode(value: Any) -> Mode:
    mode = MODES.get(value) if isinstance(value, str) else None
    if mode is None:
        raise BadInput("bad_mode", "mode 须是 fast 或 common (mode: fast or common)")
    return mode


def parse_quantity(value: Any, max_kwh: float) -> int:
    """kWh (a number, or its text) to whole Wh; refused unless above 0 and at most max_kwh."""
    try:
        kwh = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of 400 digits
        raise BadInput("bad_quantity", "quantity 须是数字 (quantity must be a number)") from None
    if isinstance(value, bool) or not math.isfinite(kwh) or not 0 < kwh <= max_kwh:
        raise BadInput("bad_quantity", f"quantity 须大于 0 且不超过 {max_kwh:g} kWh")
    wh = round(kwh * 1000)
    if wh < 1:
        raise BadInput("bad_quantity", "quantity 须至少 1 Wh (at least 1 Wh)")
    return wh


class ChargeSocket(SafeExceptionLog, tornado.websocket.WebSocketHandler):
    def initialize(
        self, hub: Hub, verify: Callable[[str], Claims], max_quantity_kwh: float
    ) -> None:
        self.hub = hub
        self.verify = verify
        self.max_quantity_kwh = max_quantity_kwh
        self.car: int | None = None
        # (message, close code after it): one queue, one writer, so messages keep their order.
        # A message of None only closes.
        self.outbox: asyncio.Queue[tuple[Message | Awaitable[Message] | None, int | None]] = (
            asyncio.Queue()
        )
        self.writer: asyncio.Task[None] | None = None
        self._cancels: set[asyncio.Task[None]] = set()  # kept alive until they are done

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        # Not UTF-8: replaced, so that the value is refused as any bad value is (an error
        # message, then a 4000-range close) rather than by Tornado's HTTPError, which comes
        # after the upgrade and would drop the socket without a word.
        return value.decode("utf-8", errors="replace")

    def check_origin(self, origin: str) -> bool:
        return True  # the station's clients are apps on its LAN, not pages of another site

    # -- the one writer ------------------------------------------------------------------------
    def send(self, message: Message | Awaitable[Message], *, close: bool = False) -> None:
        self.outbox.put_nowait((message, 1000 if close else None))

    async def _write_all(self) -> None:
        while True:
            item, close_code = await self.outbox.get()
            if item is not None:
                # Shielded: closing the socket must not cancel what the message waits for.
                message = item if isinstance(item, dict) else await asyncio.shield(item)
                try:
                    await self.write_message(json.dumps(message, ensure_ascii=False))
                except tornado.websocket.WebSocketClosedError:
                    return
            if close_code is not None:
                self.close(close_code)
                return

    def _fail(self, error: str, msg: str, close_code: int | None) -> None:
        """An error message; with close_code, the socket closes right after it."""
        self.outbox.put_nowait(
            ({"code": -1, "type": "error", "msg": msg, "error": error}, close_code)
        )

    # -- opening -------------------------------------------------------------------------------
    def open(self, *args: Any, **kwargs: Any) -> None:
        self.writer = asyncio.ensure_future(self._write_all())
        door = self.hub.door
        assert door is not None
        token = self.get_query_argument("token", "") or _bearer(self.request.headers)
        try:
            claims = self.verify(token)
        except AccountError as exc:
            self._fail(
                exc.error, exc.msg, CLOSE_NOT_ALLOWED if exc.status == 403 else CLOSE_BAD_TOKEN
            )
            return
        car = claims.user_id
        view = door.request_of(car)
        if view is not None:
            # Resume: the opening's mode and quantity are ignored; changes go through revise.
            self.car = car
            self.hub.join(car, self)
            self.send(self.hub.message("resumed", view))
            return
        try:
            mode = parse_mode(self.get_query_argument("mode", None))
            wh = parse_quantity(self.get_query_argument("quantity", None), self.max_quantity_kwh)
            capacity_text = self.get_query_argument("capacity", None)
            capacity_wh = None
            if capacity_text not in (None, ""):
                try:
                    capacity_wh = parse_quantity(capacity_text, MAX_CAPACITY_KWH)
                except BadInput:
                    raise BadInput(
                        "bad_capacity", "capacity 须大于 0 且不超过 1000 kWh (battery kWh)"
                    ) from None
        except BadInput as exc:
            self._fail(exc.error, exc.msg, CLOSE_BAD_INPUT)
            return
        # The answer to the opening goes first, although the request may be called to a pile
        # (and those messages queued) before the request returns: its place is kept by a
        # future, and `queued` goes out once the request is on disk.
        first: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.send(first)
        self.car = car
        self.hub.join(car, self)
        try:
            view = door.request(car, mode, wh, capacity_wh)
        except Refused as exc:
            self.hub.leave(car, self)
            self.car = None
            first.set_result({"code": -1, "type": "error", "msg": exc.reason, "error": exc.error})
            self.outbox.put_nowait((None, CLOSE_REFUSED))
            return
        queued = self.hub.confirmed(
            self.hub.message("queued", view, msg="您已经成功进入队列，请等待")
        )
        queued.add_done_callback(lambda saved: first.set_result(saved.result()))

    def on_close(self) -> None:
        # The request lives on in the station: losing the connection never loses the place.
        if self.car is not None:
            self.hub.leave(self.car, self)
        if self.writer is not None:
            self.writer.cancel()

    # -- operations ----------------------------------------------------------------------------
    def on_message(self, message: str | bytes) -> None:
        # The limit is in bytes: a text frame of 4,096 characters may be 12 KiB of UTF-8.
        size_bytes = len(message.encode("utf-8")) if isinstance(message, str) else len(message)
        if size_bytes > MAX_MESSAGE_BYTES:
            self._fail("message_too_large", "消息太大 (message over 4 KiB)", None)
            return
        try:
            data = parse_json(message)
        except JsonRefused as exc:
            msg = "消息不是 JSON (not JSON)" if exc.error == "bad_json" else exc.msg
            self._fail(exc.error, msg, None)
            return
        if not isinstance(data, dict):
            self._fail("bad_json", "消息须是 JSON 对象 (must be an object)", None)
            return
        operation = data.get("operation")
        # Only a string names an operation: a list or an object cannot be looked up at all.
        handler = OPERATIONS.get(operation) if isinstance(operation, str) else None
        if handler is None or self.car is None:
            self._fail("unknown_operation", "不认识的操作 (unknown operation)", None)
            return
        try:
            handler(self, data)
        except BadInput as exc:
            self._fail(exc.error, exc.msg, None)
        except Refused as exc:
            self._fail(exc.error, exc.reason, None)

    def _revise(self, data: dict[str, Any]) -> None:
        door = self.hub.door
        assert door is not None and self.car is not None
        if "mode" not in data and "quantity" not in data:
            raise BadInput("nothing_to_revise", "revise 须给出 mode 或 quantity")
        mode = parse_mode(data["mode"]) if "mode" in data else None
        wh = None
        if "quantity" in data:
            wh = parse_quantity(data["quantity"], self.max_quantity_kwh)
        door.change(self.car, mode, wh)

    def _cancel(self, data: dict[str, Any]) -> None:
        door = self.hub.door
        assert door is not None and self.car is not None
        car = self.car

        async def cancel() -> None:
            # The loop stops and reads a charging car's pile first: its bill (and `done`) come
            # as events, in the socket's order; a refusal (it left meanwhile) is an error.
            try:
                await door.cancel(car)
            except Refused as exc:
                self._fail(exc.error, exc.reason, None)

        task = asyncio.ensure_future(cancel())
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    def _status(self, data: dict[str, Any]) -> None:
        door = self.hub.door
        assert door is not None and self.car is not None
        view = door.request_of(self.car)
        if view is None:
            raise BadInput("not_in_station", "您没有在排队的请求 (no request)")
        self.send(self.hub.message("status", view))


OPERATIONS: dict[str, Callable[[ChargeSocket, dict[str, Any]], None]] = {
    "revise": ChargeSocket._revise,
    "cancel": ChargeSocket._cancel,
    "status": ChargeSocket._status,
}


def _bearer(headers: Any) -> str:
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""
