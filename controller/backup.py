"""Copies of the station database: online backups, restoring one, and the copy before an upgrade.

Every copy goes through SQLite's online backup API, never a file copy: a file copy of a live
WAL database can miss the commits still in the -wal file or catch a page half-written, while
the backup API copies one consistent snapshot (one read transaction, which in WAL mode never
blocks the station's writer). A copy is written under a temporary name and renamed into place,
so a crash leaves either no file or a whole one, and it is a single self-contained file
(rollback journal mode), so it can be moved around and opened on its own.

Restoring replaces the database's content in place while holding SQLite's exclusive lock, which
also tells whether anything else (the station, an operator command) has the database open.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from controller.storage_schema import SCHEMA_VERSION, from_utc_us

SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
BUSY_TIMEOUT_S = 5.0  # a backup waits this long for a writer's checkpoint, as the station does


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says what was wrong and what to do."""


class DatabaseInfo(NamedTuple):
    path: Path
    size_bytes: int
    schema_version: int
    bills: int


def timestamp(now: datetime | None = None) -> str:
    """A UTC time for file names, sortable and free of ':' (20250131T235959Z)."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def free_name(path: Path) -> Path:
    """`path`, or path-2, path-3, ... if it is taken: a kept copy never replaces another."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _uri(path: Path, mode: str) -> str:
    # A URI with mode=rw or ro: SQLite then never creates an empty database for a wrong path.
    return f"{path.resolve().as_uri()}?mode={mode}"


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    try:
        return sqlite3.connect(
            _uri(path, mode), uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None
        )
    except sqlite3.OperationalError as exc:
        raise BackupError(f"cannot open {path}: {exc}") from None


def _sync_dir(directory: Path) -> None:
    """Make a rename durable: the directory entry is on disk, not only the file's data."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _private_file(path: Path) -> Path:
    """Create `path` empty, readable by its owner only: a copy holds password hashes and bills."""
    path.unlink(missing_ok=True)  # a leftover of a copy that crashed
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    return path


def copy_database(source: Path, dest: Path) -> None:
    """Write a consistent copy of the database `source` to `dest` (replacing it), through a
    temporary file beside it that is renamed into place when complete."""
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        with (
            closing(_connect(source, "rw")) as src,
            closing(sqlite3.connect(_private_file(partial))) as out,
        ):
            try:
                # pages=-1 (the default): the whole database in one step, so one snapshot.
                src.backup(out)
            except sqlite3.Error as exc:
                raise BackupError(f"cannot copy {source}: {exc}") from None
            # The copy carries the source's WAL flag; a rollback journal keeps it one file.
            out.execute("PRAGMA journal_mode = DELETE")
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, dest)
        _sync_dir(dest.parent)
    finally:
        partial.unlink(missing_ok=True)


def inspect(path: Path) -> DatabaseInfo:
    """Check that `path` is a whole station database this controller can use, and describe it;
    BackupError saying what is wrong otherwise."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(SQLITE_MAGIC))
    except IsADirectoryError:
        raise BackupError(f"{path} is a directory, not a database file") from None
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    if magic != SQLITE_MAGIC:
        raise BackupError(f"{path} is not an SQLite database, so not a station backup")
    with closing(_connect(path, "ro")) as db:
        try:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
            if problems != ["ok"]:
                shown = "; ".join(problems[:3])
                raise BackupError(f"{path} is damaged (integrity check: {shown})")
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if not {"schema_version", "bills"} <= tables:
                raise BackupError(
                    f"{path} is an SQLite database but not a station database "
                    "(it has no schema_version or bills table)"
                )
            (version,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version"
            ).fetchone()
            (bills,) = db.execute("SELECT COUNT(*) FROM bills").fetchone()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path} cannot be read as a database: {exc}") from None
    if version > SCHEMA_VERSION:
        raise BackupError(
            f"{path} has schema version {version}, newer than version {SCHEMA_VERSION} that this "
            "controller supports; restore it with the controller version that wrote it"
        )
    return DatabaseInfo(path, path.stat().st_size, int(version), int(bills))


