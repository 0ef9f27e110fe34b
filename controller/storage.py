"""The station's persistence: users, registration codes, bills and the audit log in one SQLite file.

peewee on SQLite in WAL mode (DESIGN "Storage"); the schema is versioned and upgraded forward
when the file is opened (controller.storage_schema). Storage is the synchronous API (CLI,
tests); AsyncStorage runs the same calls in one dedicated worker thread, so no database call
ever runs on the event loop.

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
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import peewee

from controller import backup, state_dir
from controller import storage_schema as schema
from controller.billing import Bill, EndReason
from controller.storage_schema import AuditEntry, Role, StoredBill, User, utc_us
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
    def __init__(self, path: Path, found: int, supported: int) -> None:
        super().__init__(
            f"database {path} has schema version {found}, newer than version {supported} that "
            "this controller supports; upgrade the controller or point it at another state "
            "directory"
        )
        self.found = found
        self.supported = supported


class AlreadyExists(StorageError):
    """A unique value (username, registration code) is already taken."""


class DuplicateUsername(AlreadyExists):
    def __init__(self, username: str) -> None:
        super().__init__(f"username {username!r} is already taken; choose another")
        self.username = username


class DuplicateCode(AlreadyExists):
    def __init__(self) -> None:
        super().__init__("this registration code already exists; issue another")


class CodeRefused(StorageError):
    def __init__(self) -> None:
        super().__init__("the registration code is unknown, used or expired; ask for a new one")


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
def _unavailable_as_retryable() -> Iterator[None]:
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
        self._db = db
        self._m = schema.models_for(db)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        pragmas: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Storage:
        """Open the database file, creating it or upgrading its schema; SchemaTooNew if it was
        written by a newer controller. `pragmas` adds to or overrides the defaults."""
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
        applied: list[int] = []
        try:
            with _unavailable_as_retryable():
                found = schema.found_version(db)
                if found < schema.SCHEMA_VERSION:
                    # IMMEDIATE, then look again: of two processes opening an old file at once,
                    # one upgrades and the other finds it done.
                    with db.atomic("IMMEDIATE"):
                        found = schema.found_version(db)
                        if 0 < found < schema.SCHEMA_VERSION:
                            _backup_before_upgrade(path, found, now)
                        if found < schema.SCHEMA_VERSION:
                            applied = schema.upgrade(db, found, _now(now))
                if found > schema.SCHEMA_VERSION:
                    raise SchemaTooNew(path, found, schema.SCHEMA_VERSION)
        except BaseException:
            db.close()
            raise
        if applied:
            log.info("database %s: schema upgraded from version %s to %s", path, found, applied[-1])
        return cls(path, db)

    def close(self) -> None:
        """Close this thread's connection (the last one to close checkpoints the WAL)."""
        self._db.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- users and registration codes ----------------------------------------------------------
    def add_user(
        self, username: str, password_hash: str, role: Role | str, now: datetime | None = None
    ) -> int:
        """Create a user; DuplicateUsername if the name is taken."""
        role = Role(role)
        with _unavailable_as_retryable():
            try:
                return int(
                    self._m.user.insert(
                        username=username,
                        password_hash=password_hash,
                        role=role.value,
                        created_utc_us=_now(now),
                    ).execute()
                )
            except peewee.IntegrityError as exc:
                if "users.username" in str(exc):
                    raise DuplicateUsername(username) from exc
                raise

    def _user(self, where: Any) -> User | None:
        with _unavailable_as_retryable():
            row = self._m.user.select().where(where).dicts().first()
        return None if row is None else schema.user_from_row(row)

    def user_by_name(self, username: str) -> User | None:
        return self._user(self._m.user.username == username)

    def user_by_id(self, user_id: int) -> User | None:
        return self._user(self._m.user.id == user_id)

    def issue_code(self, code: str, expires: datetime, now: datetime | None = None) -> None:
        """Store a single-use registration code valid until `expires` (exclusive): its digest
        only (storage_schema.code_digest); the code itself is never written."""
        with _unavailable_as_retryable():
            try:
                self._m.code.insert(
                    code_sha256=schema.code_digest(code),
                    created_utc_us=_now(now),
                    expires_utc_us=utc_us(expires),
                ).execute()
            except peewee.IntegrityError as exc:
                raise DuplicateCode() from exc

    def use_code(self, code: str, user_id: int, now: datetime) -> bool:
        """Spend the code for user_id; False if it is unknown, used or expired. One UPDATE with
        every condition in its WHERE, so two registrations racing for a code cannot both win."""
        c = self._m.code
        with _unavailable_as_retryable():
            spent = (
                c.update(used_by=user_id, used_utc_us=utc_us(now))
                .where(
                    (c.code_sha256 == schema.code_digest(code))
                    & c.used_by.is_null()
                    & (c.expires_utc_us > utc_us(now))
                )
                .execute()
            )
        return spent == 1

    def register(
        self, username: str, password_hash: str, role: Role | str, code: str, now: datetime
    ) -> int:
        """Create a user and spend their registration code together: both or neither.
        DuplicateUsername, or CodeRefused (and no user is left behind)."""
        with _unavailable_as_retryable(), self._db.atomic("IMMEDIATE"):
            user_id = self.add_user(username, password_hash, role, now)
            if not self.use_code(code, user_id, now):
                raise CodeRefused()  # leaving the block rolls the new user back
            return user_id

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
            with _unavailable_as_retryable():
                return int(self._m.bill.insert(**row).execute())
        except StorageUnavailable as exc:
            raise BillNotSaved(PendingBill(bill, units, user_id, start, end), str(exc)) from exc

    def bills_of(self, user_id: int, num: int) -> list[StoredBill]:
        """The user's own bills, newest (latest end) first, at most num of them."""
        if num < 1:
            raise ValueError(f"num must be at least 1, not {num}")
        b = self._m.bill
        query = (
            b.select()
            .where(b.user_id == user_id)
            .order_by(b.end_utc_us.desc(), b.id.desc())
            .limit(num)
            .dicts()
        )
        with _unavailable_as_retryable():
            return [schema.bill_from_row(row) for row in query]

    def bills_between(
        self, start: datetime, end: datetime, pile_id: int | None = None
    ) -> list[StoredBill]:
        """Every bill that ended in [start, end), of one pile if given, newest first (the
        operator's reports and exports). A scan of the bills: the station keeps few enough."""
        b = self._m.bill
        where = (b.end_utc_us >= utc_us(start)) & (b.end_utc_us < utc_us(end))
        if pile_id is not None:
            where &= b.pile_id == pile_id
        query = b.select().where(where).order_by(b.end_utc_us.desc(), b.id.desc()).dicts()
        with _unavailable_as_retryable():
            return [schema.bill_from_row(row) for row in query]

    def usernames(self, user_ids: Iterable[int]) -> dict[int, str]:
        """The usernames of these user ids, in one query; unknown ids are left out."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        u = self._m.user
        with _unavailable_as_retryable():
            rows = u.select(u.id, u.username).where(u.id.in_(ids)).tuples()
            return {int(user_id): name for user_id, name in rows}

    def code_expires(self, code: str) -> datetime | None:
        """When a registration code expires; None if there is no such code."""
        c = self._m.code
        with _unavailable_as_retryable():
            digest = schema.code_digest(code)
            row = c.select(c.expires_utc_us).where(c.code_sha256 == digest).tuples().first()
        return None if row is None else schema.from_utc_us(row[0])

    # -- audit log -----------------------------------------------------------------------------
    def audit(
        self,
        user_id: int | None,
        action: str,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Record who did what. `detail` is JSON: never put a password or a token in it."""
        text = json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True)
        with _unavailable_as_retryable():
            return int(
                self._m.audit.insert(
                    at_utc_us=_now(now), user_id=user_id, action=action, detail=text
                ).execute()
            )

    def recent_audit(self, num: int) -> list[AuditEntry]:
        """The last num audit entries, newest first."""
        a = self._m.audit
        with _unavailable_as_retryable():
            rows = list(a.select().order_by(a.id.desc()).limit(num).dicts())
        return [schema.audit_from_row(r) for r in rows]


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
            f"database {path} has schema version {found} and needs an upgrade to "
            f"{schema.SCHEMA_VERSION}, but the backup before upgrading failed ({exc}); free "
            "some space or fix the state directory's permissions and start again"
        ) from exc
    log.warning(
        "database %s: schema version %s is older than %s; backed up to %s before upgrading",
        path,
        found,
        schema.SCHEMA_VERSION,
        dest,
    )
    return dest


