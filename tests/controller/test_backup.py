"""Backups of the station database while it is written, restoring one while nothing has the
database open, and the copy made before a schema upgrade; also through `charge-station`."""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller import storage_schema as schema
from controller.backup import BackupError, backup, inspect, restore
from server.accounts import audit_log
from server.accounts import store as accounts_store
from server.assembly.database import open_storage
from server.cli import main
from tests.controller.storage_kit import UNITS, at, bill
from tests.kits import legacy_schema

T0 = datetime(2025, 1, 31, 23, 59, 58, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "station.sqlite3"


def rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def cars(path: Path) -> list[str]:
    return [car for (car,) in rows(path, "SELECT car FROM bills ORDER BY id")]


def add_bills(db_path: Path, *names: str) -> None:
    with open_storage(db_path) as storage:
        uid = accounts_store.add_user(storage, f"user-{names[0]}", "hash", "driver")
        for name in names:
            storage.add_bill(bill(name), UNITS, uid, at(0), at(60))


def test_a_backup_while_another_connection_writes_is_consistent_and_complete(
    db_path: Path, tmp_path: Path
) -> None:
    with open_storage(db_path) as storage:
        uid = accounts_store.add_user(storage, "writer", "hash", "driver")
    committed = 0
    stop = threading.Event()
    failed: list[BaseException] = []

    def writer() -> None:
        # A bill and its audit entry in one transaction: a copy that holds one without the
        # other caught the writer half-way, which a consistent snapshot never does.
        nonlocal committed
        try:
            with open_storage(db_path) as storage:
                while not stop.is_set():
                    with storage.db.atomic():
                        storage.add_bill(bill(f"V{committed}"), UNITS, uid, at(0), at(60))
                        audit_log.audit(storage, uid, "bill", {"n": committed})
                    committed += 1
        except BaseException as exc:  # handed to the test thread
            failed.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while committed < 20:
            stop.wait(0.01)
        for i in range(5):
            before = committed
            info = backup(db_path, tmp_path / f"copy{i}.sqlite3")
            # Every bill committed before the backup began is in the copy.
            assert info.bills >= before
            assert rows(info.path, "SELECT COUNT(*) FROM audit_log") == [(info.bills,)]
            assert cars(info.path) == [f"V{n}" for n in range(info.bills)]
    finally:
        stop.set()
        thread.join()
    assert not failed, failed
    assert committed > 20
    final = backup(db_path, tmp_path / "final.sqlite3")
    assert final.bills == committed
    assert final.schema_version == schema.SCHEMA_VERSION
    # The copy is one self-contained file that opens as a station database.
    assert rows(final.path, "PRAGMA journal_mode") == [("delete",)]
    assert final.path.stat().st_mode & 0o077 == 0  # password hashes: the owner's only
    with open_storage(final.path) as copy:
        assert len(copy.bills_of(uid, 10_000)) == committed


def test_a_backup_never_overwrites_an_existing_file_unless_forced(
    db_path: Path, tmp_path: Path
) -> None:
    add_bills(db_path, "V1")
    dest = tmp_path / "backup.sqlite3"
    dest.write_text("precious")
    with pytest.raises(BackupError, match=r"already exists.*--force"):
        backup(db_path, dest)
    assert dest.read_text() == "precious"
    assert backup(db_path, dest, force=True).bills == 1
    assert cars(dest) == ["V1"]
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_a_backup_of_a_missing_database_names_the_state_directory(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=r"no station database at .*--state"):
        backup(tmp_path / "nowhere" / "station.sqlite3", tmp_path / "b.sqlite3")
    assert not (tmp_path / "b.sqlite3").exists()
    assert not (tmp_path / "nowhere").exists()


def test_restore_puts_the_copy_in_place_and_keeps_the_replaced_database(
    db_path: Path, tmp_path: Path
) -> None:
    add_bills(db_path, "V1", "V2")
    saved = backup(db_path, tmp_path / "saved.sqlite3")
    add_bills(db_path, "V3")  # made after the backup: gone after the restore, kept aside
    done = restore(db_path, saved.path, now=T0)
    assert done.info.bills == 2
    assert done.kept == db_path.with_name("station.sqlite3.before-restore-20250131T235958Z")
    assert cars(done.kept) == ["V1", "V2", "V3"]
    assert done.kept.stat().st_mode & 0o077 == 0
    with open_storage(db_path) as storage:  # the station opens it as usual
        assert [b.car for b in storage.bills_between(at(-1), at(120))] == ["V2", "V1"]
    assert cars(db_path) == ["V1", "V2"]
    # A second restore in the same second keeps the first kept copy too.
    second = restore(db_path, saved.path, now=T0)
    assert second.kept is not None and second.kept.name.endswith("Z-2")
    assert cars(done.kept) == ["V1", "V2", "V3"]


def test_restore_leaves_out_the_saved_queue_unless_asked(db_path: Path, tmp_path: Path) -> None:
    add_bills(db_path, "V1")
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO station_state VALUES (1, ?, '{\"requests\": []}')", (1_700_000_000_000_000,)
    )
    conn.commit()
    conn.close()
    saved = backup(db_path, tmp_path / "saved.sqlite3")
    done = restore(db_path, saved.path)
    # An old queue carried on would bill its sessions from stale meter baselines.
    assert done.queue_dropped == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert rows(db_path, "SELECT COUNT(*) FROM station_state") == [(0,)]
    assert cars(db_path) == ["V1"]
    kept = restore(db_path, saved.path, keep_queue=True)
    assert kept.queue_dropped is None
    assert rows(db_path, "SELECT state FROM station_state") == [('{"requests": []}',)]