def backup(database: Path, dest: Path, *, force: bool = False) -> DatabaseInfo:
    """An online, consistent copy of the station database `database` at `dest`; safe while the
    station runs. An existing `dest` is replaced only with force."""
    if not database.is_file():
        raise BackupError(
            f"no station database at {database}; give the station's state directory with --state"
        )
    if dest.is_dir():
        raise BackupError(f"{dest} is a directory; give the name of the backup file to write")
    if dest.exists() and not force:
        raise BackupError(
            f"{dest} already exists; choose another name, or add --force to replace it"
        )
    if not dest.parent.is_dir():
        raise BackupError(f"cannot write {dest}: the directory {dest.parent} does not exist")
    try:
        copy_database(database, dest)
    except PermissionError as exc:
        raise BackupError(f"cannot write {exc.filename or dest}: permission denied") from None
    except OSError as exc:
        raise BackupError(f"cannot write {dest}: {exc.strerror or exc}") from None
    return inspect(dest)


class Restored(NamedTuple):
    info: DatabaseInfo  # the copy that was restored
    kept: Path | None  # where the replaced database was kept; None if there was none
    # When the queue state left out of the restore had been saved; None if none was.
    queue_dropped: datetime | None = None


@contextmanager
def _exclusive(database: Path) -> Iterator[sqlite3.Connection]:
    """The database opened with SQLite's exclusive lock, held until the block ends.

    In WAL mode every open connection holds a shared lock on the database file, even when
    idle, so the lock is refused while the station or any other command has the file open.
    With locking_mode EXCLUSIVE the lock taken by the first transaction is kept after it."""
    try:
        db = sqlite3.connect(database, timeout=0.5, isolation_level=None)
    except sqlite3.OperationalError as exc:
        raise BackupError(f"cannot open {database}: {exc}") from None
    with closing(db):
        try:
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            db.execute("BEGIN EXCLUSIVE")
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise BackupError(
                    f"{database} is in use: the station (or another charge-station command) has "
                    "it open; stop the station first (systemctl stop charge-station)"
                ) from None
            raise BackupError(f"cannot lock {database}: {exc}") from None
        yield db


def restore(
    database: Path, source: Path, *, now: datetime | None = None, keep_queue: bool = False
) -> Restored:
    """Replace the station database with the backup `source`, only while nothing has it open.
    The replaced database is kept beside it as <name>.before-restore-<UTC time>.

    The backup's saved queue (requests, open sessions and their meter baselines) is left out
    unless keep_queue: those cars have usually left long ago, and a session carried on from an
    old meter baseline would bill the car for energy that others took since."""
    info = inspect(source)
    if not database.parent.is_dir():
        raise BackupError(f"the state directory {database.parent} does not exist")
    existed = database.exists() and database.stat().st_size > 0
    kept = free_name(database.with_name(f"{database.name}.before-restore-{timestamp(now)}"))
    with _exclusive(database) as live:
        if existed:
            with closing(sqlite3.connect(_private_file(kept))) as out:
                live.backup(out)
                out.execute("PRAGMA journal_mode = DELETE")
        with closing(_connect(source, "ro")) as src:
            try:
                # Page by page into the locked file: its WAL, if any, is rewritten with it, so
                # no stale -wal file can be replayed over the restored content.
                src.backup(live)
            except sqlite3.Error as exc:
                raise BackupError(f"cannot restore {source} into {database}: {exc}") from None
        dropped = None if keep_queue else _drop_queue(live)
    return Restored(info, kept if existed else None, dropped)


def _drop_queue(db: sqlite3.Connection) -> datetime | None:
    """Delete the saved queue state; when it had been saved, or None (none, or schema v1)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'station_state'").fetchone() is None:
        return None
    row = db.execute("SELECT saved_utc_us FROM station_state").fetchone()
    db.execute("DELETE FROM station_state")
    return None if row is None else from_utc_us(row[0])
