"""The live station's app for the web tests: a real Tornado server on port 0 over a Hub, a
ControlLoop on simulated piles with an injected clock, the station's Door, and a real SQLite
file; with real HTTP and WebSocket clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.websocket import WebSocketClientConnection, websocket_connect

from controller.config import Config, StationSettings, parse_tariff
from controller.door import Door
from controller.live import ControlLoop, PileLink
from controller.values import Mode
from drivers.sim_pile import SimPile
from server.accounts.accounts import Accounts, load_secret
from server.assembly.database import open_async_storage
from server.driver_api.hub import Hub
from server.http.app import make_app
from server.http.handler import AppContext
from tests.controller.harness import pile
from tests.firmware_sim.conftest import FakeClock

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
        assert hub.door is not None
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
    clock.advance(SIX)

    def wall() -> datetime:
        return START + timedelta(seconds=clock.now_s - SIX)

    storage = await open_async_storage(tmp_path / "station.db")
    accounts = Accounts(
        storage, load_secret(tmp_path), clock=lambda: wall().timestamp(), scrypt_n=2**4
    )
    hub = Hub(storage, TZ, wall)
    cfg = Config(
        StationSettings(waiting_area_size=waiting, pile_queue_len=2), parse_tariff({}), PILES
    )
    links = {p.id: PileLink(SimPile(p.name, p.power_w, clock)) for p in PILES}
    loop = ControlLoop(cfg, links, clock)
    hub.attach(Door(loop))
    ctx = AppContext(accounts, storage, TZ, hub, 120.0, cors_origins)
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(ctx))
    server.add_sockets([sock])
    app = LiveApp(port, hub, loop, accounts)
    try:
        yield app
    finally:
        for ws in app.sockets:
            ws.close()
        server.stop()
        await server.close_all_connections()
        await asyncio.gather(*hub._tasks, return_exceptions=True)
        await storage.close()