def _save_state(storage: Storage, state: str, now: datetime | None) -> None:
    with _unavailable_as_retryable():
        storage._db.execute_sql(
            "INSERT OR REPLACE INTO station_state (id, saved_utc_us, state) VALUES (1, ?, ?)",
            (_now(now), state),
        )


def _load_state(storage: Storage) -> str | None:
    with _unavailable_as_retryable():
        row = storage._db.execute_sql("SELECT state FROM station_state WHERE id = 1").fetchone()
    return None if row is None else str(row[0])


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
        """Run work(storage) in the worker thread: for queries this class does not wrap."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, work, self._storage)

    async def close(self) -> None:
        await self.run(Storage.close)
        # The close ran last in the worker's queue, so joining the idle thread is immediate.
        self._executor.shutdown(wait=True)

    async def add_user(
        self, username: str, password_hash: str, role: Role | str, now: datetime | None = None
    ) -> int:
        return await self.run(lambda s: s.add_user(username, password_hash, role, now))

    async def user_by_name(self, username: str) -> User | None:
        return await self.run(lambda s: s.user_by_name(username))

    async def user_by_id(self, user_id: int) -> User | None:
        return await self.run(lambda s: s.user_by_id(user_id))

    async def issue_code(self, code: str, expires: datetime, now: datetime | None = None) -> None:
        await self.run(lambda s: s.issue_code(code, expires, now))

    async def use_code(self, code: str, user_id: int, now: datetime) -> bool:
        return await self.run(lambda s: s.use_code(code, user_id, now))

    async def register(
        self, username: str, password_hash: str, role: Role | str, code: str, now: datetime
    ) -> int:
        return await self.run(lambda s: s.register(username, password_hash, role, code, now))

    async def add_bill(
        self, bill: Bill, units: Units, user_id: int | None, start: datetime, end: datetime
    ) -> int:
        return await self.run(lambda s: s.add_bill(bill, units, user_id, start, end))

    async def bills_of(self, user_id: int, num: int) -> list[StoredBill]:
        return await self.run(lambda s: s.bills_of(user_id, num))

    async def bills_between(
        self, start: datetime, end: datetime, pile_id: int | None = None
    ) -> list[StoredBill]:
        return await self.run(lambda s: s.bills_between(start, end, pile_id))

    async def usernames(self, user_ids: Iterable[int]) -> dict[int, str]:
        ids = list(user_ids)  # read here: the caller's iterable may not survive the thread hop
        return await self.run(lambda s: s.usernames(ids))

    async def code_expires(self, code: str) -> datetime | None:
        return await self.run(lambda s: s.code_expires(code))

    async def audit(
        self,
        user_id: int | None,
        action: str,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> int:
        return await self.run(lambda s: s.audit(user_id, action, detail, now))

    async def recent_audit(self, num: int) -> list[AuditEntry]:
        return await self.run(lambda s: s.recent_audit(num))

    async def save_state(self, state: str, now: datetime | None = None) -> None:
        """Replace the station's saved queue state (JSON text)."""
        await self.run(lambda s: _save_state(s, state, now))

    async def load_state(self) -> str | None:
        return await self.run(_load_state)
