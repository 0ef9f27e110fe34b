"""The simulated KEBA KeContact P30 at its raw registers, with a plain pymodbus client: unit 255,
one 32-bit value a read, 16-bit settings written with FC06, power in mW, energy in 0.1 Wh, and
the fail-safe timeout (hardware notes 4b)."""

from __future__ import annotations

import pytest
from pymodbus.client import AsyncModbusTcpClient

from firmware_sim.simulator import Simulator
from tests.firmware_sim.fakes import FakeClock, ServeTcp

UNIT = 255  # the P30's unit id over Modbus TCP


async def value(client: AsyncModbusTcpClient, address: int) -> int:
    """One 32-bit value: FC03 of 2 registers, high word first."""
    reply = await client.read_holding_registers(address, count=2, device_id=UNIT)
    assert not reply.isError(), (address, reply)
    high, low = reply.registers
    return (high << 16) | low


async def write(client: AsyncModbusTcpClient, address: int, word: int) -> None:
    reply = await client.write_register(address, word, device_id=UNIT)  # FC06
    assert not reply.isError(), (address, word, reply)


async def refused(request: object) -> int:
    reply = await request  # type: ignore[misc]
    assert reply.isError()
    return int(reply.exception_code)


@pytest.mark.asyncio
async def test_enable_and_current_start_charging_counted_in_mw_and_tenths_of_wh(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    client = await serve_tcp(Simulator(["255:keba-p30:22:meter_wh=1000"], clock=clock))
    assert await value(client, 1000) == 1  # not ready: no vehicle
    assert await value(client, 1004) == 0  # no cable
    assert await value(client, 1036) == 10_000  # 1000 Wh in 0.1 Wh

    await write(client, 5004, 16_000)  # 16 A in mA
    await write(client, 5014, 1)  # enable
    assert await value(client, 1000) == 3  # charging
    assert await value(client, 1004) == 7  # plugged in at both ends and locked
    # 16 A x 230 V x 3 phases = 11040 W = 11,040,000 mW.
    assert await value(client, 1020) == 11_040_000
    assert [await value(client, a) for a in (1008, 1010, 1012)] == [16_000] * 3
    assert await value(client, 1040) == 230  # L1 voltage, V

    clock.advance(1)  # 11040 J = 3.0667 Wh: 30 tenths of a Wh, rounded down
    assert await value(client, 1036) == 10_000 + 30
    assert await value(client, 1502) == 30  # the session's energy, also 0.1 Wh
    clock.advance(3599)  # an hour in all: 11040 Wh = 110400 tenths
    assert await value(client, 1036) == 10_000 + 110_400

    await write(client, 5014, 0)  # disable: suspended, the vehicle still plugged in
    assert await value(client, 1000) == 5
    assert await value(client, 1020) == 0
    assert await value(client, 1004) == 7


@pytest.mark.asyncio
async def test_one_value_a_read_fc06_writes_and_write_only_settings(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    client = await serve_tcp(Simulator(["255:keba-p30:11"], clock=clock))
    read = client.read_holding_registers
    assert await refused(read(1000, count=4, device_id=UNIT)) == 3  # more than 2 registers
    assert await refused(read(1001, count=2, device_id=UNIT)) == 2  # splits two values
    assert await refused(read(5004, count=1, device_id=UNIT)) == 2  # a setting: write-only
    assert await refused(read(1500, count=2, device_id=UNIT)) == 2  # RFID: not simulated
    assert await refused(client.read_input_registers(1000, count=2, device_id=UNIT)) == 1
    assert await refused(client.write_registers(5014, [1], device_id=UNIT)) == 1  # FC16
    # 11000 W on 3 phases: at most 11000 / 690 = 15.942 A, so 16 A is refused; 5 A too little.
    assert await refused(client.write_register(5004, 16_000, device_id=UNIT)) == 3
    assert await refused(client.write_register(5004, 5_000, device_id=UNIT)) == 3
    assert await refused(client.write_register(5014, 2, device_id=UNIT)) == 3
    assert await refused(client.write_register(1000, 3, device_id=UNIT)) == 2  # read-only
    assert await value(client, 1000) == 1  # nothing changed


@pytest.mark.asyncio
async def test_the_fail_safe_stops_a_session_not_fed_in_time(
    serve_tcp: ServeTcp, clock: FakeClock
) -> None:
    client = await serve_tcp(Simulator(["255:keba-p30:11"], clock=clock))
    await write(client, 5018, 30)  # fail-safe timeout 30 s, and fed
    assert await value(client, 1602) == 30
    await write(client, 5004, 10_000)  # 10 A x 690 V = 6900 W
    await write(client, 5014, 1)
    clock.advance(20)
    await write(client, 5018, 30)  # fed at 20 s: the deadline moves to 50 s
    clock.advance(25)
    assert await value(client, 1000) == 3  # 45 s: still charging
    clock.advance(100)  # silent: it fell back to 0 A at 50 s
    assert await value(client, 1000) == 5
    assert await value(client, 1020) == 0
    # 6900 W for 50 s = 345000 J = 95.83 Wh: 958 tenths.
    assert await value(client, 1036) == 958
    await write(client, 5014, 1)  # commanded again, but not fed: it falls back at once
    assert await value(client, 1000) == 5
    await write(client, 5018, 30)  # fed, then commanded: it charges
    await write(client, 5014, 1)
    assert await value(client, 1000) == 3
