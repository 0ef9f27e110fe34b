"""Storage on real SQLite files: WAL, schema versions, exact bills, off-loop calls, and bills
that survive a locked database or a full disk."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import peewee
import pytest

from controller.billing import EndReason
from controller.storage import (
    BillNotSaved,
    SchemaTooNew,
    Storage,
    StorageUnavailable,
)
from controller.storage_schema import SCHEMA_VERSION
from server.accounts import audit_log
from server.accounts import store as accounts_store
from server.accounts.tables import Role
from server.assembly.database import open_async_storage, open_storage
from tests.controller.harness import COMMON, World, pile
from tests.controller.storage_kit import UNITS, at, bill


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "station.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[Storage]:
    with open_storage(db_path) as storage:
        yield storage


def raw(path: Path, sql: str, *args: object) -> list[tuple]:
    """Another connection on the same file, as a second process would have."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_the_file_is_in_wal_mode_with_foreign_keys_enforced(store: Storage, db_path: Path) -> None:
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    # foreign_keys=1 is per connection: a bill for a user that does not exist is refused.
    with pytest.raises(peewee.IntegrityError):
        store.add_bill(bill(), UNITS, 999, at(0), at(60))


def test_reopening_keeps_the_data_and_records_the_schema_version_once(db_path: Path) -> None:
    with open_storage(db_path) as storage:
        uid = accounts_store.add_user(storage, "alice", "hash-a", Role.DRIVER)
        storage.add_bill(bill(), UNITS, uid, at(0), at(60))
    with open_storage(db_path) as storage:
        user = accounts_store.user_by_name(storage, "alice")
        assert user is not None
        assert (user.id, user.password_hash, user.role) == (uid, "hash-a", Role.DRIVER)
        assert [b.car for b in storage.bills_of(uid, 10)] == ["V1"]
    versions = [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert raw(db_path, "SELECT version FROM schema_version ORDER BY version") == versions


def test_a_database_from_a_newer_controller_is_refused(db_path: Path) -> None:
    open_storage(db_path).close()
    newer = SCHEMA_VERSION + 1
    raw(db_path, "INSERT INTO schema_version VALUES (?, 0)", newer)
    with pytest.raises(SchemaTooNew) as refused:
        open_storage(db_path)
    assert (refused.value.found, refused.value.supported) == (newer, SCHEMA_VERSION)
    assert f"version {newer}" in str(refused.value)
    assert f"version {SCHEMA_VERSION}" in str(refused.value)


def test_bills_are_the_users_own_newest_first_and_at_most_num(store: Storage) -> None:
    alice = accounts_store.add_user(store, "alice", "h", Role.DRIVER)
    bob = accounts_store.add_user(store, "bob", "h", Role.DRIVER)
    for end_min, car, owner in [(60, "A1", alice), (180, "A3", alice), (120, "A2", alice),
                                (240, "B1", bob), (300, "R1", None)]:  # fmt: skip
        store.add_bill(bill(car), UNITS, owner, at(end_min - 30), at(end_min))
    assert [b.car for b in store.bills_of(alice, 10)] == ["A3", "A2", "A1"]
    assert [b.car for b in store.bills_of(alice, 2)] == ["A3", "A2"]
    assert [(b.car, b.user_id) for b in store.bills_of(bob, 10)] == [("B1", bob)]
    with pytest.raises(ValueError, match="num"):
        store.bills_of(alice, 0)


def test_a_real_uneven_bill_comes_back_exactly(store: Storage) -> None:
    # Cancelled one second into a 7 kW valley session: 35/18 Wh and 7/9000 yuan, not whole fen.
    w = World((pile(1, "S", COMMON, 7),))
    w.request("06:00", "V1", COMMON, 10)
    made = w.cancel("06:00:01", "V1")
    assert made is not None
    bill_id = store.add_bill(made, w.u, None, at(0), at(0) + timedelta(seconds=1))
    uid = accounts_store.add_user(store, "alice", "h", Role.DRIVER)
    store.add_bill(made, w.u, uid, at(0), at(0) + timedelta(seconds=1, microseconds=7))

    (back,) = store.bills_of(uid, 1)
    assert back.id == bill_id + 1
    assert back.energy_wh == Fraction(35, 18) and back.energy_kwh == w.kwh(made.energy)
    assert back.charge_fee_yuan == w.yuan(made.charge_fee) == Fraction(7, 9000)
    assert (back.charge_fee_yuan * 100).denominator != 1  # finer than a fen, kept as it is
    assert back.service_fee_yuan == w.yuan(made.service_fee)
    assert back.total_fee_yuan == w.yuan(made.total_fee)
    assert back.end - back.start == timedelta(seconds=1, microseconds=7)
    assert back.time_of_use_h == Fraction(1_000_007, 3_600_000_000)
    assert back.start == at(0) and back.start.tzinfo is not None
    assert (back.reason, back.pile_name) == (EndReason.CANCELLED, "S")


def test_a_time_without_a_zone_is_refused(store: Storage) -> None:
    with pytest.raises(ValueError, match="time zone"):
        store.add_bill(bill(), UNITS, None, datetime(2024, 5, 8, 6), at(60))


def test_the_async_facade_runs_in_one_worker_thread_off_the_loop(db_path: Path) -> None:
    async def main() -> tuple[int, set[int], list[str]]:
        storage = await open_async_storage(db_path)
        try:
            uid = await storage.run(lambda s: accounts_store.add_user(s, "alice", "h", Role.DRIVER))
            await storage.run(lambda s: s.add_bill(bill(), UNITS, uid, at(0), at(60)))
            await storage.run(
                lambda s: audit_log.audit(s, uid, "login", {"ip": "10.0.0.2"}, now=at(0))
            )
            threads = {await storage.run(lambda s: threading.get_ident()) for _ in range(3)}
            cars = [b.car for b in await storage.run(lambda s: s.bills_of(uid, 10))]
            entries = await storage.run(lambda s: audit_log.recent_audit(s, 5))
            assert [(e.action, e.detail, e.at) for e in entries] == [
                ("login", {"ip": "10.0.0.2"}, at(0))
            ]
            return threading.get_ident(), threads, cars
        finally:
            await storage.close()

    loop_thread, worker_threads, cars = asyncio.run(main())
    assert len(worker_threads) == 1 and loop_thread not in worker_threads
    assert cars == ["V1"]


def test_a_locked_database_gives_the_bill_back_to_retry(db_path: Path) -> None:
    with open_storage(db_path) as storage:
        uid = accounts_store.add_user(storage, "alice", "h", Role.DRIVER)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write

    # Opening an up-to-date file only reads, so it does not wait for the holder.

    async def main() -> tuple[BillNotSaved, int, int]:
        storage = await open_async_storage(db_path, busy_timeout_ms=200)
        ticks = 0

        async def ticker() -> None:  # proves the loop runs while the worker waits on the lock
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(ticker())
        try:
            with pytest.raises(BillNotSaved) as not_saved:
                await storage.run(lambda s: s.add_bill(bill("V7"), UNITS, uid, at(0), at(60)))
            holder.execute("ROLLBACK")
            stored_id = await storage.run(
                lambda s: s.add_bill(*not_saved.value.pending)
            )  # the retry
            return not_saved.value, ticks, stored_id
        finally:
            beat.cancel()
            await storage.close()

    try:
        error, ticks, stored_id = asyncio.run(main())
    finally:
        holder.close()
    assert isinstance(error, StorageUnavailable)  # the retryable kind
    assert error.bill == bill("V7") and error.pending.user_id == uid
    assert ticks >= 5
    assert raw(db_path, "SELECT id, car FROM bills") == [(stored_id, "V7")]


def test_a_full_disk_gives_the_bill_back(db_path: Path) -> None:
    open_storage(db_path).close()
    ((pages,),) = raw(db_path, "PRAGMA page_count")
    # max_page_count at the file's current size: any write that needs a new page is SQLITE_FULL,
    # what SQLite reports when the disk itself is full.
    with open_storage(db_path, pragmas={"max_page_count": pages}) as storage:
        big = bill("X" * 50_000)
        with pytest.raises(BillNotSaved) as full:
            storage.add_bill(big, UNITS, None, at(0), at(60))
    assert full.value.bill == big
    assert "full" in str(full.value)
    assert raw(db_path, "SELECT COUNT(*) FROM bills") == [(0,)]
