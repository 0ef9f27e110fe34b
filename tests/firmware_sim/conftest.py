"""Shared pieces of the simulator tests: an injected clock, served simulators, raw frames."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from pymodbus.client import AsyncModbusTcpClient

from firmware_sim.simulator import Simulator


class FakeClock:
    """A time source the test moves by hand: nothing sleeps on wall time."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


ServeTcp = Callable[..., Awaitable[AsyncModbusTcpClient]]


@pytest_asyncio.fixture
async def serve_tcp() -> AsyncIterator[ServeTcp]:
    """serve_tcp(sim, timeout=1.0): the sim on a free TCP port and a connected pymodbus client;
    both are closed after the test."""
    sims: list[Simulator] = []
    clients: list[AsyncModbusTcpClient] = []

    async def serve(sim: Simulator, timeout: float = 1.0) -> AsyncModbusTcpClient:
        host, port = await sim.start_tcp("127.0.0.1", 0)
        sims.append(sim)
        client = AsyncModbusTcpClient(host, port=port, timeout=timeout, retries=0)
        clients.append(client)
        assert await client.connect()
        return client

    yield serve
    for client in clients:
        client.close()
    for sim in sims:
        await sim.stop()


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
