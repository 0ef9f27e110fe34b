"""The live station's app for the web tests: the station as `serve` builds it (a real Tornado
server on port 0, a real SQLite file), on simulated piles with an injected clock that the test
moves; with real HTTP and WebSocket clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

from controller.clock import local_epoch_seconds, station_moment
from controller.config import StationSettings, parse_tariff
from controller.door import Door
from controller.live import ControlLoop
from controller.storage import AsyncStorage
from controller.values import Mode
from server.accounts.accounts import Accounts, load_secret
from server.assembly.config import ServiceConfig
from server.driver_api.hub import Hub
from server.http.config import ServerSettings
from tests.controller.harness import pile
from tests.firmware_sim.fakes import FakeClock
from tests.kits.in_process import in_process

TZ = timezone(timedelta(hours=8))
SIX = 6 * 3600  # the station starts at 06:00
START = datetime(2026, 11, 23, 6, 0, tzinfo=TZ)
PILES = (pile(1, "A", Mode.FAST, 30), pile(2, "C", Mode.COMMON, 7))


class LiveApp:
    def __init__(self, port: int, hub: Hub, loop: ControlLoop, accounts: Accounts) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}"
        self.port = port
        self.hub = hub
        self.loop = loop
        self.door: Door = hub.door
        self.accounts = accounts
        self.http = AsyncHTTPClient()
        self.sockets: list[WebSocketClientConnection] = []

    async def user(self, name: str, role: str = "driver") -> tuple[int, str]:
        user_id = await self.accounts.create_user(name, "pass-word-1", role)
        return user_id, self.accounts.token_for(user_id, name, role)

    async def fetch(
        self, method: str, path: str, query: dict[str, Any] | None = None, **kwargs: Any
    ) -> HTTPResponse:
        url = self.base + path + ("?" + urlencode(query) if query else "")
        if method == "POST" and "body" not in kwargs:
            kwargs["body"] = ""
        return await self.http.fetch(url, method=method, raise_error=False, **kwargs)

    async def call(self, method: str, path: str, **query: Any) -> tuple[int, Any]:
        response = await self.fetch(method, path, query)
        return response.code, json.loads(response.body)

    async def socket(self, path: str, **query: Any) -> WebSocketClientConnection:
        ws = await websocket_connect(f"{self.ws_base}{path}?{urlencode(query)}")
        self.sockets.append(ws)
        return ws


async def read(ws: WebSocketClientConnection, timeout: float = 2) -> dict[str, Any]:
    text = await asyncio.wait_for(ws.read_message(), timeout)
    assert text is not None, f"closed: {ws.close_code} {ws.close_reason}"
    return json.loads(text)


async def read_until(ws: WebSocketClientConnection, kind: str) -> dict[str, Any]:
    while True:
        message = await read(ws)
        if message["type"] == kind:
            return message


@asynccontextmanager
async def live_app(
    tmp_path: Path, *, cors_origins: tuple[str, ...] = (), waiting: int = 4
) -> AsyncIterator[LiveApp]:
    clock = FakeClock()
    clock.advance(local_epoch_seconds(START))  # 06:00 on the station's clock

    def wall() -> datetime:
        return station_moment(Fraction(clock.now_s), TZ)

    def accounts(storage: AsyncStorage) -> Accounts:
        return Accounts(
            storage, load_secret(tmp_path), clock=lambda: wall().timestamp(), scrypt_n=2**4
        )

    cfg = ServiceConfig(
        StationSettings(waiting_area_size=waiting, pile_queue_len=2),
        parse_tariff({}),
        PILES,
        server=ServerSettings(max_quantity_kwh=120.0, cors_origins=cors_origins),
    )
    async with in_process(cfg, tmp_path, clock, TZ, accounts) as service:
        app = LiveApp(service.port, service.hub, service.loop, service.accounts)
        try:
            yield app
        finally:
            for ws in app.sockets:
                ws.close()
