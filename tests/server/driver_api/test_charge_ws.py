"""WebSocket /user/charge on a real Tornado server with real WebSocket clients, the live control
loop on simulated piles, and a real SQLite file; time is an injected clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from tornado.websocket import WebSocketClientConnection, websocket_connect

from controller.config import Config, StationSettings, parse_tariff
from controller.live import ControlLoop
from controller.values import Mode
from server.accounts.accounts import Accounts
from server.driver_api.hub import Hub
from tests.controller.harness import pile
from tests.firmware_sim.fakes import FakeClock
from tests.kits.in_process import in_process

SIX = 6 * 3600  # 06:00: valley price


class Station:
    def __init__(
        self, port: int, hub: Hub, loop: ControlLoop, accounts: Accounts, clock: FakeClock
    ):
        self.url = f"ws://127.0.0.1:{port}/user/charge"
        self.hub = hub
        self.loop = loop
        self.accounts = accounts
        self.clock = clock
        self.sockets: list[WebSocketClientConnection] = []

    async def token(self, name: str) -> str:
        user_id = await self.accounts.create_user(name, "pass-word-1", "driver")
        return self.accounts.token_for(user_id, name, "driver")

    async def open(self, **query: Any) -> WebSocketClientConnection:
        ws = await websocket_connect(f"{self.url}?{urlencode(query)}")
        self.sockets.append(ws)
        return ws

    async def run(self, seconds: float, every_s: float = 30) -> None:
        end = self.clock.now_s + seconds
        while self.clock.now_s < end:
            self.clock.advance(min(every_s, end - self.clock.now_s))
            await self.loop.tick()


async def read(ws: WebSocketClientConnection, timeout: float = 2) -> dict[str, Any]:
    import asyncio

    text = await asyncio.wait_for(ws.read_message(), timeout)
    assert text is not None, f"closed: {ws.close_code} {ws.close_reason}"
    return json.loads(text)


async def read_until(ws: WebSocketClientConnection, kind: str) -> tuple[dict[str, Any], list[str]]:
    seen = []
    while True:
        message = await read(ws)
        seen.append(message["type"])
        if message["type"] == kind:
            return message, seen


@pytest_asyncio.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    clock = FakeClock()
    clock.advance(SIX)
    cfg = Config(
        StationSettings(waiting_area_size=1, pile_queue_len=1),
        parse_tariff({}),
        (pile(1, "A", Mode.FAST, 30),),
    )
    async with in_process(cfg, tmp_path, clock, UTC) as service:
        s = Station(service.port, service.hub, service.loop, service.accounts, clock)
        yield s
        for ws in s.sockets:
            ws.close()


@pytest.mark.asyncio
async def test_a_charge_from_queue_number_to_bill(station: Station) -> None:
    token = await station.token("alice")
    ws = await station.open(token=token, mode="quick", quantity="10", capacity="75")
    first = await read(ws)
    assert (first["code"], first["type"]) == (200, "queued")
    assert first["msg"] == "您已经成功进入队列，请等待"
    assert (first["queueNo"], first["mode"], first["quantity"]) == ("F1", "fast", 10.0)
    req = station.loop.station.requests[station.accounts.verify(token).user_id]
    assert req.capacity == station.loop.units.energy_from_wh(75_000)  # for the operator's view
    # The only pile was free: the call and the start follow at once.
    call, _ = await read_until(ws, "charging")
    assert call["stationId"] == 1 and call["area"] == "charging"
    await station.loop.tick()  # the loop switches the pile on
    await station.run(600)  # 30 kW for 10 min: 5 kWh
    station.hub.door.progress()
    progress, _ = await read_until(ws, "progress")
    assert (progress["charged"], progress["remaining"]) == (5.0, 5.0)
    assert progress["fee"] == 6.0  # 5 kWh * (0.4 + 0.8)
    await station.run(900)
    bill, _ = await read_until(ws, "bill")
    assert bill["bill"]["quantity"] == 10.0 and bill["bill"]["cost"] == 12.0
    assert bill["bill"]["stationId"] == 1 and isinstance(bill["bill"]["id"], int)
    done, _ = await read_until(ws, "done")
    assert done["reason"] == "completed"
    assert await ws.read_message() is None  # the station closed the socket
    assert ws.close_code == 1000


@pytest.mark.asyncio
async def test_reconnecting_resumes_the_request(station: Station) -> None:
    token = await station.token("alice")
    ws = await station.open(token=token, mode="fast", quantity=10)
    await read_until(ws, "charging")
    ws.close()
    again = await station.open(token=token, mode="common", quantity=99)
    resumed = await read(again)
    assert resumed["type"] == "resumed" and resumed["queueNo"] == "F1"
    assert resumed["mode"] == "fast" and resumed["quantity"] == 10.0  # the opening's are ignored


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("query", "close_code", "error"),
    [
        ({"token": "forged"}, 4401, "bad_token"),
        ({"mode": "turbo", "quantity": "10"}, 4400, "bad_mode"),
        ({"mode": "fast", "quantity": "0"}, 4400, "bad_quantity"),
        ({"mode": "fast", "quantity": "-5"}, 4400, "bad_quantity"),
        ({"mode": "fast", "quantity": "nan"}, 4400, "bad_quantity"),
        ({"mode": "fast", "quantity": "inf"}, 4400, "bad_quantity"),
        ({"mode": "fast", "quantity": "1e9"}, 4400, "bad_quantity"),
        ({"mode": "fast", "quantity": "ten"}, 4400, "bad_quantity"),
        ({"mode": "fast"}, 4400, "bad_quantity"),
        ({"mode": "fast", "quantity": "10", "capacity": "-1"}, 4400, "bad_capacity"),
        ({"mode": "fast", "quantity": "10", "capacity": "big"}, 4400, "bad_capacity"),
    ],
)
async def test_bad_openings_get_an_error_then_a_4000_range_close(
    station: Station, query: dict[str, str], close_code: int, error: str
) -> None:
    if "token" not in query:
        query = {"token": await station.token("alice"), **query}
    ws = await station.open(**query)
    message = await read(ws)
    assert (message["code"], message["error"]) == (-1, error)
    assert await ws.read_message() is None and ws.close_code == close_code
    assert station.loop.station.requests == {}  # nothing changed


@pytest.mark.asyncio
async def test_a_full_waiting_area_refuses_with_4409(station: Station) -> None:
    for name in ("a1", "a2"):  # one charging, one in the waiting area (N = 1)
        ws = await station.open(token=await station.token(name), mode="fast", quantity=10)
        assert (await read(ws))["type"] == "queued"
    ws = await station.open(token=await station.token("a3"), mode="fast", quantity=10)
    message = await read(ws)
    assert message["error"] == "waiting_area_full"
    assert await ws.read_message() is None and ws.close_code == 4409


@pytest.mark.asyncio
async def test_operations_revise_status_cancel_and_bad_messages(station: Station) -> None:
    first = await station.open(token=await station.token("a1"), mode="fast", quantity=10)
    await read_until(first, "charging")
    ws = await station.open(token=await station.token("a2"), mode="fast", quantity=10)
    assert (await read(ws))["type"] == "queued"  # waits: the pile is busy
    await ws.write_message(json.dumps({"operation": "revise", "quantity": 20}))
    revised = await read(ws)
    assert (revised["type"], revised["quantity"], revised["queueNo"]) == ("revised", 20.0, "F2")
    await ws.write_message(json.dumps({"operation": "revise", "mode": "slow"}))
    assert (await read(ws))["queueNo"] == "T1"  # a new number of the new mode
    for bad, error in [
        ("{oops", "bad_json"),
        ("[1, 2]", "bad_json"),
        (json.dumps({"operation": "fly"}), "unknown_operation"),
        (json.dumps({"operation": "revise", "quantity": -1}), "bad_quantity"),
        (json.dumps({"operation": "revise"}), "nothing_to_revise"),
        ("x" * 5000, "message_too_large"),
    ]:
        await ws.write_message(bad)
        message = await read(ws)
        assert (message["type"], message["error"]) == ("error", error)
    await first.write_message(json.dumps({"operation": "revise", "quantity": 5}))
    assert (await read_until(first, "error"))[0]["error"] == "not_in_waiting_area"
    await ws.write_message(json.dumps({"operation": "status"}))
    status = await read(ws)
    assert (status["type"], status["area"], status["ahead"]) == ("status", "waiting", 0)
    await ws.write_message(json.dumps({"operation": "cancel"}))
    done, _ = await read_until(ws, "done")
    assert done["reason"] == "cancelled"


@pytest.mark.asyncio
async def test_cancel_while_charging_bills_then_ends_and_the_next_car_is_called(
    station: Station,
) -> None:
    first = await station.open(token=await station.token("a1"), mode="fast", quantity=10)
    await read_until(first, "charging")
    second = await station.open(token=await station.token("a2"), mode="fast", quantity=10)
    waiting = await read(second)
    assert (waiting["type"], waiting["area"], waiting["ahead"]) == ("queued", "waiting", 0)
    await station.loop.tick()  # the pile is switched on
    await station.run(120)  # 30 kW for 2 min: 1 kWh
    await first.write_message(json.dumps({"operation": "cancel"}))
    bill, _ = await read_until(first, "bill")
    assert bill["bill"]["quantity"] == 1.0 and bill["bill"]["cost"] == 1.2  # 1 kWh * (0.4 + 0.8)
    done, _ = await read_until(first, "done")
    assert done["reason"] == "cancelled"
    call, _ = await read_until(second, "call")  # the place freed: the next car is called
    assert (call["stationId"], call["place"]) == (1, 1)
