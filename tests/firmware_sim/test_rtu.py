"""Modbus RTU over a pty pair: every profile, several units on one bus, and what a bus ignores."""

from __future__ import annotations

import asyncio
import os
import struct
import tty
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusIOException

from drivers.devices.evse_wb import EVSE
from drivers.devices.reference import REF, REF_MAGIC, RefState
from drivers.registers import Kind, decode, field
from firmware_sim.rtu import with_crc
from firmware_sim.simulator import Simulator
from tests.firmware_sim.fakes import FakeClock

PILES = ["1:reference:30", "3:evse-wb:11:meter=4:sdm630", "6:reference:7"]


@pytest_asyncio.fixture
async def bus(clock: FakeClock) -> AsyncIterator[tuple[Simulator, str]]:
    sim = Simulator(PILES, clock=clock)
    path = await sim.start_pty()
    yield sim, path
    await sim.stop()


def serial_client(path: str, timeout: float = 1.0) -> AsyncModbusSerialClient:
    return AsyncModbusSerialClient(
        path, framer=FramerType.RTU, baudrate=9600, timeout=timeout, retries=0
    )


@pytest.mark.asyncio
async def test_every_profile_on_one_bus(bus: tuple[Simulator, str], clock: FakeClock) -> None:
    _, path = bus
    client = serial_client(path)
    assert await client.connect()
    try:
        ref = (await client.read_input_registers(0, count=14, device_id=1)).registers
        assert field(ref, 0, REF["magic"]) == REF_MAGIC
        assert field(ref, 0, REF["rated_power_w"]) == 30_000
        other = (await client.read_input_registers(0, count=14, device_id=6)).registers
        assert field(other, 0, REF["rated_power_w"]) == 7_000

        await client.write_register(6, 0, device_id=1)  # watchdog off
        assert not (await client.write_registers(0, [1], device_id=1)).isError()
        assert not (await client.write_registers(1000, [10], device_id=3)).isError()
        clock.advance(360)
        ref = (await client.read_input_registers(0, count=14, device_id=1)).registers
        assert field(ref, 0, REF["state"]) == RefState.CHARGING
        assert field(ref, 0, REF["meter_wh"]) == 3000  # 30 kW for 6 minutes
        evse = (await client.read_holding_registers(1000, count=8, device_id=3)).registers
        assert field(evse, 1000, EVSE["current_a"]) == 10
        assert field(evse, 1000, EVSE["vehicle_state"]) == 3
        energy = (await client.read_input_registers(0x48, count=2, device_id=4)).registers
        assert round(decode(Kind.F32, energy) * 1000) == 690  # 10 A x 690 V for 0.1 h
        refused = await client.write_register(1000, 3, device_id=3)
        assert refused.isError() and refused.exception_code == 3
    finally:
        client.close()


@pytest.mark.asyncio
async def test_a_silent_unit_times_out_while_the_others_answer(
    bus: tuple[Simulator, str],
) -> None:
    sim, path = bus
    sim.inject(6, "silent")
    client = serial_client(path, timeout=0.2)
    assert await client.connect()
    try:
        with pytest.raises(ModbusIOException):
            await client.read_input_registers(0, count=1, device_id=6)
        assert (await client.read_input_registers(0, count=1, device_id=1)).registers == [REF_MAGIC]
        sim.clear(6, "silent")
        assert (await client.read_input_registers(0, count=1, device_id=6)).registers == [REF_MAGIC]
    finally:
        client.close()


class RawLine:
    """The driver's end of the pty, opened raw: bytes in, bytes out."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.buffer = bytearray()

    async def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def receive(self, size: int, timeout: float = 1.0) -> bytes:
        """Exactly `size` bytes, or what came before the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.buffer) < size and loop.time() < deadline:
            try:
                self.buffer += os.read(self.fd, 256)
            except BlockingIOError:
                await asyncio.sleep(0.005)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def close(self) -> None:
        os.close(self.fd)


def read_request(unit: int, function: int, address: int, count: int) -> bytes:
    return with_crc(struct.pack(">BBHH", unit, function, address, count))


@pytest.mark.asyncio
async def test_bad_crc_garbage_and_unknown_units_get_no_answer(
    bus: tuple[Simulator, str],
) -> None:
    _, path = bus
    line = RawLine(path)
    try:
        good = read_request(1, 4, 0, 1)
        answer = with_crc(struct.pack(">BBBH", 1, 4, 2, REF_MAGIC))
        await line.send(good)
        assert await line.receive(len(answer)) == answer

        await line.send(good[:-1] + bytes([good[-1] ^ 0x55]))  # bad CRC
        assert await line.receive(1, timeout=0.15) == b""
        await line.send(b"\x01\x63\xde\xad\xbe\xef")  # no such function code: garbage
        assert await line.receive(1, timeout=0.15) == b""
        await line.send(read_request(9, 4, 0, 1))  # nobody on the bus has unit 9
        assert await line.receive(1, timeout=0.15) == b""
        await line.send(read_request(0, 4, 0, 1))  # broadcast: no answer either
        assert await line.receive(1, timeout=0.15) == b""

        # The bus has recovered: the next good request is answered, an exception too.
        await line.send(good)
        assert await line.receive(len(answer)) == answer
        await line.send(read_request(1, 4, 20, 1))
        assert await line.receive(5) == with_crc(b"\x01\x84\x02")
        # Two requests in one write are both answered, in order.
        await line.send(read_request(6, 4, 2, 2) + read_request(1, 4, 2, 2))
        assert await line.receive(9) == with_crc(struct.pack(">BBBHH", 6, 4, 4, 0, 7000))
        assert await line.receive(9) == with_crc(struct.pack(">BBBHH", 1, 4, 4, 0, 30000))
    finally:
        line.close()


@pytest.mark.asyncio
async def test_a_delayed_answer_keeps_its_unit_and_holds_the_bus(
    bus: tuple[Simulator, str],
) -> None:
    sim, path = bus
    sim.inject(1, "delay", ms=150)
    line = RawLine(path)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await line.send(read_request(1, 4, 0, 1) + read_request(6, 4, 0, 1))
        first = await line.receive(7)
        assert loop.time() - started >= 0.15
        assert first == with_crc(struct.pack(">BBBH", 1, 4, 2, REF_MAGIC))
        assert await line.receive(7) == with_crc(struct.pack(">BBBH", 6, 4, 2, REF_MAGIC))
    finally:
        line.close()


@pytest.mark.asyncio
async def test_serving_an_existing_serial_device(clock: FakeClock) -> None:
    # The pty's slave stands for /dev/ttyUSB0; the test is the master, i.e. the wire.
    master, slave = os.openpty()
    sim = Simulator(["1:reference:30"], clock=clock)
    try:
        await sim.start_serial(os.ttyname(slave), baudrate=19200, parity="E")
        os.set_blocking(master, False)
        os.write(master, read_request(1, 4, 0, 1))
        answer = with_crc(struct.pack(">BBBH", 1, 4, 2, REF_MAGIC))
        received = b""
        for _ in range(200):
            try:
                received += os.read(master, 64)
            except BlockingIOError:
                await asyncio.sleep(0.005)
            if len(received) >= len(answer):
                break
        assert received == answer
    finally:
        await sim.stop()
        os.close(master)
        os.close(slave)
