"""Every profile read and written over Modbus TCP, and the refusals, as a client sees them."""

from __future__ import annotations

import asyncio
import struct

import pytest

from drivers.devices.evse_wb import EVSE, EVSE_STATUS_COUNT, EVSE_STATUS_START, EvseVehicleState
from drivers.devices.reference import REF, REF_INPUT_COUNT, REF_MAGIC, RefState
from drivers.devices.sdm import SDM
from drivers.registers import Kind, decode, encode, field
from firmware_sim.simulator import Simulator
from tests.firmware_sim.fakes import FakeClock, ServeTcp, mbap, read_mbap


def f32(regs: list[int]) -> float:
    return float(decode(Kind.F32, regs))


@pytest.mark.asyncio
async def test_reference_pile_identity_session_and_meter(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim = Simulator(["1:reference:30"], clock=clock)
    client = await serve_tcp(sim)
    block = (await client.read_input_registers(0, count=REF_INPUT_COUNT, device_id=1)).registers
    assert field(block, 0, REF["magic"]) == REF_MAGIC
    assert field(block, 0, REF["map_version"]) == 1
    assert field(block, 0, REF["rated_power_w"]) == 30_000
    assert field(block, 0, REF["state"]) == RefState.NO_VEHICLE
    holding = (await client.read_holding_registers(0, count=7, device_id=1)).registers
    assert holding == [0, *encode(Kind.U32, 30_000), 0, 0, 0, 10]  # watchdog 10 s by default

    assert not (await client.write_register(6, 0, device_id=1)).isError()  # no watchdog here
    # Setpoint and limit first, then enable, as the driver does (FC16 then FC06).
    reply = await client.write_registers(1, [*encode(Kind.U32, 20_000), 0, 0], device_id=1)
    assert not reply.isError()
    assert not (await client.write_register(0, 1, device_id=1)).isError()
    clock.advance(90)  # 20 kW for 90 s = 500 Wh
    block = (await client.read_input_registers(0, count=REF_INPUT_COUNT, device_id=1)).registers
    assert field(block, 0, REF["state"]) == RefState.CHARGING
    assert field(block, 0, REF["power_w"]) == 20_000
    assert field(block, 0, REF["meter_wh"]) == 500
    assert field(block, 0, REF["session_wh"]) == 500
    assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [1]

    assert not (await client.write_register(0, 0, device_id=1)).isError()
    clock.advance(90)
    block = (await client.read_input_registers(0, count=REF_INPUT_COUNT, device_id=1)).registers
    assert field(block, 0, REF["state"]) == RefState.CONNECTED
    assert field(block, 0, REF["power_w"]) == 0
    assert field(block, 0, REF["meter_wh"]) == 500


@pytest.mark.asyncio
async def test_evse_wb_and_its_sdm630_meter(serve_tcp: ServeTcp, clock: FakeClock) -> None:
    sim = Simulator(["1:evse-wb:11:meter=2:sdm630"], clock=clock)
    client = await serve_tcp(sim)
    status = await client.read_holding_registers(
        EVSE_STATUS_START, count=EVSE_STATUS_COUNT, device_id=1
    )
    assert field(status.registers, EVSE_STATUS_START, EVSE["vehicle_state"]) == 1
    assert field(status.registers, EVSE_STATUS_START, EVSE["firmware"]) > 0
    assert field(status.registers, EVSE_STATUS_START, EVSE["evse_state"]) == 1  # steady 12 V

    assert not (await client.write_registers(1000, [16], device_id=1)).isError()  # FC16
    clock.advance(1800)
    block = (await client.read_holding_registers(1000, count=8, device_id=1)).registers
    assert field(block, 1000, EVSE["current_a"]) == 16
    assert field(block, 1000, EVSE["actual_current_a"]) == 16
    assert field(block, 1000, EVSE["vehicle_state"]) == EvseVehicleState.CHARGING
    assert field(block, 1000, EVSE["evse_state"]) == 2  # PWM
    # 16 A x 230 V x 3 = 11,040 W, capped at the 11 kW rating: 5.5 kWh in half an hour.
    meter = (await client.read_input_registers(0, count=0x12, device_id=2)).registers
    assert f32(meter[0:2]) == 230.0
    assert f32(meter[0x0C:0x0E]) == pytest.approx(11_000 / 3)
    energy = (await client.read_input_registers(0x48, count=4, device_id=2)).registers
    assert f32(energy[0:2]) == pytest.approx(5.5)
    assert f32(energy[2:4]) == 0.0
    power = await client.read_input_registers(SDM["power_w"].address, count=2, device_id=2)
    assert f32(power.registers) == 11_000.0

    # A lower current is a lower power (6 A x 690 V = 4140 W), not a new session.
    assert not (await client.write_register(1000, 6, device_id=1)).isError()
    assert f32((await client.read_input_registers(0x34, count=2, device_id=2)).registers) == 4140
    assert sim.model(1).session_energy > 0
    assert not (await client.write_register(1000, 0, device_id=1)).isError()
    block = (await client.read_holding_registers(1000, count=8, device_id=1)).registers
    assert field(block, 1000, EVSE["vehicle_state"]) == EvseVehicleState.CONNECTED
    assert field(block, 1000, EVSE["actual_current_a"]) == 0


@pytest.mark.asyncio
async def test_single_phase_evse_with_an_sdm120(serve_tcp: ServeTcp, clock: FakeClock) -> None:
    sim = Simulator(["4:evse-wb:7.4:phases=1:meter=5:sdm120"], clock=clock)
    client = await serve_tcp(sim)
    assert not (await client.write_register(1000, 32, device_id=4)).isError()
    clock.advance(3600)
    current = (await client.read_input_registers(0x06, count=2, device_id=5)).registers
    assert f32(current) == 32.0  # the nearest whole current to 7.4 kW: 32 A x 230 V = 7360 W
    power = (await client.read_input_registers(0x0C, count=2, device_id=5)).registers
    assert f32(power) == 7360.0  # the SDM120's total power is its L1 power
    # A single-phase meter has no L2/L3 registers: a block read across them is refused.
    reply = await client.read_input_registers(0, count=0x0E, device_id=5)
    assert reply.isError() and reply.exception_code == 2
    energy = (await client.read_input_registers(0x48, count=2, device_id=5)).registers
    assert round(f32(energy) * 1000) == 7360
    # The SDM120 has no total-power register 0x34.
    reply = await client.read_input_registers(0x34, count=2, device_id=5)
    assert reply.isError() and reply.exception_code == 2


@pytest.mark.asyncio
async def test_refusals_carry_the_right_exception_codes(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim = Simulator(["1:reference:30", "3:evse-wb:11"], clock=clock)
    client = await serve_tcp(sim)

    async def code(request: object) -> int:
        reply = await request  # type: ignore[misc]
        assert reply.isError()
        return int(reply.exception_code)

    assert await code(client.read_coils(0, count=1, device_id=1)) == 1  # illegal function
    assert await code(client.read_input_registers(10, count=5, device_id=1)) == 2  # 14 is past
    assert await code(client.read_holding_registers(100, count=1, device_id=1)) == 2
    assert await code(client.write_register(7, 1, device_id=1)) == 2  # past the map
    assert await code(client.write_register(1001, 5, device_id=3)) == 2  # read-only
    assert await code(client.write_register(0, 2, device_id=1)) == 3  # enable is 0 or 1
    assert await code(client.write_register(1000, 5, device_id=3)) == 3  # below 6 A
    assert await code(client.write_register(1000, 17, device_id=3)) == 3  # above 16 A
    sim.inject(1, "pile_fault", code=7)
    assert await code(client.write_register(0, 1, device_id=1)) == 4  # faulted: cannot start
    # A refused FC16 changes nothing, not even its valid part.
    before = (await client.read_holding_registers(0, count=7, device_id=1)).registers
    assert await code(client.write_registers(0, [2, 0, 1000, 0, 50, 0, 9], device_id=1)) == 3
    assert (await client.read_holding_registers(0, count=7, device_id=1)).registers == before
    # Unknown unit on TCP: exception 0x0B, gateway target failed to respond.
    assert await code(client.read_holding_registers(0, count=1, device_id=9)) == 0x0B


@pytest.mark.asyncio
async def test_a_write_of_one_word_of_a_two_word_value_keeps_the_other(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim = Simulator(["1:reference:100"], clock=clock)
    client = await serve_tcp(sim)
    await client.write_register(2, 50_000, device_id=1)  # low word of setpoint_w (100,000 W)
    regs = (await client.read_holding_registers(1, count=2, device_id=1)).registers
    assert decode(Kind.U32, regs) == (100_000 & 0xFFFF0000) + 50_000
    assert sim.model(1).setpoint_w == decode(Kind.U32, regs)


@pytest.mark.asyncio
async def test_malformed_requests_on_the_wire(clock: FakeClock) -> None:
    sim = Simulator(["1:reference:30"], clock=clock)
    host, port = await sim.start_tcp("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(mbap(1, 1, struct.pack(">BHH", 4, 0, 126)))  # count over 125
        writer.write(mbap(2, 1, struct.pack(">BHH", 3, 0, 0)))  # count 0
        writer.write(mbap(3, 1, struct.pack(">BHHB", 16, 1, 2, 3) + b"\x00\x01\x02"))  # bytes
        writer.write(mbap(4, 1, b"\x2b\x0e\x01\x00"))  # read device identification: not here
        assert await read_mbap(reader) == (1, 1, b"\x84\x03")
        assert await read_mbap(reader) == (2, 1, b"\x83\x03")
        assert await read_mbap(reader) == (3, 1, b"\x90\x03")
        assert await read_mbap(reader) == (4, 1, b"\xab\x01")
        # Not Modbus (protocol id 1): the server closes the connection.
        writer.write(struct.pack(">HHHB", 5, 1, 6, 1) + struct.pack(">BHH", 3, 0, 1))
        assert await asyncio.wait_for(reader.read(), 1.0) == b""
    finally:
        writer.close()
        await sim.stop()


@pytest.mark.asyncio
async def test_requests_on_one_connection_are_answered_in_order(clock: FakeClock) -> None:
    sim = Simulator(["1:reference:30", "2:reference:7"], clock=clock)
    sim.inject(1, "delay", ms=100)
    host, port = await sim.start_tcp("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        # Sent back to back: the delayed answer to unit 1 still comes first.
        writer.write(mbap(7, 1, struct.pack(">BHH", 4, 2, 2)))
        writer.write(mbap(8, 2, struct.pack(">BHH", 4, 2, 2)))
        assert await read_mbap(reader) == (7, 1, struct.pack(">BBHH", 4, 4, 0, 30_000))
        assert await read_mbap(reader) == (8, 2, struct.pack(">BBHH", 4, 4, 0, 7_000))
    finally:
        writer.close()
        await sim.stop()


@pytest.mark.asyncio
async def test_port_per_pile_serves_each_pile_and_its_meter_on_its_own_port(
    clock: FakeClock,
) -> None:
    sim = Simulator(["1:reference:30", "2:evse-wb:11:meter=3"], clock=clock)
    ports = await sim.start_tcp_per_pile("127.0.0.1")
    assert ports[2] == ports[3] != ports[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", ports[1])
    try:
        writer.write(mbap(1, 1, struct.pack(">BHH", 4, 0, 1)))
        assert await read_mbap(reader) == (1, 1, struct.pack(">BBH", 4, 2, REF_MAGIC))
        writer.write(mbap(2, 3, struct.pack(">BHH", 4, 0x48, 2)))  # the meter is not here
        assert await read_mbap(reader) == (2, 3, b"\x84\x0b")
    finally:
        writer.close()
        await sim.stop()
