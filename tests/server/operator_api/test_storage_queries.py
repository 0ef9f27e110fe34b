"""The storage's read-only queries for the operator: bills in a time range, usernames by id, a
registration code's expiry, and the audit log through the async facade."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.billing import Bill, EndReason
from controller.storage import Storage
from controller.units import Units
from server.accounts import audit_log
from server.accounts import store as accounts_store
from server.accounts.tables import Role
from server.assembly.database import open_async_storage, open_storage

T0 = datetime(2024, 5, 8, 0, 0, tzinfo=UTC)
UNITS = Units.for_powers([30_000, 7_000])


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def bill(car: str, pile_id: int) -> Bill:
    energy = UNITS.energy_from_kwh(1)
    return Bill(
        bill_id=1, car=car, queue_no="F1", pile_id=pile_id, pile_name="AB"[pile_id - 1],
        start_tick=0, end_tick=0, energy=energy, charge_fee=energy * 4000,
        service_fee=energy * 8000, reason=EndReason.COMPLETED,
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Storage]:
    with open_storage(tmp_path / "station.sqlite3") as storage:
        yield storage


def test_bills_between_is_half_open_newest_first_and_by_pile(store: Storage) -> None:
    for end_min, car, pile_id in [(59, "early", 1), (60, "first", 1), (90, "b", 2),
                                  (90, "tie", 1), (119, "last", 2), (120, "after", 1)]:  # fmt: skip
        store.add_bill(bill(car, pile_id), UNITS, None, at(end_min - 10), at(end_min))
    # [60, 120): the start is in, the end is out; the same end is ordered by id, newest first.
    assert [b.car for b in store.bills_between(at(60), at(120))] == ["last", "tie", "b", "first"]
    assert [b.car for b in store.bills_between(at(60), at(120), pile_id=2)] == ["last", "b"]
    assert store.bills_between(at(60), at(60)) == []
    with pytest.raises(ValueError, match="time zone"):
        store.bills_between(datetime(2024, 5, 8), at(60))


def test_usernames_in_one_query_and_a_codes_expiry(store: Storage) -> None:
    alice = accounts_store.add_user(store, "alice", "h", Role.DRIVER)
    bob = accounts_store.add_user(store, "bob", "h", Role.OPERATOR)
    assert accounts_store.usernames(store, [bob, alice, alice, 999]) == {alice: "alice", bob: "bob"}
    assert accounts_store.usernames(store, []) == {}
    accounts_store.issue_code(store, "K1", at(60), now=at(0))
    assert accounts_store.code_expires(store, "K1") == at(60)
    assert accounts_store.code_expires(store, "nope") is None


def test_the_async_facade_reads_the_same(tmp_path: Path) -> None:
    async def run() -> None:
        storage = await open_async_storage(tmp_path / "station.sqlite3")
        try:
            uid = await storage.run(
                lambda s: accounts_store.add_user(s, "olga", "h", Role.OPERATOR)
            )
            await storage.run(
                lambda s: audit_log.audit(s, uid, "pile_off", {"stationId": 1}, at(1))
            )
            await storage.run(lambda s: audit_log.audit(s, uid, "pile_on", {"stationId": 1}, at(2)))
            entries = await storage.run(lambda s: audit_log.recent_audit(s, 5))
            assert [(e.action, e.user_id, e.at) for e in entries] == [
                ("pile_on", uid, at(2)), ("pile_off", uid, at(1))
            ]  # fmt: skip
            await storage.run(lambda s: s.add_bill(bill(str(uid), 1), UNITS, uid, at(0), at(30)))
            (back,) = await storage.run(lambda s: s.bills_between(at(0), at(60)))
            assert back.user_id == uid
            named = await storage.run(lambda s: accounts_store.usernames(s, iter([uid])))
            assert named == {uid: "olga"}  # any iterable
            await storage.run(lambda s: accounts_store.issue_code(s, "K2", at(90), at(0)))
            assert await storage.run(lambda s: accounts_store.code_expires(s, "K2")) == at(90)
        finally:
            await storage.close()

    asyncio.run(run())
