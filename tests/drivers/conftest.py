"""The drivers' tests' fixture: a bench (tests/drivers/sim_bench.py) closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.drivers.sim_bench import Bench


@pytest_asyncio.fixture
async def bench() -> AsyncIterator[Bench]:
    b = Bench()
    yield b
    await b.close()
