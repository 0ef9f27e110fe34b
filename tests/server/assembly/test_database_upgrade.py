"""A station database made before each component kept its own schema versions (the one list
of migrations, versions 1 to 4, as tests/kits/legacy_schema.py copies it) opens with the
station's and every component's tables, upgraded in place with nothing lost: an old user logs
in with their password, a code issued before works once, the bills, the audit log and the
saved queue read back, and the uplink's outbox drains in its order."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from controller.storage import DATABASE_FILENAME, SchemaTooNew, Storage
from controller.storage_schema import SCHEMA_VERSION, utc_us
from server.accounts import audit_log
from server.accounts.accounts import AccountError, Accounts
from server.accounts.passwords import hash_password
from server.accounts.tables import code_digest
from server.assembly.database import open_async_storage, open_storage
from server.ocpp.outbox import Outbox
from server.ocpp.outbox_store import TransactionRow
from tests.kits import legacy_schema

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
KEY = b"k" * 32
ALICE_PASSWORD = "alice-pass-1"
OLD_CODE = "Old-Unspent-Code-1"
SPENT_CODE = "Old-Spent-Code-2"
STATE = '{"version": 1, "requests": []}'
# Three durable messages of one transaction, in their sending order (ids 1 < 2 < 3).
OUTBOX = [
    (1, "StartTransaction", {"connector_id": 2, "meter_start": 100}),
    (2, "MeterValues", {"connector_id": 2, "transaction_id": 7}),
    (3, "StopTransaction", {"meter_stop": 2100, "transaction_id": 7}),
]


def at(minutes: int) -> int:
    return utc_us(T0 + timedelta(minutes=minutes))


def build_current_main(path: Path) -> None:
    """The file as the last release of the one list left it (version 4), a row in every table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    legacy_schema.build(conn, up_to=4)
    alice_hash = hash_password(ALICE_PASSWORD, n=2**4)
    conn.execute(
        "INSERT INTO users VALUES (1, 'alice', ?, 'driver', ?, 0, NULL)", (alice_hash, at(-60))
    )
    conn.execute("INSERT INTO users VALUES (2, 'olga', 'x', 'operator', ?, 3, NULL)", (at(-60),))
    for code, used_by in ((OLD_CODE, None), (SPENT_CODE, 1)):
        conn.execute(
            "INSERT INTO registration_codes VALUES (?, ?, ?, ?, ?)",
            (code_digest(code), at(-50), at(24 * 60), used_by, None if used_by is None else 5),
        )
    # Exact amounts as text fractions: 35/18 Wh and 7/9000 yuan stay exact through the upgrade.
    bills = [
        (1, 1, "1", "F1", 1, "A", at(0), at(30), "completed", "15000", "21/2", "12"),
        (2, 1, "1", "T1", 3, "C", at(40), at(41), "cancelled", "35/18", "7/9000", "7/4500"),
        (3, None, "X", "F2", 2, "B", at(10), at(20), "fault", "100", "1/10", "2/25"),
    ]
    conn.executemany("INSERT INTO bills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", bills)
    conn.execute(
        "INSERT INTO audit_log VALUES (1, ?, 2, 'pile_off', ?)", (at(5), '{"stationId": 1}')
    )
    conn.execute("INSERT INTO audit_log VALUES (2, ?, NULL, 'issue_code', '{}')", (at(6),))
    conn.execute("INSERT INTO station_state VALUES (1, ?, ?)", (at(45), STATE))
    conn.executemany(
        "INSERT INTO uplink_outbox VALUES (?, 7, ?, ?, ?)",
        [(i, action, json.dumps(payload), at(i)) for i, action, payload in OUTBOX],
    )
    conn.execute("INSERT INTO uplink_transactions VALUES (7, 2, '1', 100, 9001, 1)")
    conn.commit()
    conn.close()


def rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "state" / DATABASE_FILENAME
    build_current_main(path)
    return path


