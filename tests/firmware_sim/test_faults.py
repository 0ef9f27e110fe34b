"""Every fault kind and its clearing, as a Modbus client sees them."""

from __future__ import annotations

import asyncio
import math
import struct

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from drivers.devices.evse_wb import EVSE
from drivers.devices.reference import REF, RefState
from drivers.registers import Kind, decode, field
from firmware_sim.faults import FaultError
from firmware_sim.simulator import Simulator
from tests.firmware_sim.fakes import FakeClock, ServeTcp, mbap, read_mbap

PILES = ["1:reference:36:watchdog=0", "2:evse-wb:11:meter=3:sdm630"]


async def ref_meter_wh(client: AsyncModbusTcpClient) -> int:
    regs = (await client.read_input_registers(8, count=4, device_id=1)).registers
    return int(decode(Kind.U64, regs))


async def sdm_kwh(client: AsyncModbusTcpClient) -> float:
    regs = (await client.read_input_registers(0x48, count=2, device_id=3)).registers
    return float(decode(Kind.F32, regs))


async def charging(clock: FakeClock, serve_tcp: ServeTcp) -> tuple[Simulator, AsyncModbusTcpClient]:
    """Both piles charging for 100 s: the reference has 1000 Wh, the EVSE's meter 305.5 Wh."""
    sim = Simulator(PILES, clock=clock)
    client = await serve_tcp(sim)
    await client.write_register(0, 1, device_id=1)
    await client.write_register(1000, 16, device_id=2)
    clock.advance(100)
    return sim, client


