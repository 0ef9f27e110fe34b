"""The control channel over real HTTP: state, faults, clearing, the vehicle, and bad requests."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from drivers.devices.reference import REF
from drivers.registers import field
from firmware_sim.simulator import Simulator
from tests.firmware_sim.fakes import FakeClock, ServeTcp

PILES = ["1:reference:36:watchdog=0", "2:evse-wb:11:meter=3:sdm630"]


class Http:
    """urllib in a worker thread, so the simulator keeps running on the test's loop."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def _call(self, method: str, path: str, body: bytes | None) -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path, data=body, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    async def get(self, path: str) -> tuple[int, Any]:
        return await asyncio.to_thread(self._call, "GET", path, None)

    async def post(self, path: str, body: object) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await asyncio.to_thread(self._call, "POST", path, data)


@pytest_asyncio.fixture
async def control(clock: FakeClock) -> AsyncIterator[tuple[Simulator, Http]]:
    sim = Simulator(PILES, clock=clock)
    host, port = await sim.start_control("127.0.0.1", 0)
    assert host == "127.0.0.1"
    yield sim, Http(port)
    await sim.stop()


@pytest.mark.asyncio
async def test_state_lists_every_unit(control: tuple[Simulator, Http], clock: FakeClock) -> None:
    sim, http = control
    sim.model(1).start_session(0, None)
    clock.advance(100)
    status, state = await http.get("/state")
    assert status == 200
    assert state["now_s"] == 100.0
    units = {u["unit"]: u for u in state["units"]}
    assert sorted(units) == [1, 2, 3]
    assert (units[1]["profile"], units[1]["state"]) == ("reference", "charging")
    assert (units[1]["power_w"], units[1]["meter_wh"], units[1]["faults"]) == (36_000, 1000, {})
    assert (units[2]["profile"], units[2]["meter_unit"]) == ("evse-wb", 3)
    assert (units[3]["profile"], units[3]["pile_unit"]) == ("sdm630", 2)


@pytest.mark.asyncio
async def test_faults_through_http_reach_the_modbus_client(
    control: tuple[Simulator, Http], serve_tcp: ServeTcp
) -> None:
    sim, http = control
    client = await serve_tcp(sim)
    status, unit = await http.post("/fault", {"unit": 1, "kind": "pile_fault", "code": 9})
    assert status == 200
    assert (unit["state"], unit["fault_code"], unit["faults"]) == (
        "fault",
        9,
        {"pile_fault": {"code": 9}},
    )
    block = (await client.read_input_registers(0, count=14, device_id=1)).registers
    assert field(block, 0, REF["fault_code"]) == 9
    await http.post("/fault", {"unit": 1, "kind": "exception", "code": 2})
    await http.post("/fault", {"unit": 3, "kind": "meter_garbage"})
    assert (await client.read_input_registers(0, count=1, device_id=1)).exception_code == 2

    status, unit = await http.post("/clear", {"unit": 1, "kind": "exception"})
    assert (status, unit["faults"]) == (200, {"pile_fault": {"code": 9}})
    status, unit = await http.post("/clear", {"unit": 1})  # every kind
    assert (status, unit["state"], unit["faults"]) == (200, "no_vehicle", {})
    status, unit = await http.post("/clear", {"unit": 3, "kind": None})
    assert (status, unit["reported_meter_wh"]) == (200, 0)


@pytest.mark.asyncio
async def test_the_vehicle_plugs_in_and_leaves(control: tuple[Simulator, Http]) -> None:
    _, http = control
    status, unit = await http.post("/vehicle", {"unit": 2, "plugged": True})
    assert (status, unit["state"], unit["vehicle_connected"]) == (200, "connected", True)
    status, unit = await http.post("/vehicle", {"unit": 2, "plugged": False})
    assert (status, unit["state"]) == (200, "no_vehicle")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/fault", b"{not json", "the body is not JSON"),
        ("/fault", [1, 2], "the body must be a JSON object"),
        ("/fault", {"kind": "silent"}, "'unit' is missing"),
        ("/fault", {"unit": 1}, "'kind' is missing"),
        ("/fault", {"unit": "1", "kind": "silent"}, "unit '1' is not simulated here"),
        ("/fault", {"unit": 1, "kind": "melt"}, "unknown fault kind 'melt'"),
        ("/fault", {"unit": 1, "kind": "delay", "ms": -5}, "ms must be an integer 1..60000"),
        ("/fault", {"unit": 2, "kind": "meter_frozen"}, "meter faults go on its meter, unit 3"),
        ("/clear", {"unit": 1, "kind": "melt"}, "unknown fault kind 'melt'"),
        ("/clear", {"unit": 1, "all": True}, "unknown field 'all'"),
        ("/vehicle", {"unit": 1, "plugged": "yes"}, "plugged must be true or false"),
        ("/vehicle", {"unit": 3, "plugged": True}, "unit 3 is a meter"),
    ],
)
async def test_bad_requests_get_400_naming_the_problem(
    control: tuple[Simulator, Http], path: str, body: object, message: str
) -> None:
    sim, http = control
    status, answer = await http.post(path, body)
    assert status == 400
    assert message in answer["error"]
    assert all(not entry.faults.active for entry in sim.units.values())


@pytest.mark.asyncio
async def test_unknown_paths_and_methods(control: tuple[Simulator, Http]) -> None:
    _, http = control
    status, answer = await http.get("/faults")
    assert status == 404 and "GET /state" in answer["error"]
    status, answer = await http.get("/fault")
    assert status == 405 and "POST" in answer["error"]
    status, answer = await http.post("/state", {})
    assert status == 405


@pytest.mark.asyncio
async def test_one_connection_serves_several_requests(control: tuple[Simulator, Http]) -> None:
    _, http = control
    port = int(http.base.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        body = b'{"unit": 1, "kind": "silent"}'
        writer.write(b"GET /state HTTP/1.1\r\nHost: x\r\n\r\n")
        writer.write(b"POST /fault HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        for _ in range(2):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            answer = json.loads(await reader.readexactly(length))
        assert answer["faults"] == {"silent": {}}
    finally:
        writer.close()


class TickingClock(FakeClock):
    """A clock that moves a second every time it is read: any step between two reads shows."""

    def __call__(self) -> float:
        self.now_s += 1
        return self.now_s


@pytest.mark.asyncio
async def test_a_fault_answers_with_the_unit_at_the_instant_it_was_injected() -> None:
    clock = TickingClock()
    sim = Simulator(PILES, clock=clock)
    _, port = await sim.start_control("127.0.0.1", 0)
    try:
        sim.model(1).start_session(sim.model(1).now_tick, None)
        status, unit = await Http(port).post("/fault", {"unit": 1, "kind": "meter_frozen"})
        # Frozen at what the meter showed when the fault came: the answer is that instant, not
        # one later (36 kW is 10 Wh a second: a second step would show 10 Wh more).
        assert status == 200
        assert unit["reported_meter_wh"] == unit["meter_wh"] > 0
    finally:
        await sim.stop()
