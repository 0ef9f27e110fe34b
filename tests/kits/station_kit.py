"""A station for the hardening tests: the station as `serve` builds it (the size limits
Tornado enforces included) on port 0, on one simulated fast pile, a real SQLite file, accounts
with fast hashing, an injected clock, and a throttle that records its delays instead of
sleeping. Plus raw HTTP, for requests an HTTP client will not send."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import WebSocketClientConnection, websocket_connect

from controller.config import Config, StationSettings, parse_tariff
from controller.live import ControlLoop
from controller.storage import AsyncStorage
from controller.values import Mode
from server.accounts.accounts import Accounts, LoginThrottle
from tests.controller.harness import pile
from tests.firmware_sim.fakes import FakeClock
from tests.kits.in_process import in_process

KEY = b"k" * 32
PASSWORD = "Pass-word-Secret-77"
START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


class Station:
    def __init__(self, port: int, accounts: Accounts, loop: ControlLoop, clock: FakeClock) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/user/charge"
        self.accounts = accounts
        self.storage: AsyncStorage = accounts._storage
        self.loop = loop
        self.clock = clock
        self.delays_s: list[float] = []  # what the login throttle made attempts wait
        self.http = AsyncHTTPClient()
        self.sockets: list[WebSocketClientConnection] = []

    async def user(self, name: str, role: str = "driver") -> tuple[int, str]:
        user_id = await self.accounts.create_user(name, PASSWORD, role)
        return user_id, self.accounts.token_for(user_id, name, role)

    async def call(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        *,
        body: str | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, the JSON body, or the text if it is not JSON)."""
        url = self.base + path + ("?" + urlencode(query) if query else "")
        if method == "POST" and body is None:
            body = ""
        response = await self.http.fetch(
            url, method=method, body=body, headers=headers, raise_error=False
        )
        text = response.body.decode("utf-8", "replace") if response.body else ""
        try:
            return response.code, json.loads(text)
        except ValueError:
            return response.code, text

    async def open(self, **query: Any) -> WebSocketClientConnection:
        ws = await websocket_connect(f"{self.ws_url}?{urlencode(query)}")
        self.sockets.append(ws)
        return ws

    async def raw(self, data: bytes, timeout_s: float = 5.0) -> bytes:
        """Send `data` as it is and read until the station closes the connection."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(data)
            await writer.drain()
            chunks = []
            while chunk := await asyncio.wait_for(reader.read(65536), timeout_s):
                chunks.append(chunk)
            return b"".join(chunks)
        except ConnectionResetError:  # closed while a large body was still being sent
            return b"".join(chunks)
        finally:
            writer.close()


def status_and_json(answer: bytes) -> tuple[int, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.strip() else None


async def read(ws: WebSocketClientConnection, timeout_s: float = 2.0) -> dict[str, Any]:
    text = await asyncio.wait_for(ws.read_message(), timeout_s)
    assert text is not None, f"closed: {ws.close_code} {ws.close_reason}"
    return json.loads(text)


@asynccontextmanager
async def running_station(
    tmp_path: Path, *, waiting: int = 4, max_failures: int = 5
) -> AsyncIterator[Station]:
    """`max_failures`: failed logins (and registrations) per address, as LoginThrottle's."""
    clock = FakeClock()
    clock.advance(6 * 3600)
    delays_s: list[float] = []

    async def no_sleep(seconds: float) -> None:
        delays_s.append(seconds)

    throttle = LoginThrottle(
        max_failures, clock=clock, max_registration_failures=max_failures, sleep=no_sleep
    )

    def accounts(storage: AsyncStorage) -> Accounts:
        return Accounts(
            storage,
            KEY,
            clock=lambda: START.timestamp() + clock.now_s,
            throttle=throttle,
            scrypt_n=16,
        )

    cfg = Config(
        StationSettings(waiting_area_size=waiting, pile_queue_len=1),
        parse_tariff({}),
        (pile(1, "A", Mode.FAST, 30),),
    )
    async with in_process(cfg, tmp_path, clock, UTC, accounts) as service:
        station = Station(service.port, service.accounts, service.loop, clock)
        station.delays_s = delays_s
        try:
            yield station
        finally:
            for ws in station.sockets:
                ws.close()
