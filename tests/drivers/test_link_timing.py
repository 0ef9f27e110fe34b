"""A link's quiet time before each transaction: the device's own pause, the link's `pause` as a
floor for every device, and neither for a quick device after a slow one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from drivers.devices.reference import REF_INPUT_COUNT
from drivers.link import ModbusLink
from drivers.link_spec import parse_link
from drivers.registers import Table
from firmware_sim.simulator import Simulator
from tests.firmware_sim.fakes import FakeClock

PAUSE_S = 0.3  # long beside a loopback transaction (well under a millisecond)


@pytest_asyncio.fixture
async def served() -> AsyncIterator[str]:
    sim = Simulator(["1:reference:7", "2:reference:7"], clock=FakeClock())
    host, port = await sim.start_tcp("127.0.0.1", 0)
    yield f"tcp://{host}:{port}?timeout=1"
    await sim.stop()


async def timed(link: ModbusLink, *reads: tuple[int, float]) -> float:
    """Seconds the reads (unit, the device's pause) take one after the other."""
    await link.read(Table.INPUT, 0, 1, 1)  # connected, and the last transaction just ended
    started = time.monotonic()
    for unit, pause_s in reads:
        await link.read(Table.INPUT, 0, REF_INPUT_COUNT, unit, pause_s)
    return time.monotonic() - started


@pytest.mark.asyncio
async def test_a_device_pause_comes_before_its_own_transactions_only(served: str) -> None:
    link = ModbusLink(parse_link(served))
    try:
        # Unit 2 waits its pause after unit 1's read; unit 1 then goes at once: one pause in
        # all (a pause kept after unit 2's read instead would make two).
        took_s = await timed(link, (1, 0.0), (2, PAUSE_S), (1, 0.0))
        assert PAUSE_S <= took_s < 2 * PAUSE_S
        # Two reads of the slow device in a row: a pause before each.
        took_s = await timed(link, (2, PAUSE_S), (2, PAUSE_S))
        assert took_s >= 2 * PAUSE_S
    finally:
        await link.close()


@pytest.mark.asyncio
async def test_the_links_pause_is_a_floor_for_every_device(served: str) -> None:
    link = ModbusLink(parse_link(f"{served}&pause={PAUSE_S}"))
    try:
        took_s = await timed(link, (1, 0.0), (2, 0.0))
        assert took_s >= 2 * PAUSE_S
        # A device's longer pause wins over the link's.
        took_s = await timed(link, (1, 2 * PAUSE_S))
        assert 2 * PAUSE_S <= took_s < 3 * PAUSE_S
    finally:
        await link.close()
