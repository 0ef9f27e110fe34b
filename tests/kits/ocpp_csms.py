"""A local central system for the uplink's tests and bench: the ocpp library's ChargePoint on
the central-system side, served by Tornado on loopback, recording every call it receives.

It can be down (not listening) and come up on the same port later, answer slowly, refuse a
wrong password, and send any raw frame to the station to see what comes back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import tornado.web
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.testing import bind_unused_port
from tornado.websocket import WebSocketClosedError, WebSocketHandler


class Received(NamedTuple):
    """A call from the station, as the handler got it (snake_case keywords)."""

    at_s: float  # time.monotonic() when it arrived
    cp_id: str
    action: str
    payload: dict[str, Any]


class Closed(Exception):
    pass


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CentralSide(ChargePoint):
    """One connected station, from the central system's side."""

    def __init__(self, cp_id: str, connection: Any, csms: Csms) -> None:
        super().__init__(cp_id, connection, response_timeout=30)
        self.csms = csms

    async def _answer(self, action: str, payload: dict[str, Any]) -> None:
        self.csms.received.append(Received(time.monotonic(), self.id, action, payload))
        if self.csms.answer_delay_s:
            await asyncio.sleep(self.csms.answer_delay_s)

    @on(Action.boot_notification)
    async def csms_boot(self, **payload: Any) -> call_result.BootNotification:
        await self._answer("BootNotification", payload)
        status = self.csms.boot_statuses.pop(0) if self.csms.boot_statuses else "Accepted"
        return call_result.BootNotification(
            current_time=now_iso(), interval=self.csms.interval_s, status=status
        )

    @on(Action.heartbeat)
    async def csms_heartbeat(self, **payload: Any) -> call_result.Heartbeat:
        await self._answer("Heartbeat", payload)
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    async def csms_status(self, **payload: Any) -> call_result.StatusNotification:
        await self._answer("StatusNotification", payload)
        return call_result.StatusNotification()

    @on(Action.start_transaction)
    async def csms_start(self, **payload: Any) -> call_result.StartTransaction:
        await self._answer("StartTransaction", payload)
        self.csms.next_tx += 1
        self.csms.started[self.csms.next_tx] = payload
        return call_result.StartTransaction(
            transaction_id=self.csms.next_tx, id_tag_info={"status": "Accepted"}
        )

    @on(Action.meter_values)
    async def csms_meter_values(self, **payload: Any) -> call_result.MeterValues:
        await self._answer("MeterValues", payload)
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def csms_stop(self, **payload: Any) -> call_result.StopTransaction:
        await self._answer("StopTransaction", payload)
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})


class OcppSocket(WebSocketHandler):
    def initialize(self, csms: Csms) -> None:
        self.csms = csms
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.point: CentralSide | None = None
        self.task: asyncio.Future[Any] | None = None

    def prepare(self) -> None:
        if self.csms.password is not None:
            cp_id = self.request.path.rsplit("/", 1)[-1]
            pair = f"{cp_id}:{self.csms.password}".encode()
            expected = "Basic " + base64.b64encode(pair).decode()
            if self.request.headers.get("Authorization") != expected:
                raise tornado.web.HTTPError(401)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "ocpp1.6" if "ocpp1.6" in subprotocols else None

    def open(self, cp_id: str) -> None:  # type: ignore[override]
        self.point = CentralSide(cp_id, self, self.csms)
        self.csms.points[cp_id] = self
        self.csms.connects += 1
        self.task = asyncio.ensure_future(self._serve())

    async def _serve(self) -> None:
        assert self.point is not None
        with contextlib.suppress(Closed, WebSocketClosedError):
            await self.point.start()

    def on_message(self, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode()
        self.csms.raw_in.append(text)
        self.queue.put_nowait(text)

    def on_close(self) -> None:
        self.queue.put_nowait(None)

    async def recv(self) -> str:
        message = await self.queue.get()
        if message is None:
            raise Closed()
        return message

    async def send(self, message: str) -> None:
        await self.write_message(message)


class Csms:
    """`url` is what the station's ocpp.url is set to; `await start()` makes it listen."""

    def __init__(self, *, answer_delay_s: float = 0.0, interval_s: int = 300) -> None:
        sock, self.port = bind_unused_port()
        sock.close()  # down until started: the port is free, connections are refused
        self.url = f"ws://127.0.0.1:{self.port}/ocpp"
        self.answer_delay_s = answer_delay_s
        self.interval_s = interval_s
        self.boot_statuses: list[str] = []  # answers to the next boots; then Accepted
        self.password: str | None = None
        self.received: list[Received] = []
        self.raw_in: list[str] = []
        self.points: dict[str, OcppSocket] = {}
        self.started: dict[int, dict[str, Any]] = {}  # transactionId -> its start
        self.next_tx = 100
        self.connects = 0
        self._server: HTTPServer | None = None

    async def start(self) -> None:
        app = tornado.web.Application([(r"/ocpp/([^/]+)", OcppSocket, {"csms": self})])
        self._server = HTTPServer(app)
        self._server.add_sockets(bind_sockets(self.port, "127.0.0.1"))

    async def stop(self) -> None:
        """Down: the listener and every connection closed."""
        if self._server is None:
            return
        self._server.stop()
        for socket in list(self.points.values()):
            socket.close()
        await self._server.close_all_connections()
        self._server = None
        self.points.clear()

    # -- what it got ---------------------------------------------------------------------------
    def of(self, action: str) -> list[dict[str, Any]]:
        return [r.payload for r in self.received if r.action == action]

    def transaction_calls(self) -> list[Received]:
        actions = ("StartTransaction", "MeterValues", "StopTransaction")
        return [
            r
            for r in self.received
            if r.action in actions and (r.action != "MeterValues" or "transaction_id" in r.payload)
        ]

    def statuses(self, connector: int) -> list[str]:
        return [
            p["status"] for p in self.of("StatusNotification") if p["connector_id"] == connector
        ]

    async def wait(self, check: Callable[[], Any], timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while not (value := check()):
            if time.monotonic() > deadline:
                actions = [r.action for r in self.received[-20:]]
                raise AssertionError(
                    f"timed out after {timeout_s:g} s waiting for {what}: {actions}"
                )
            await asyncio.sleep(0.01)
        return value

    # -- asking the station ----------------------------------------------------------------------
    def point(self, cp_id: str) -> CentralSide:
        socket = self.points[cp_id]
        assert socket.point is not None
        return socket.point

    async def call(self, cp_id: str, payload: Any) -> Any:
        """A call to the station; its answer (the library's call_result)."""
        return await self.point(cp_id).call(payload, suppress=False)

    async def raw(
        self, cp_id: str, frame: str, unique_id: str, timeout_s: float = 5.0
    ) -> list[Any]:
        """Send a raw frame; the station's answer to unique_id (a CallResult or a CallError),
        read off the wire."""
        start = len(self.raw_in)
        await self.points[cp_id].send(frame)

        def answered() -> list[Any] | None:
            for text in self.raw_in[start:]:
                message = json.loads(text)
                if message[0] in (3, 4) and message[1] == unique_id:
                    return message
            return None

        return await self.wait(answered, timeout_s, f"the answer to {unique_id}")
