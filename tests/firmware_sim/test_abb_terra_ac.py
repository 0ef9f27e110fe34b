"""The simulated ABB Terra AC at its raw registers, with a plain pymodbus client: addresses and
encodings as the hardware notes (4b) document them, not as the driver reads them."""

from __future__ import annotations

import pytest
from pymodbus.client import AsyncModbusTcpClient

from firmware_sim.simulator import Simulator
from tests.firmware_sim.fakes import FakeClock, ServeTcp

UNIT = 1


async def pair(client: AsyncModbusTcpClient, address: int) -> list[int]:
    """One 32-bit value: two holding registers, high word first (FC03)."""
    reply = await client.read_holding_registers(address, count=2, device_id=UNIT)
    assert not reply.isError(), (hex(address), reply)
    return list(reply.registers)


async def refused(client: AsyncModbusTcpClient, request: object) -> int:
    reply = await request  # type: ignore[misc]
    assert reply.isError()
    return int(reply.exception_code)


@pytest.mark.asyncio
async def test_a_current_limit_in_ma_starts_a_session_and_the_state_is_in_byte_2(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    client = await serve_tcp(Simulator(["1:abb-terra-ac:22"], clock=clock))
    # Max rated current 0x4006: 22000 W / (3 x 230 V) = 31.884 A -> 31884 mA (rounded down).
    assert await pair(client, 0x4006) == [0, 31884]
    assert await pair(client, 0x400C) == [0, 0]  # state 0: A, no vehicle
    assert await pair(client, 0x4004) == [0x0106, 0x0500]  # firmware 1.6.5, a byte each

    # 16 A = 16000 mA = 0x00003E80 to 0x4100, two registers high word first, FC16.
    reply = await client.write_registers(0x4100, [0x0000, 0x3E80], device_id=UNIT)
    assert not reply.isError()
    # 0x400C, bytes b0 b1 b2 b3: b2 (the high byte of 0x400D) is the state, 4 = C2 charging.
    assert await pair(client, 0x400C) == [0x0000, 0x0400]
    assert await pair(client, 0x400E) == [0, 16000]  # the limit in force, mA
    # Power 0x401C: 16 A x 230 V x 3 phases = 11040 W; each phase 0x4010.. carries 16000 mA.
    assert await pair(client, 0x401C) == [0, 11040]
    currents = await client.read_holding_registers(0x4010, count=6, device_id=UNIT)
    assert currents.registers == [0, 16000, 0, 16000, 0, 16000]
    assert await pair(client, 0x4016) == [0, 2300]  # L1 voltage in 0.1 V
    assert await pair(client, 0x400A) == [0, 0x0101]  # the cable is plugged and locked

    clock.advance(1800)  # half an hour at 11040 W: 5520 Wh
    assert await pair(client, 0x401E) == [0, 5520]  # session energy, Wh

    # 0 stops the session; the vehicle is still plugged in: state 5, session stopped.
    assert not (await client.write_registers(0x4100, [0, 0], device_id=UNIT)).isError()
    assert await pair(client, 0x400C) == [0x0000, 0x0500]
    assert await pair(client, 0x401C) == [0, 0]
    assert await pair(client, 0x401E) == [0, 5520]  # the stopped session's energy stays
    clock.advance(600)
    # A new limit starts a new session: its energy counts from 0 again.
    assert not (await client.write_registers(0x4100, [0, 6000], device_id=UNIT)).isError()
    clock.advance(3600)  # 6 A x 690 V = 4140 W for an hour
    assert await pair(client, 0x401E) == [0, 4140]
    clock.advance(15 * 3600)  # 16 h in all: 66240 Wh = 0x000102C0 needs the high word
    assert await pair(client, 0x401E) == [0x0001, 0x02C0]


@pytest.mark.asyncio
async def test_what_a_terra_ac_refuses(serve_tcp: ServeTcp, clock: FakeClock) -> None:
    client = await serve_tcp(Simulator(["1:abb-terra-ac:11"], clock=clock))
    # 11000 W on 3 phases: at most 15942 mA. 16 A is above its rating, 5 A below the 6 A minimum.
    assert await refused(client, client.write_registers(0x4100, [0, 16000], device_id=UNIT)) == 3
    assert await refused(client, client.write_registers(0x4100, [0, 5000], device_id=UNIT)) == 3
    # FC06 is not its way of writing, FC04 not of reading (exception 01, illegal function).
    assert await refused(client, client.write_register(0x4100, 0, device_id=UNIT)) == 1
    assert await refused(client, client.read_input_registers(0x400C, count=2, device_id=UNIT)) == 1
    # 0x4100 is write-only; 0x4102 (set phases, "not supported") and 0x5000 are no registers.
    read = client.read_holding_registers
    assert await refused(client, read(0x4100, count=2, device_id=UNIT)) == 2
    assert await refused(client, read(0x4102, count=1, device_id=UNIT)) == 2
    assert await refused(client, read(0x5000, count=2, device_id=UNIT)) == 2
    # Read-only registers refuse a write.
    assert await refused(client, client.write_registers(0x400C, [0, 4], device_id=UNIT)) == 2
    assert await pair(client, 0x400C) == [0, 0]  # nothing changed


@pytest.mark.asyncio
async def test_an_error_shows_in_0x4008_and_stops_the_session(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    sim = Simulator(["1:abb-terra-ac:11:phases=1"], clock=clock)
    client = await serve_tcp(sim)
    # Single phase: 11000 W / 230 V = 47.826 A -> 47826 mA.
    assert await pair(client, 0x4006) == [0, 47826]
    assert not (await client.write_registers(0x4100, [0, 32000], device_id=UNIT)).isError()
    assert await pair(client, 0x401C) == [0, 7360]  # 32 A x 230 V
    # Only L1 carries current on a single-phase pile.
    currents = await client.read_holding_registers(0x4010, count=6, device_id=UNIT)
    assert currents.registers == [0, 32000, 0, 0, 0, 0]
    sim.inject(UNIT, "pile_fault", code=0x1234)
    assert await pair(client, 0x4008) == [0x0000, 0x1234]
    assert await pair(client, 0x401C) == [0, 0]
    assert await pair(client, 0x400E) == [0, 0]  # no limit in force
    # A start while the error shows: exception 04, device failure.
    assert await refused(client, client.write_registers(0x4100, [0, 6000], device_id=UNIT)) == 4