@pytest.mark.asyncio
async def test_pile_fault_stops_the_pile_until_cleared(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim, client = await charging(clock, serve_tcp)
    sim.inject(1, "pile_fault", code=42)
    sim.inject(2, "pile_fault", code=5)
    block = (await client.read_input_registers(0, count=14, device_id=1)).registers
    assert field(block, 0, REF["state"]) == RefState.FAULT
    assert field(block, 0, REF["fault_code"]) == 42
    assert field(block, 0, REF["power_w"]) == 0
    evse = (await client.read_holding_registers(1000, count=8, device_id=2)).registers
    assert field(evse, 1000, EVSE["vehicle_state"]) == 5
    assert field(evse, 1000, EVSE["current_a"]) == 0
    assert field(evse, 1000, EVSE["evse_state"]) == 3  # off
    clock.advance(100)
    assert await ref_meter_wh(client) == 1000  # no energy while faulted
    refused = await client.write_register(1000, 16, device_id=2)
    assert refused.isError() and refused.exception_code == 4

    sim.clear(1, "pile_fault")
    sim.clear(2)
    block = (await client.read_input_registers(0, count=14, device_id=1)).registers
    assert (field(block, 0, REF["state"]), field(block, 0, REF["fault_code"])) == (1, 0)
    evse = (await client.read_holding_registers(1000, count=8, device_id=2)).registers
    assert field(evse, 1000, EVSE["vehicle_state"]) == 2
    assert not (await client.write_register(1000, 16, device_id=2)).isError()


@pytest.mark.asyncio
async def test_a_silent_unit_makes_the_client_time_out(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim = Simulator(PILES, clock=clock)
    client = await serve_tcp(sim, timeout=0.2)
    sim.inject(1, "silent")
    with pytest.raises(ModbusIOException):
        await client.read_input_registers(0, count=1, device_id=1)
    assert not (await client.read_holding_registers(1000, count=1, device_id=2)).isError()
    sim.clear(1, "silent")
    assert (await client.read_input_registers(0, count=1, device_id=1)).registers == [0x4543]


@pytest.mark.asyncio
async def test_an_exception_fault_answers_every_request_with_its_code(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim = Simulator(PILES, clock=clock)
    client = await serve_tcp(sim)
    sim.inject(3, "exception", code=6)
    for reply in (
        await client.read_input_registers(0x48, count=2, device_id=3),
        await client.read_holding_registers(0, count=1, device_id=3),
        await client.write_register(0, 1, device_id=3),
    ):
        assert reply.isError() and reply.exception_code == 6
    sim.inject(3, "exception", code=4)  # injecting again replaces the code
    reply = await client.read_input_registers(0x48, count=2, device_id=3)
    assert reply.exception_code == 4
    sim.clear(3, "exception")
    assert not (await client.read_input_registers(0x48, count=2, device_id=3)).isError()


@pytest.mark.asyncio
async def test_a_late_answer_is_not_taken_for_the_next_request(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim = Simulator(PILES, clock=clock)
    client = await serve_tcp(sim, timeout=0.2)
    sim.inject(1, "delay", ms=250)
    with pytest.raises(ModbusIOException):
        await client.read_input_registers(0, count=1, device_id=1)  # magic, 0x4543
    sim.clear(1, "delay")
    # The late answer (0x4543) arrives during this request; the client must get its own.
    assert (await client.read_input_registers(2, count=2, device_id=1)).registers == [0, 36_000]

    sim.inject(1, "delay", ms=50)  # shorter than the timeout: answered, just later
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await client.read_input_registers(0, count=1, device_id=1)).registers == [0x4543]
    assert loop.time() - started >= 0.05


@pytest.mark.asyncio
async def test_a_delayed_answer_carries_its_own_transaction_and_unit(clock: FakeClock) -> None:
    sim = Simulator(PILES, clock=clock)
    sim.inject(3, "delay", ms=100)
    host, port = await sim.start_tcp("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(mbap(0xBEEF, 3, struct.pack(">BHH", 4, 0, 2)))
        writer.write(mbap(0xBEF0, 1, struct.pack(">BHH", 4, 0, 1)))
        transaction, unit, pdu = await read_mbap(reader)
        assert (transaction, unit, pdu[:2]) == (0xBEEF, 3, b"\x04\x04")
        assert decode(Kind.F32, struct.unpack(">HH", pdu[2:])) == 230.0
        assert await read_mbap(reader) == (0xBEF0, 1, b"\x04\x02\x45\x43")
    finally:
        writer.close()
        await sim.stop()


@pytest.mark.asyncio
async def test_a_frozen_meter_keeps_its_value_until_cleared(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim, client = await charging(clock, serve_tcp)
    sim.inject(1, "meter_frozen")
    sim.inject(3, "meter_frozen")
    clock.advance(100)
    assert await ref_meter_wh(client) == 1000
    assert round(await sdm_kwh(client) * 1000) == 305  # 11 kW for 100 s: 305.6 Wh, floored
    block = (await client.read_input_registers(0, count=14, device_id=1)).registers
    assert field(block, 0, REF["power_w"]) == 36_000  # the pile itself still charges
    sim.clear(1, "meter_frozen")
    sim.clear(3)
    assert await ref_meter_wh(client) == 2000
    assert round(await sdm_kwh(client) * 1000) == 611


@pytest.mark.asyncio
async def test_a_meter_that_goes_backwards_then_counts_on(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim, client = await charging(clock, serve_tcp)
    sim.inject(1, "meter_backwards", wh=300)
    sim.inject(3, "meter_backwards", wh=5)
    assert await ref_meter_wh(client) == 700
    assert round(await sdm_kwh(client) * 1000) == 300
    clock.advance(10)
    assert await ref_meter_wh(client) == 800
    sim.clear(1, "meter_backwards")
    assert await ref_meter_wh(client) == 1100
    sim.clear(3, "meter_backwards")
    assert round(await sdm_kwh(client) * 1000) == 336


@pytest.mark.asyncio
async def test_a_meter_reset_restarts_from_zero_and_clearing_keeps_the_new_count(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim, client = await charging(clock, serve_tcp)
    sim.inject(1, "meter_reset")
    assert await ref_meter_wh(client) == 0
    clock.advance(10)
    assert await ref_meter_wh(client) == 100
    sim.clear(1, "meter_reset")  # a rebooted meter does not get its old count back
    assert await ref_meter_wh(client) == 100
    unit = sim.state()["units"][0]  # type: ignore[index]
    assert (unit["meter_wh"], unit["reported_meter_wh"], unit["faults"]) == (1100, 100, {})
    sim.inject(3, "meter_reset")
    assert await sdm_kwh(client) == 0.0


@pytest.mark.asyncio
async def test_a_garbage_meter_shows_all_ones_or_nan(serve_tcp: ServeTcp, clock: FakeClock) -> None:
    sim, client = await charging(clock, serve_tcp)
    sim.inject(1, "meter_garbage")
    sim.inject(3, "meter_garbage")
    assert await ref_meter_wh(client) == (1 << 64) - 1
    assert math.isnan(await sdm_kwh(client))
    sim.clear(1)
    sim.clear(3, "meter_garbage")
    assert await ref_meter_wh(client) == 1000
    assert round(await sdm_kwh(client) * 1000) == 305


@pytest.mark.parametrize(
    ("unit", "kind", "params", "message"),
    [
        (3, "pile_fault", {"code": 1}, "unit 3 is a meter; inject it on its pile, unit 2"),
        (2, "meter_reset", {}, "meter faults go on its meter, unit 3"),
        (1, "pile_fault", {}, "parameter 'code' is missing"),
        (1, "pile_fault", {"code": 0}, "code must be an integer 1..65535"),
        (1, "delay", {"ms": 10, "jitter": 1}, "unknown parameter 'jitter'"),
        (1, "exception", {"code": 7}, "code must be a Modbus exception code"),
        (1, "exception", {"code": True}, "code must be an integer"),
        (1, "melt", {}, "unknown fault kind 'melt'"),
        (9, "silent", {}, "unit 9 is not simulated here"),
    ],
)
def test_faults_that_do_not_fit_are_refused_with_the_reason(
    clock: FakeClock, unit: int, kind: str, params: dict[str, object], message: str
) -> None:
    sim = Simulator(PILES, clock=clock)
    with pytest.raises(FaultError, match=message):
        sim.inject(unit, kind, **params)
    assert all(not entry.faults.active for entry in sim.units.values())
