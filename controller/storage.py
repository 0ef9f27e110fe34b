"""The station's database: one SQLite file, opened with every component's tables, holding the
station's own (bills, the saved queue); the other components keep theirs in it too.

peewee on SQLite in WAL mode (DESIGN "Storage"); each component's schema is versioned and
upgraded forward when the file is opened (controller.storage_schema). Storage is the
synchronous API, and a component's queries are functions of a Storage (`def f(s: Storage)`);
AsyncStorage runs any of them in one dedicated worker thread (`await storage.run(f)`), so no
database call ever runs on the event loop.

Representations, and why:
- Energy and money are exact rationals, stored as reduced fractions in text ("n" or "n/d") in
  Wh and yuan. A bill's integers are in the station's units, whose scale (ticks per second, the
  least common multiple of the pile powers) changes with the pile configuration, so they cannot
  be stored as they are; a fixed denominator (fen, Wh) cannot hold them either: a session stopped
  at an arbitrary instant delivers P*t, not whole Wh, and a yuan amount can have a factor 7 in its
  denominator. The station's integers would also overflow SQLite's 64-bit INTEGER (at 210,000
  ticks/s one yuan is 7.56e15 fee units: a bill of 1,220 yuan would not fit). So rounding to
  0.01 happens only when a value is shown (controller.units.round_half_up), and sums over bills
  stay exact.
- Times are INTEGER microseconds since the epoch, UTC: exact for Python datetimes, free of time
  zones and daylight saving, and ordered for the (user, end) index. The API shows them in the
  station's zone.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import peewee

from controller import backup, state_dir
from controller import storage_schema as schema
from controller.billing import Bill, EndReason
from controller.storage_schema import Migrations, StoredBill, utc_us
from controller.units import Units

T = TypeVar("T")
log = logging.getLogger(__name__)

DATABASE_FILENAME = "station.sqlite3"  # the one file under the state directory
DEFAULT_BUSY_TIMEOUT_MS = 5_000


# Primary SQLite result codes after which a write may succeed later: another connection holds
# the lock (BUSY, LOCKED), the disk or the size limit is full (FULL), or the device failed a
# write (IOERR: a remounted or re-seated disk recovers). The data must then be kept, not dropped.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR, _SQLITE_FULL = 5, 6, 10, 13
_RETRYABLE_CODES = frozenset({_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR, _SQLITE_FULL})


class StorageError(Exception):
    """A storage failure the caller can act on."""


class SchemaTooNew(StorageError):
    def __init__(
        self, path: Path, found: int, supported: int, component: str | None = None
    ) -> None:
        what = "schema version" if component is None else f"{component} tables at version"
        super().__init__(
            f"database {path} has {what} {found}, newer than version {supported} that "
            "this controller supports; upgrade the controller or point it at another state "
            "directory"
        )
        self.found = found
        self.supported = supported
        self.component = component  # None: the database's format (schema_version)


class StorageUnavailable(StorageError):
    """Retryable: the database is locked, or the disk is full or failing. Nothing was written."""


class PendingBill(NamedTuple):
    """Everything add_bill needs, so a bill that could not be stored is kept and retried:
    `storage.add_bill(*error.pending)`."""

    bill: Bill
    units: Units
    user_id: int | None
    start: datetime
    end: datetime


class BillNotSaved(StorageUnavailable):
    """Retryable: the bill was not stored; it travels with the error so it is not lost."""

    def __init__(self, pending: PendingBill, cause: str) -> None:
        super().__init__(f"bill of car {pending.bill.car} not saved ({cause}); retry later")
        self.pending = pending

    @property
    def bill(self) -> Bill:
        return self.pending.bill


def _now(now: datetime | None) -> int:
    # Callers that own a clock pass it in; the wall clock is only a default for the CLI.
    return utc_us(now if now is not None else datetime.now(UTC))


def _sqlite_code(exc: BaseException) -> int | None:
    """The primary SQLite result code behind a peewee or sqlite3 error (peewee keeps the
    driver's exception as `orig`, and it is also the implicit __context__)."""
    for cause in (exc, getattr(exc, "orig", None), exc.__context__):
        code = getattr(cause, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF
    return None


@contextmanager
def unavailable_as_retryable() -> Iterator[None]:
    """Every component's queries run in this: a locked, full or failing database raises
    StorageUnavailable (retryable), not the driver's error."""
    try:
        yield
    except (peewee.OperationalError, sqlite3.OperationalError) as exc:
        if _sqlite_code(exc) in _RETRYABLE_CODES:
            raise StorageUnavailable(f"database unavailable: {exc}") from exc
        raise


class Storage:
    """The synchronous storage API. peewee keeps one connection per thread: use an instance
    from one thread (AsyncStorage does this for the event loop)."""

    def __init__(self, path: Path, db: peewee.SqliteDatabase) -> None:
        self.path = path
        self.db = db  # for the components' queries (in unavailable_as_retryable)
        self._bound: dict[Callable[[peewee.Database], Any], Any] = {}
        self._bills = self.bound(schema.bill_table)

    def bound(self, make: Callable[[peewee.Database], T]) -> T:
        """make(db), made once per Storage: a component's model classes bound to this database."""
        if make not in self._bound:
            self._bound[make] = make(self.db)
        return cast(T, self._bound[make])

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        components: Sequence[Migrations] = (),
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        pragmas: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Storage:
        """Open the database file with the station's tables and the `components`' (each its own
        Migrations), creating it or upgrading them; SchemaTooNew if any was written by a newer
        controller. `pragmas` adds to or overrides the defaults."""
        path = Path(path)
        path.parent.mkdir(mode=state_dir.DIR_MODE, parents=True, exist_ok=True)
        # Before SQLite opens it: the file and the -wal and -shm made after it are then 0600.
        state_dir.private_database(path)
        settings: dict[str, Any] = {
            "journal_mode": "wal",  # readers never block the writer, nor it them
            "synchronous": "normal",  # safe with WAL: a power cut loses at most the last commits
            "foreign_keys": 1,  # SQLite leaves them off unless asked, per connection
            "busy_timeout": busy_timeout_ms,
        }
        settings.update(pragmas or {})
        db = peewee.SqliteDatabase(str(path), pragmas=settings, timeout=busy_timeout_ms / 1000)
        every = (schema.STATION, *components)
        applied: list[str] = []
        try:
            with unavailable_as_retryable():
                found = schema.found_versions(db)
                _refuse_too_new(path, found, every)
                if schema.needs_upgrade(found, every):
                    # IMMEDIATE, then look again: of two processes opening an old file at once,
                    # one upgrades and the other finds it done.
                    with db.atomic("IMMEDIATE"):
                        found = schema.found_versions(db)
                        _refuse_too_new(path, found, every)
                        if schema.needs_upgrade(found, every):
                            if found.format_version > 0:
                                _backup_before_upgrade(path, found.format_version, now)
                            applied = schema.upgrade(db, every, _now(now))
        except BaseException:
            db.close()
            raise
        if applied:
            log.info(
                "database %s: schema upgraded from format %s: %s",
                path,
                found.format_version,
                ", ".join(applied),
            )
        return cls(path, db)

    def close(self) -> None:
        """Close this thread's connection (the last one to close checkpoints the WAL)."""
        self.db.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- bills ---------------------------------------------------------------------------------
    def add_bill(
        self, bill: Bill, units: Units, user_id: int | None, start: datetime, end: datetime
    ) -> int:
        """Store a bill made in `units`; returns its stored id, the number users see. On a
        locked database or a full disk, BillNotSaved carrying the bill (retry or keep it)."""
        start_utc_us, end_utc_us = utc_us(start), utc_us(end)
        if end_utc_us < start_utc_us:
            raise ValueError(f"bill of car {bill.car} ends ({end}) before it starts ({start})")
        row = {
            "user_id": user_id,
            "car": bill.car,
            "queue_no": bill.queue_no,
            "pile_id": bill.pile_id,
            "pile_name": bill.pile_name,
            "start_utc_us": start_utc_us,
            "end_utc_us": end_utc_us,
            "reason": EndReason(bill.reason).value,
            "energy_wh": str(Fraction(bill.energy, units.energy_per_wh)),
            "charge_fee_yuan": str(units.yuan(bill.charge_fee)),
            "service_fee_yuan": str(units.yuan(bill.service_fee)),
        }
        try:
            with unavailable_as_retryable():
                return int(self._bills.insert(**row).execute())
        except StorageUnavailable as exc:
            raise BillNotSaved(PendingBill(bill, units, user_id, start, end), str(exc)) from exc

    # -- the station's saved state ------------------------------------------------------------
    def save_state(self, state: str, now: datetime | None = None) -> None:
        """Replace the station's saved queue state (JSON text)."""
        with unavailable_as_retryable():
            self.db.execute_sql(
                "INSERT OR REPLACE INTO station_state (id, saved_utc_us, state) VALUES (1, ?, ?)",
                (_now(now), state),
            )

    def load_state(self) -> str | None:
        with unavailable_as_retryable():
            row = self.db.execute_sql("SELECT state FROM station_state WHERE id = 1").fetchone()
        return None if row is None else str(row[0])

    def bills_of(self, user_id: int, num: int) -> list[StoredBill]:
        """The user's own bills, newest (latest end) first, at most num of them."""
        if num < 1:
            raise ValueError(f"num must be at least 1, not {num}")
        b = self._bills
        query = (
            b.select()
            .where(b.user_id == user_id)
            .order_by(b.end_utc_us.desc(), b.id.desc())
            .limit(num)
            .dicts()
        )
        with unavailable_as_retryable():
            return [schema.bill_from_row(row) for row in query]

    def bills_between(
        self, start: datetime, end: datetime, pile_id: int | None = None
    ) -> list[StoredBill]:
        """Every bill that ended in [start, end), of one pile if given, newest first (the
        operator's reports and exports). A scan of the bills: the station keeps few enough."""
        b = self._bills
        where = (b.end_utc_us >= utc_us(start)) & (b.end_utc_us < utc_us(end))
        if pile_id is not None:
            where &= b.pile_id == pile_id
        query = b.select().where(where).order_by(b.end_utc_us.desc(), b.id.desc()).dicts()
        with unavailable_as_retryable():
            return [schema.bill_from_row(row) for row in query]


def _refuse_too_new(path: Path, found: schema.Found, components: Sequence[Migrations]) -> None:
    newer = schema.too_new(found, components)
    if newer is not None:
        component, version, supported = newer
        raise SchemaTooNew(path, version, supported, component)


def _backup_before_upgrade(path: Path, found: int, now: datetime | None) -> Path:
    """A copy of the database as it is, next to it, before a migration touches it: an upgrade
    that goes wrong, or a controller rolled back, can start again from this copy. Taken inside
    the upgrade's write transaction, so it is the last state before the upgrade; a database
    that cannot be copied is not upgraded."""
    dest = backup.free_name(path.with_name(f"{path.name}.v{found}-backup-{backup.timestamp(now)}"))
    try:
        backup.copy_database(path, dest)
    except (OSError, backup.BackupError) as exc:
        raise StorageError(
            f"database {path} (schema version {found}) needs an upgrade, but the backup before "
            f"upgrading failed ({exc}); free some space or fix the state directory's "
            "permissions and start again"
        ) from exc
    log.warning(
        "database %s: schema version %s, tables older than this release's; backed up to %s "
        "before upgrading",
        path,
        found,
        dest,
    )
    return dest


class AsyncStorage:
    """Storage for the event loop: every call runs in one dedicated worker thread.

    One thread, because SQLite has one writer at a time anyway and peewee keeps a connection per
    thread: the station's writes then go out in the order they were made, on one connection,
    and never wait on each other's locks inside the process.
    """

    def __init__(self, storage: Storage, executor: ThreadPoolExecutor) -> None:
        self._storage = storage  # touched only from the worker thread
        self._executor = executor

    @classmethod
    async def open(cls, path: str | Path, **options: Any) -> AsyncStorage:
        """Storage.open(path, **options), run in the new worker thread."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="storage")
        loop = asyncio.get_running_loop()
        try:
            storage = await loop.run_in_executor(
                executor, functools.partial(Storage.open, path, **options)
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(storage, executor)

    async def run(self, work: Callable[[Storage], T]) -> T:
        """Run work(storage) in the worker thread: the one way to the database from the loop
        (a component's query is a function of a Storage)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, work, self._storage)

    async def close(self) -> None:
        await self.run(Storage.close)
        # The close ran last in the worker's queue, so joining the idle thread is immediate.
        self._executor.shutdown(wait=True)
