"""The hub keeps a bill that the database cannot take yet, and stores it once it can."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.config import Config, StationSettings, parse_tariff
from controller.door import Door
from controller.live import ControlLoop, PileLink
from controller.storage import DATABASE_FILENAME
from controller.values import Mode
from drivers.sim_pile import SimPile
from server.accounts.accounts import Accounts, load_secret
from server.assembly.database import open_async_storage
from server.driver_api.hub import Hub
from tests.controller.harness import pile
from tests.firmware_sim.conftest import FakeClock


@pytest.mark.asyncio
async def test_a_bill_written_while_the_database_is_locked_is_stored_later(tmp_path: Path) -> None:
    path = tmp_path / DATABASE_FILENAME
    storage = await open_async_storage(path, busy_timeout_ms=20)
    accounts = Accounts(storage, load_secret(tmp_path))
    user_id = await accounts.create_user("eve", "eve-pass-1", "driver")
    clock = FakeClock()
    clock.advance(6 * 3600)
    hub = Hub(storage, UTC, lambda: datetime(2026, 11, 23, 7, 0, tzinfo=UTC))
    cfg = Config(StationSettings(), parse_tariff({}), (pile(1, "A", Mode.FAST, 30),))
    loop = ControlLoop(cfg, {1: PileLink(SimPile("A", 30_000, clock))}, clock)
    hub.attach(Door(loop))
    loop.station.request(loop.now_tick(), str(user_id), Mode.FAST, loop.units.energy_from_wh(5000))
    await loop.tick()

    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    clock.advance(600)  # 30 kW for 10 min: the 5 kWh are delivered
    await loop.tick()
    assert loop.station.requests == {}  # the session ended and its bill was made
    # Several attempts fail meanwhile (0.2 + 0.4 + ... s apart): longer than five of them take,
    # so a store that gave up after a few tries would lose the bill here.
    await asyncio.sleep(3.2)
    assert await storage.run(lambda s: s.bills_of(user_id, 10)) == []
    other.execute("ROLLBACK")
    other.close()
    await hub.drain(timeout_s=10)
    (bill,) = await storage.run(lambda s: s.bills_of(user_id, 10))
    assert bill.energy_wh == 5000
    await storage.close()