def test_every_row_is_there_and_usable_after_the_upgrade(db_path: Path) -> None:
    async def main() -> None:
        storage = await open_async_storage(db_path, now=T0)
        accounts = Accounts(storage, KEY, clock=T0.timestamp, scrypt_n=2**4)
        try:
            # An old user logs in with the password they had.
            token = await accounts.login("alice", ALICE_PASSWORD)
            assert accounts.verify(token).user_id == 1
            # A code issued before the upgrade works once.
            await accounts.register("newbie", "newbie-pass", OLD_CODE)
            with pytest.raises(AccountError) as again:
                await accounts.register("another", "another-pass", OLD_CODE)
            assert again.value.error == "bad_code"
            with pytest.raises(AccountError):
                await accounts.register("third", "third-pass", SPENT_CODE)
            # The bills, newest first, with their exact amounts.
            mine = await storage.run(lambda s: s.bills_of(1, 10))
            assert [(b.id, b.queue_no) for b in mine] == [(2, "T1"), (1, "F1")]
            assert (mine[0].energy_wh, mine[0].charge_fee_yuan) == (
                Fraction(35, 18),
                Fraction(7, 9000),
            )
            assert mine[1].total_fee_yuan == Fraction(21, 2) + 12
            every = await storage.run(lambda s: s.bills_between(T0, T0 + timedelta(hours=1)))
            assert sorted(b.id for b in every) == [1, 2, 3]
            # The audit log: the two old entries under the new register entry.
            entries = await storage.run(lambda s: audit_log.recent_audit(s, 10))
            assert [(e.action, e.user_id) for e in entries][-2:] == [
                ("issue_code", None),
                ("pile_off", 2),
            ]
            assert entries[-1].detail == {"stationId": 1}
            # The saved queue.
            assert await storage.run(lambda s: s.load_state()) == STATE
            # The outbox drains in its order, and its transaction is still known.
            outbox = Outbox(storage)
            assert await outbox.load() == [TransactionRow(7, 2, "1", 100, 9001, True)]
            drained = []
            while (message := await outbox.head(0)) is not None:
                drained.append((message.id, message.action, message.payload))
                outbox.done(message)
            assert drained == OUTBOX
            stop = asyncio.Event()
            writer = asyncio.create_task(outbox.run_writer(stop))
            await outbox.flushed()
            stop.set()
            await writer
        finally:
            await storage.close()

    asyncio.run(main())
    assert rows(db_path, "SELECT COUNT(*) FROM uplink_outbox") == [(0,)]
    assert rows(db_path, "SELECT username FROM users ORDER BY id") == [
        ("alice",),
        ("olga",),
        ("newbie",),
    ]


def test_the_versions_after_the_upgrade_and_the_copy_kept_before_it(db_path: Path) -> None:
    open_storage(db_path, now=T0).close()
    # The format: every version up to the newest. The components: what the one list had made
    # of each (nothing was left to apply: version 4 had made every table as it is now).
    assert rows(db_path, "SELECT version FROM schema_version") == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)
    ]
    assert rows(
        db_path, "SELECT component, version FROM schema_versions ORDER BY component, version"
    ) == [
        ("accounts", 1),
        ("accounts", 2),
        ("audit", 1),
        ("outbox", 1),
        ("single-list", 4),
        ("station", 1),
        ("station", 2),
    ]
    (kept,) = db_path.parent.glob("*.v4-backup-*")
    assert rows(kept, "SELECT MAX(version) FROM schema_version") == [(4,)]
    assert ("schema_versions",) not in rows(kept, "SELECT name FROM sqlite_master")
    # Opened again: up to date, nothing copied or applied.
    open_storage(db_path).close()
    assert len(list(db_path.parent.glob("*-backup-*"))) == 1


def test_a_component_first_opened_after_the_upgrade_starts_where_the_one_list_left_it(
    db_path: Path,
) -> None:
    # The station alone upgrades the file first (its own tables only)...
    Storage.open(db_path, now=T0).close()
    assert rows(db_path, "SELECT component FROM schema_versions WHERE component = 'accounts'") == []
    # ...then the server opens it: the accounts' tables are there already, and are kept.
    with open_storage(db_path) as storage:
        assert storage.bills_of(1, 10)[0].queue_no == "T1"
    assert rows(db_path, "SELECT id, username FROM users ORDER BY id") == [
        (1, "alice"),
        (2, "olga"),
    ]
    assert rows(db_path, "SELECT COUNT(*) FROM uplink_outbox") == [(3,)]


def test_a_component_newer_than_this_release_is_refused_by_name(db_path: Path) -> None:
    open_storage(db_path, now=T0).close()
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO schema_versions VALUES ('accounts', 3, 0)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNew) as refused:
        open_storage(db_path)
    assert "accounts tables at version 3, newer than version 2" in str(refused.value)
