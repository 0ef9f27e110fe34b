"""The ledger: a bill that the database cannot take yet is stored once it can, and bills go
to the accounts of the users whose cars they are."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC
from pathlib import Path

import pytest

from controller.config import Config, StationSettings, parse_tariff
from controller.door import Door
from controller.ledger import Ledger, bill_user_id
from controller.live import ControlLoop, PileDevices
from controller.storage import DATABASE_FILENAME
from controller.values import Mode
from firmware_sim.in_process import SimPile
from server.accounts.accounts import Accounts, load_secret
from server.assembly.database import open_async_storage
from tests.controller.harness import pile
from tests.firmware_sim.fakes import FakeClock


@pytest.mark.asyncio
async def test_a_bill_written_while_the_database_is_locked_is_stored_later(tmp_path: Path) -> None:
    path = tmp_path / DATABASE_FILENAME
    storage = await open_async_storage(path, busy_timeout_ms=20)
    accounts = Accounts(storage, load_secret(tmp_path))
    user_id = await accounts.create_user("eve", "eve-pass-1", "driver")
    clock = FakeClock()
    clock.advance(6 * 3600)
    cfg = Config(StationSettings(), parse_tariff({}), (pile(1, "A", Mode.FAST, 30),))
    loop = ControlLoop(cfg, {1: PileDevices(SimPile("A", 30_000, clock))}, clock)
    ledger = Ledger(storage, loop.units, UTC)
    ledger.attach(Door(loop))
    loop.station.request(loop.now_tick(), user_id, Mode.FAST, loop.units.energy_from_wh(5000))
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
    await ledger.drain(timeout_s=10)
    (bill,) = await storage.run(lambda s: s.bills_of(user_id, 10))
    assert bill.energy_wh == 5000
    await storage.close()


def test_a_state_saved_with_cars_as_text_carries_on_with_the_users_ids() -> None:
    """Before cars were kept as integers, a saved state held each user's id as text: after the
    upgrade the same users find their requests (and their bills go to their accounts)."""
    clock = FakeClock()
    clock.advance(6 * 3600)
    cfg = Config(StationSettings(), parse_tariff({}), (pile(1, "A", Mode.FAST, 30),))
    before = ControlLoop(cfg, {1: PileDevices(SimPile("A", 30_000, clock))}, clock)
    before.station.request(before.now_tick(), 7, Mode.FAST, before.units.energy_from_wh(5000))
    before.station.request(before.now_tick(), 8, Mode.FAST, before.units.energy_from_wh(1000))
    saved = json.dumps(before.snapshot(), separators=(",", ":"))  # as the saver writes it
    as_text = saved.replace('"car":7', '"car":"7"').replace('"car":8', '"car":"8"')
    assert as_text != saved  # the old file's form

    after = ControlLoop(cfg, {1: PileDevices(SimPile("A", 30_000, clock))}, clock)
    after.restore(json.loads(as_text))
    assert set(after.station.requests) == {7, 8}
    assert bill_user_id(after.station.requests[7].car) == 7
