"""The state files are private (directory 0700, database and its -wal and -shm 0600, existing
ones tightened), registration codes are stored as digests (the upgrade from schema 2 hashes the
codes already there), the account queries raise a user's token generation, a username is taken
once, and a registration code works once, before it expires, and never leaves a user behind."""

from __future__ import annotations

import logging
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller import state_dir
from controller import storage_schema as schema
from controller.storage import DATABASE_FILENAME, Storage
from server.accounts import store as accounts_store
from server.accounts.store import CodeRefused, DuplicateUsername, TokenHolder
from server.accounts.tables import Role, code_digest
from server.assembly.database import open_storage
from tests.controller.storage_kit import at
from tests.kits import legacy_schema

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=1)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / DATABASE_FILENAME


@pytest.fixture
def store(db_path: Path) -> Iterator[Storage]:
    with open_storage(db_path) as storage:
        yield storage


def test_a_new_database_and_its_wal_and_shm_are_0600(store: Storage, db_path: Path) -> None:
    accounts_store.add_user(
        store, "alice", "h", Role.DRIVER
    )  # a write: the -wal and -shm files exist now
    files = [db_path, db_path.with_name(f"{DATABASE_FILENAME}-wal")]
    files.append(db_path.with_name(f"{DATABASE_FILENAME}-shm"))
    assert [mode(f) for f in files] == [0o600] * 3
    assert mode(db_path.parent) == 0o700  # made by Storage.open