def test_restore_into_an_empty_state_directory(db_path: Path, tmp_path: Path) -> None:
    add_bills(db_path, "V1")
    saved = backup(db_path, tmp_path / "saved.sqlite3")
    fresh = tmp_path / "fresh" / "station.sqlite3"
    fresh.parent.mkdir()
    assert restore(fresh, saved.path).kept is None
    assert cars(fresh) == ["V1"]


def test_restore_is_refused_while_the_station_has_the_database_open(
    db_path: Path, tmp_path: Path
) -> None:
    add_bills(db_path, "V1")
    saved = backup(db_path, tmp_path / "saved.sqlite3")
    with open_storage(db_path) as running:
        accounts_store.user_by_name(
            running, "user-V1"
        )  # an idle connection, as the station's between writes
        with pytest.raises(BackupError, match=r"in use.*stop the station first"):
            restore(db_path, saved.path)
        running.add_bill(bill("V9"), UNITS, None, at(0), at(60))  # still writable
    assert cars(db_path) == ["V1", "V9"]
    assert not list(db_path.parent.glob("*before-restore*"))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "not an SQLite database"),
        (b"just some text\n" * 10, "not an SQLite database"),
        (None, "not a station database"),  # an SQLite file of something else
    ],
)
def test_restore_refuses_a_file_that_is_not_a_station_database(
    db_path: Path, tmp_path: Path, content: bytes | None, problem: str
) -> None:
    add_bills(db_path, "V1")
    source = tmp_path / "other.db"
    if content is None:
        conn = sqlite3.connect(source)
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.commit()
        conn.close()
    else:
        source.write_bytes(content)
    with pytest.raises(BackupError, match=problem):
        restore(db_path, source)
    assert cars(db_path) == ["V1"]


def test_restore_refuses_a_damaged_or_too_new_database(db_path: Path, tmp_path: Path) -> None:
    add_bills(db_path, "V1", "V2")
    saved = backup(db_path, tmp_path / "saved.sqlite3")
    newer = backup(db_path, tmp_path / "newer.sqlite3")
    conn = sqlite3.connect(newer.path)
    conn.execute("INSERT INTO schema_version VALUES (?, 0)", (schema.SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(BackupError, match="newer than version"):
        restore(db_path, newer.path)
    damaged = tmp_path / "damaged.sqlite3"
    data = bytearray(saved.path.read_bytes())
    data[len(data) // 2 :] = b"\xff" * (len(data) - len(data) // 2)  # the second half wiped
    damaged.write_bytes(bytes(data))
    with pytest.raises(BackupError, match=r"damaged|cannot be read"):
        restore(db_path, damaged)
    assert cars(db_path) == ["V1", "V2"]


def build_v1(path: Path) -> None:
    """A database as the first released controller left it: migration 1 only, with a bill."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(legacy_schema.VERSION_TABLE)
    for statement in legacy_schema.MIGRATIONS[1]:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1, 0)")
    conn.execute("INSERT INTO users VALUES (1, 'old', 'hash', 'driver', 0)")
    conn.execute(
        "INSERT INTO bills VALUES (1, 1, 'V0', 'F1', 1, 'A', 0, 10, 'completed', '5', '1', '1')"
    )
    conn.commit()
    conn.close()


def test_an_upgrade_writes_a_backup_of_the_old_schema_first(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert schema.SCHEMA_VERSION > 1
    build_v1(db_path)
    with caplog.at_level(logging.WARNING, logger="controller.storage"):
        open_storage(db_path, now=T0).close()
    kept = db_path.with_name("station.sqlite3.v1-backup-20250131T235958Z")
    assert kept.is_file()
    # The backup is the database as it was before the migration ran: version 1, no v2 table.
    assert inspect(kept).schema_version == 1
    assert ("station_state",) not in rows(kept, "SELECT name FROM sqlite_master")
    assert cars(kept) == ["V0"]
    assert inspect(db_path).schema_version == schema.SCHEMA_VERSION
    assert f"backed up to {kept}" in caplog.text
    # Opening the upgraded database again makes no more copies.
    open_storage(db_path).close()
    assert len(list(db_path.parent.glob("*-backup-*"))) == 1


def test_a_new_or_current_database_is_not_copied(db_path: Path) -> None:
    open_storage(db_path).close()
    open_storage(db_path).close()
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["station.sqlite3"]


def test_the_commands_back_up_and_restore_with_plain_messages(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_bills(db_path, "V1", "V2")
    state = str(db_path.parent)
    dest = tmp_path / "b.sqlite3"
    assert main(["backup", str(dest), "--state", state]) == 0
    out = capsys.readouterr().out
    assert (
        f"wrote {dest}" in out
        and f"schema version {schema.SCHEMA_VERSION}" in out
        and "2 bills" in out
    )
    assert main(["backup", str(dest), "--state", state]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "Traceback" not in err
    assert main(["restore", str(tmp_path / "missing.sqlite3"), "--state", state]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["restore", str(dest), "--state", state]) == 0
    out = capsys.readouterr().out
    assert "2 bills" in out and "kept as" in out and "before-restore" in out
