"""The physics behind the registers, on an injected clock: energy, the exact limit, the watchdog."""

from __future__ import annotations

import pytest
from pymodbus.client import AsyncModbusTcpClient

from drivers.devices.reference import REF, REF_INPUT_COUNT, RefState
from drivers.registers import Kind, encode, field
from firmware_sim.clock import SimClock
from firmware_sim.simulator import Simulator
from tests.firmware_sim.fakes import FakeClock, ServeTcp


async def inputs(client: AsyncModbusTcpClient, unit: int = 1) -> dict[str, int]:
    block = (await client.read_input_registers(0, count=REF_INPUT_COUNT, device_id=unit)).registers
    names = ("state", "fault_code", "power_w", "meter_wh", "session_wh")
    return {name: int(field(block, 0, REF[name])) for name in names}


async def start(
    client: AsyncModbusTcpClient, setpoint_w: int, limit_wh: int, watchdog_s: int = 0
) -> None:
    values = [*encode(Kind.U32, setpoint_w), *encode(Kind.U32, limit_wh), 0, watchdog_s]
    assert not (await client.write_registers(1, values, device_id=1)).isError()
    assert not (await client.write_register(0, 1, device_id=1)).isError()


@pytest.mark.asyncio
async def test_energy_integrates_in_whole_wh(serve_tcp: ServeTcp, clock: FakeClock) -> None:
    client = await serve_tcp(Simulator(["1:reference:7:meter_wh=1000"], clock=clock))
    await start(client, 7000, 0)
    clock.advance(0.5)  # 3500 J: not yet one Wh
    assert (await inputs(client))["meter_wh"] == 1000
    clock.advance(1800 - 0.5)
    now = await inputs(client)
    assert (now["meter_wh"], now["session_wh"], now["power_w"]) == (4500, 3500, 7000)
    clock.advance(0.001)
    assert (await inputs(client))["meter_wh"] == 4500  # floor: 7 J more is no Wh more


@pytest.mark.asyncio
async def test_a_session_stops_exactly_at_its_limit_even_when_polled_late(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    client = await serve_tcp(Simulator(["1:reference:30"], clock=clock))
    await start(client, 30_000, 1234)  # 1234 Wh at 30 kW: 148.08 s
    clock.advance(100)
    assert (await inputs(client))["state"] == RefState.CHARGING
    clock.advance(3600)  # polled an hour late
    now = await inputs(client)
    assert now == {
        "state": RefState.FINISHED,
        "fault_code": 0,
        "power_w": 0,
        "meter_wh": 1234,
        "session_wh": 1234,
    }
    # The session is over: enable reads 0, and writing 1 starts a new one.
    assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [0]
    assert not (await client.write_register(0, 1, device_id=1)).isError()
    clock.advance(148.08)
    assert (await inputs(client))["meter_wh"] == 2468


@pytest.mark.asyncio
async def test_a_new_limit_applies_to_the_running_session(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    client = await serve_tcp(Simulator(["1:reference:30"], clock=clock))
    await start(client, 30_000, 0)
    clock.advance(60)  # 500 Wh
    await client.write_registers(3, encode(Kind.U32, 600), device_id=1)
    clock.advance(600)
    assert (await inputs(client))["session_wh"] == 600
    # A limit below what the session already has ends it at once.
    await client.write_register(0, 0, device_id=1)
    await client.write_register(0, 1, device_id=1)
    clock.advance(60)
    await client.write_registers(3, encode(Kind.U32, 100), device_id=1)
    clock.advance(60)
    now = await inputs(client)
    assert (now["state"], now["session_wh"]) == (RefState.FINISHED, 500)


@pytest.mark.asyncio
async def test_the_setpoint_sets_the_power(serve_tcp: ServeTcp, clock: FakeClock) -> None:
    client = await serve_tcp(Simulator(["1:reference:30"], clock=clock))
    await start(client, 30_000, 0)
    clock.advance(60)  # 500 Wh
    await client.write_registers(1, encode(Kind.U32, 15_000), device_id=1)
    assert (await inputs(client))["power_w"] == 15_000
    clock.advance(60)  # + 250 Wh
    assert (await inputs(client))["meter_wh"] == 750
    await client.write_registers(1, encode(Kind.U32, 90_000), device_id=1)
    assert (await inputs(client))["power_w"] == 30_000  # capped at the rated power


@pytest.mark.asyncio
async def test_the_watchdog_stops_charging_at_its_deadline(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim = Simulator(["1:reference:36"], clock=clock)
    client = await serve_tcp(sim)
    await start(client, 36_000, 0, watchdog_s=10)  # 36 kW: 10 Wh a second
    clock.advance(8)
    await client.write_register(5, 1, device_id=1)  # heartbeat at 8 s: deadline 18 s
    clock.advance(9.999)
    assert (await inputs(client))["state"] == RefState.CHARGING
    clock.advance(500)  # the next poll comes long after the deadline
    now = await inputs(client)
    assert now["state"] == RefState.CONNECTED
    assert (now["power_w"], now["session_wh"], now["meter_wh"]) == (0, 180, 180)
    assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [0]
    assert sim.state()["units"][0]["watchdog_stopped_s"] == 18.0  # type: ignore[index]
    # A heartbeat does not restart it; a new session does, with a whole period.
    await client.write_register(5, 2, device_id=1)
    assert (await inputs(client))["state"] == RefState.CONNECTED
    await client.write_register(0, 1, device_id=1)
    clock.advance(30)
    assert (await inputs(client))["session_wh"] == 100


@pytest.mark.asyncio
async def test_a_session_waits_for_the_vehicle_without_auto_plug(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim = Simulator(["1:reference:36:noplug:watchdog=0"], clock=clock)
    client = await serve_tcp(sim)
    await start(client, 36_000, 0)
    clock.advance(60)
    assert (await inputs(client))["state"] == RefState.NO_VEHICLE
    sim.plug(1, True)
    clock.advance(10)
    now = await inputs(client)
    assert (now["state"], now["meter_wh"]) == (RefState.CHARGING, 100)
    sim.plug(1, False)
    assert (await inputs(client))["state"] == RefState.NO_VEHICLE
    assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [0]


def test_the_clock_scales_its_source() -> None:
    source = FakeClock()
    source.now_s = 1000.0
    clock = SimClock(source, scale=60)
    source.advance(1.5)
    assert clock.now_s() == 90.0
    assert clock.now_tick() == 90_000
    source.now_s = 0.0  # a source that goes back does not take the ticks back
    assert clock.now_tick() == 90_000
    with pytest.raises(ValueError):
        SimClock(source, scale=0)


def test_the_simulator_runs_on_its_scaled_clock(clock: FakeClock) -> None:
    sim = Simulator(["1:reference:36"], clock=clock, scale=10)
    model = sim.model(1)
    model.start_session(model.now_tick, None)
    clock.advance(1)  # ten simulated seconds
    assert sim.now_s() == 10.0
    assert sim.model(1).meter_wh == 100


@pytest.mark.asyncio
async def test_one_write_of_enable_setpoint_and_limit_starts_with_both(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    client = await serve_tcp(Simulator(["1:reference:36:watchdog=0"], clock=clock))
    values = [1, *encode(Kind.U32, 18_000), *encode(Kind.U32, 50)]  # enable comes first here
    assert not (await client.write_registers(0, values, device_id=1)).isError()
    assert (await inputs(client))["power_w"] == 18_000
    clock.advance(3600)
    now = await inputs(client)
    assert (now["state"], now["session_wh"], now["meter_wh"]) == (RefState.FINISHED, 50, 50)