def test_files_open_to_others_are_tightened_when_opened(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    open_storage(db_path).close()
    state_dir.prepare(db_path.parent).chmod(0o755)
    db_path.chmod(0o644)
    wal = db_path.with_name(f"{DATABASE_FILENAME}-wal")
    wal.write_bytes(b"")  # as an older station left it, readable by all
    wal.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        open_storage(db_path).close()
        state_dir.prepare(db_path.parent)
    assert (mode(db_path), mode(db_path.parent)) == (0o600, 0o700)
    assert "mode 0644); now 0600" in caplog.text and "mode 0755); now 0700" in caplog.text


def test_a_code_is_stored_as_its_digest_only(store: Storage, db_path: Path) -> None:
    code = "Plain-Code-4Kx9"
    accounts_store.issue_code(store, code, LATER, T0)
    assert accounts_store.code_expires(store, code) == LATER
    assert accounts_store.code_usable(store, code, T0)
    assert not accounts_store.code_usable(store, code + "x", T0)
    store.close()  # the last connection checkpoints: everything is in the one file now
    assert code.encode() not in db_path.read_bytes()
    rows = sqlite3.connect(db_path).execute("SELECT * FROM registration_codes").fetchall()
    assert rows[0][0] == code_digest(code) and code not in repr(rows)
    with open_storage(db_path) as again:
        user = accounts_store.add_user(again, "alice", "h", Role.DRIVER)
        assert accounts_store.use_code(again, code, user, T0)
        assert not accounts_store.code_usable(again, code, T0)  # spent


def build_v2(path: Path) -> None:
    """A database as the previous release left it: schema 2, codes in plain text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(legacy_schema.VERSION_TABLE)
    for version in (1, 2):
        for statement in legacy_schema.MIGRATIONS[version]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
    conn.execute("INSERT INTO users VALUES (1, 'old', 'hash', 'driver', 0)")
    expires = schema.utc_us(LATER)
    conn.execute(
        "INSERT INTO registration_codes VALUES ('Unspent-Old-Code', 0, ?, NULL, NULL)", (expires,)
    )
    conn.execute("INSERT INTO registration_codes VALUES ('Spent-Old-Code', 0, ?, 1, 5)", (expires,))
    conn.commit()
    conn.close()
    path.chmod(0o644)


def test_the_upgrade_from_schema_2_hashes_the_codes_already_issued(db_path: Path) -> None:
    build_v2(db_path)
    with open_storage(db_path, now=T0) as store:
        assert accounts_store.user_by_id(store, 1).token_generation == 0  # type: ignore[union-attr]
        assert not accounts_store.code_usable(store, "Spent-Old-Code", T0)
        user = accounts_store.add_user(store, "new", "h", Role.DRIVER)
        assert accounts_store.use_code(
            store, "Unspent-Old-Code", user, T0
        )  # an issued code still works
    data = db_path.read_bytes()
    assert b"Unspent-Old-Code" not in data and b"Spent-Old-Code" not in data
    assert mode(db_path) == 0o600
    # The copy kept before the upgrade is the old file as it was: private, like the database.
    (kept,) = db_path.parent.glob("*.v2-backup-*")
    assert mode(kept) == 0o600 and b"Unspent-Old-Code" in kept.read_bytes()


def test_token_generations_rise_with_each_change(store: Storage, db_path: Path) -> None:
    alice = accounts_store.add_user(store, "alice", "h1", Role.DRIVER)
    olga = accounts_store.add_user(store, "olga", "h1", Role.OPERATOR)
    assert accounts_store.token_holders(store) == [
        TokenHolder(alice, "alice", Role.DRIVER, 0), TokenHolder(olga, "olga", Role.OPERATOR, 0)
    ]  # fmt: skip
    assert accounts_store.set_password(store, alice, "h2") == 1
    assert accounts_store.end_tokens(store, alice) == 2
    assert accounts_store.user_by_id(store, alice).password_hash == "h2"  # type: ignore[union-attr]
    assert accounts_store.remove_user(store, alice, T0)
    removed = accounts_store.user_by_id(store, alice)
    assert removed is not None and removed.removed == T0 and removed.token_generation == 3
    assert removed.password_hash == accounts_store.REMOVED_HASH
    holders = accounts_store.token_holders(store)
    assert [(h.id, h.removed) for h in holders] == [(alice, True), (olga, False)]
    # A removed user changes no more.
    assert accounts_store.end_tokens(store, alice) is None
    assert accounts_store.set_password(store, alice, "h3") is None
    assert not accounts_store.remove_user(store, alice, T0)
    assert accounts_store.end_tokens(store, 999) is None


def test_data_version_moves_for_another_connections_commits_only(
    store: Storage, db_path: Path
) -> None:
    before = accounts_store.data_version(store)
    accounts_store.add_user(store, "alice", "h", Role.DRIVER)
    assert accounts_store.data_version(store) == before  # its own write
    other = sqlite3.connect(db_path)
    other.execute("UPDATE users SET token_generation = 7")
    other.commit()
    other.close()
    assert accounts_store.data_version(store) != before


def test_a_taken_username_is_a_specific_error(store: Storage) -> None:
    uid = accounts_store.add_user(store, "alice", "hash-a", "driver")
    with pytest.raises(DuplicateUsername) as taken:
        accounts_store.add_user(store, "alice", "hash-b", Role.OPERATOR)
    assert taken.value.username == "alice"
    user = accounts_store.user_by_name(store, "alice")
    assert user is not None and (user.id, user.password_hash) == (uid, "hash-a")
    assert accounts_store.user_by_name(store, "bob") is None


def test_a_registration_code_works_once_and_only_before_it_expires(store: Storage) -> None:
    accounts_store.issue_code(store, "K1", expires=at(60), now=at(0))
    accounts_store.issue_code(store, "OLD", expires=at(10), now=at(0))
    uid = accounts_store.add_user(store, "alice", "h", Role.DRIVER)
    other = accounts_store.add_user(store, "bob", "h", Role.DRIVER)
    assert accounts_store.use_code(store, "K1", uid, now=at(59))
    assert not accounts_store.use_code(store, "K1", other, now=at(59))  # single use
    assert not accounts_store.use_code(
        store, "OLD", uid, now=at(10)
    )  # valid until `expires`, exclusive
    assert not accounts_store.use_code(store, "NOPE", uid, now=at(0))


def test_registration_with_a_bad_code_leaves_no_user_behind(store: Storage) -> None:
    accounts_store.issue_code(store, "K1", expires=at(60), now=at(0))
    uid = accounts_store.register(store, "alice", "h", Role.DRIVER, "K1", now=at(1))
    assert accounts_store.user_by_id(store, uid) is not None
    with pytest.raises(CodeRefused):
        accounts_store.register(store, "bob", "h", Role.DRIVER, "K1", now=at(2))  # already spent
    assert accounts_store.user_by_name(store, "bob") is None
