"""Test fakes and frame helpers shared by the simulator's, the drivers' and the station's tests:
an injected clock and raw Modbus TCP frames."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

from pymodbus.client import AsyncModbusTcpClient


class FakeClock:
    """A time source the test moves by hand: nothing sleeps on wall time."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


# serve_tcp(sim, timeout=1.0), the fixture of tests/firmware_sim/conftest.py
ServeTcp = Callable[..., Awaitable[AsyncModbusTcpClient]]


def mbap(transaction: int, unit: int, pdu: bytes) -> bytes:
    """A Modbus TCP request frame."""
    return struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu


async def read_mbap(reader: asyncio.StreamReader, timeout: float = 1.0) -> tuple[int, int, bytes]:
    """(transaction id, unit id, PDU) of the next Modbus TCP frame."""
    header = await asyncio.wait_for(reader.readexactly(7), timeout)
    transaction, protocol, length, unit = struct.unpack(">HHHB", header)
    assert protocol == 0
    pdu = await asyncio.wait_for(reader.readexactly(length - 1), timeout)
    return transaction, unit, pdu
