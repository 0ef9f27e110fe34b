"""Fixtures of the simulator tests: an injected clock and served simulators (the fakes
themselves are in tests/firmware_sim/fakes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pymodbus.client import AsyncModbusTcpClient

from firmware_sim.simulator import Simulator
from tests.firmware_sim.fakes import FakeClock, ServeTcp


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


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
