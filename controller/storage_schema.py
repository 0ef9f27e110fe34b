"""The station database's schema: versioned migrations, the peewee models and the records read.

Each migration is frozen SQL: once released, a version's statements never change, and a new
schema is a new entry in MIGRATIONS. The models below always describe the newest version; they
are built per database (models_for) so that two databases open in one process never share
bindings. The SQL is SQLite's dialect; another peewee back end would get its own list.

Stored representations (the reasons are in controller.storage's docstring):
- times: INTEGER microseconds since the Unix epoch, UTC (`*_utc_us`);
- energy and money: TEXT holding an exact reduced fraction, "n" or "n/d" (`str(Fraction)`),
  in Wh and in yuan (`energy_wh`, `*_fee_yuan`);
- registration codes: only their SHA-256 (`code_sha256`, code_digest), so that the file does
  not hand out unspent codes. A code is 96 random bits: a fast hash is enough, no guess of it
  can be checked against the digest faster than against /register.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any, NamedTuple

from peewee import AutoField, BigIntegerField, Database, IntegerField, Model, TextField

from controller.billing import EndReason

# The version table is the one thing every version shares, so it is created outside the
# migrations and never changes: one row per applied migration.
VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY,"
    " applied_utc_us INTEGER NOT NULL)"
)

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        # AUTOINCREMENT: an id is never reused, even after a delete, so an old token or an old
        # bill number can never name somebody else's account or bill.
        """CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('driver', 'operator')),
            created_utc_us INTEGER NOT NULL)""",
        """CREATE TABLE registration_codes (
            code TEXT PRIMARY KEY NOT NULL,
            created_utc_us INTEGER NOT NULL,
            expires_utc_us INTEGER NOT NULL,
            used_by INTEGER REFERENCES users (id),
            used_utc_us INTEGER,
            CHECK ((used_by IS NULL) = (used_utc_us IS NULL)))""",
        # user_id has no ON DELETE CASCADE: bills are financial records, so deleting a user who
        # has bills fails instead of silently taking the bills along.
        """CREATE TABLE bills (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER REFERENCES users (id),
            car TEXT NOT NULL,
            queue_no TEXT NOT NULL,
            pile_id INTEGER NOT NULL,
            pile_name TEXT NOT NULL,
            start_utc_us INTEGER NOT NULL,
            end_utc_us INTEGER NOT NULL,
            reason TEXT NOT NULL,
            energy_wh TEXT NOT NULL,
            charge_fee_yuan TEXT NOT NULL,
            service_fee_yuan TEXT NOT NULL,
            CHECK (end_utc_us >= start_utc_us))""",
        # "A user's newest bills first, num of them" (/user/log). Every SQLite index ends with
        # the rowid, so ORDER BY end DESC, id DESC is read straight off this index, no sort.
        "CREATE INDEX bills_user_end ON bills (user_id, end_utc_us)",
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at_utc_us INTEGER NOT NULL,
            user_id INTEGER REFERENCES users (id),
            action TEXT NOT NULL,
            detail TEXT NOT NULL)""",
    ),
    # The station's queue state (controller.snapshot) as JSON, one row, replaced on every save:
    # requests, pile queues and open sessions with their meter baselines survive a restart.
    2: (
        """CREATE TABLE station_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            saved_utc_us INTEGER NOT NULL,
            state TEXT NOT NULL)""",
    ),
    # The uplink's durable outbox (server/ocpp): transaction messages kept in the order they
    # were made, with their payloads (JSON, timestamps inside) until the central system has
    # answered them; and the station's transactions with the central system's id for each.
    3: (
        """CREATE TABLE uplink_outbox (
            id INTEGER PRIMARY KEY,
            tx INTEGER NOT NULL,
            action TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_utc_us INTEGER NOT NULL)""",
        """CREATE TABLE uplink_transactions (
            tx INTEGER PRIMARY KEY,
            pile_id INTEGER NOT NULL,
            car TEXT NOT NULL,
            meter_start_wh INTEGER NOT NULL,
            csms_id INTEGER,
            stopped INTEGER NOT NULL DEFAULT 0 CHECK (stopped IN (0, 1)))""",
    ),
    4: (
        # A token carries its user's generation; raising it ends every token issued before
        # (a new password, a revocation, a removal). Existing tokens carry none and count as 0.
        "ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0",
        # A removed user's row stays: bills and audit entries name it (no ON DELETE, above),
        # and the name stays taken, so that no new account inherits its bills in a report.
        "ALTER TABLE users ADD COLUMN removed_utc_us INTEGER",
        # Registration codes as digests (code_sha256 is registered by upgrade()). Zeroing
        # freed pages makes the old table's plain codes leave the file, not only the schema.
        "PRAGMA secure_delete = ON",
        """CREATE TABLE registration_codes_v4 (
            code_sha256 TEXT PRIMARY KEY NOT NULL,
            created_utc_us INTEGER NOT NULL,
            expires_utc_us INTEGER NOT NULL,
            used_by INTEGER REFERENCES users (id),
            used_utc_us INTEGER,
            CHECK ((used_by IS NULL) = (used_utc_us IS NULL)))""",
        """INSERT INTO registration_codes_v4
            SELECT code_sha256(code), created_utc_us, expires_utc_us, used_by, used_utc_us
            FROM registration_codes""",
        "DROP TABLE registration_codes",
        "ALTER TABLE registration_codes_v4 RENAME TO registration_codes",
    ),
}

SCHEMA_VERSION = max(MIGRATIONS)


def found_version(db: Database) -> int:
    """The schema version of the open database, 0 for a new one. Only reads, so opening an
    up-to-date file never waits for another process's write."""
    exists = db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    (version,) = db.execute_sql("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(version)


def code_digest(code: str) -> str:
    """What is stored of a registration code: its SHA-256, in hex."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def upgrade(db: Database, found: int, now_utc_us: int) -> list[int]:
    """Apply the migrations after `found`, in order; the caller holds the write transaction, so
    an upgrade that fails half-way leaves the database as it was. Returns the versions applied."""
    # The one function a migration calls (4); frozen with it: its result is what is stored.
    db.connection().create_function("code_sha256", 1, code_digest, deterministic=True)
    db.execute_sql(VERSION_TABLE)
    applied = []
    for version in sorted(v for v in MIGRATIONS if v > found):
        for statement in MIGRATIONS[version]:
            db.execute_sql(statement)
        db.execute_sql(
            "INSERT INTO schema_version (version, applied_utc_us) VALUES (?, ?)",
            (version, now_utc_us),
        )
        applied.append(version)
    return applied


class Models(NamedTuple):
    """The model classes of one database (newest schema)."""

    user: type[Model]
    code: type[Model]
    bill: type[Model]
    audit: type[Model]


def models_for(db: Database) -> Models:
    """Model classes bound to `db` only (peewee binds a model class to one database)."""

    class Base(Model):
        class Meta:
            database = db

    class UserRow(Base):
        id = AutoField()
        username = TextField(unique=True)
        password_hash = TextField()
        role = TextField()
        created_utc_us = BigIntegerField()
        token_generation = IntegerField(default=0)
        removed_utc_us = BigIntegerField(null=True)

        class Meta:
            table_name = "users"

    class CodeRow(Base):
        code_sha256 = TextField(primary_key=True)
        created_utc_us = BigIntegerField()
        expires_utc_us = BigIntegerField()
        # Plain integer columns, not ForeignKeyField: the constraint lives in the SQL above,
        # and a plain id never triggers a lazy query behind the caller's back.
        used_by = IntegerField(null=True)
        used_utc_us = BigIntegerField(null=True)

        class Meta:
            table_name = "registration_codes"

    class BillRow(Base):
        id = AutoField()
        user_id = IntegerField(null=True)
        car = TextField()
        queue_no = TextField()
        pile_id = IntegerField()
        pile_name = TextField()
        start_utc_us = BigIntegerField()
        end_utc_us = BigIntegerField()
        reason = TextField()
        energy_wh = TextField()
        charge_fee_yuan = TextField()
        service_fee_yuan = TextField()

        class Meta:
            table_name = "bills"

    class AuditRow(Base):
        id = AutoField()
        at_utc_us = BigIntegerField()
        user_id = IntegerField(null=True)
        action = TextField()
        detail = TextField()

        class Meta:
            table_name = "audit_log"

    return Models(UserRow, CodeRow, BillRow, AuditRow)


# -- records: what the rows are read into ---------------------------------------------------------
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_US_PER_HOUR = 3_600_000_000


class Role(StrEnum):
    DRIVER = "driver"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    password_hash: str
    role: Role
    created: datetime
    token_generation: int = 0
    removed: datetime | None = None  # a removed user cannot log in; the row stays for its bills


@dataclass(frozen=True, slots=True)
class StoredBill:
    """A bill as stored: `id` is the number users see; amounts are exact, times aware UTC."""

    id: int
    user_id: int | None
    car: str
    queue_no: str
    pile_id: int
    pile_name: str
    start: datetime
    end: datetime
    reason: EndReason
    energy_wh: Fraction
    charge_fee_yuan: Fraction
    service_fee_yuan: Fraction

    @property
    def energy_kwh(self) -> Fraction:
        return self.energy_wh / 1000

    @property
    def total_fee_yuan(self) -> Fraction:
        return self.charge_fee_yuan + self.service_fee_yuan

    @property
    def time_of_use_h(self) -> Fraction:
        return Fraction((self.end - self.start) // _US, _US_PER_HOUR)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    user_id: int | None
    action: str
    detail: dict[str, Any]


def utc_us(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is refused, its zone being unknown."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone; pass an aware datetime")
    return (moment - _EPOCH) // _US


def from_utc_us(value: int) -> datetime:
    return _EPOCH + value * _US


def bill_from_row(row: dict[str, Any]) -> StoredBill:
    return StoredBill(
        id=row["id"],
        user_id=row["user_id"],
        car=row["car"],
        queue_no=row["queue_no"],
        pile_id=row["pile_id"],
        pile_name=row["pile_name"],
        start=from_utc_us(row["start_utc_us"]),
        end=from_utc_us(row["end_utc_us"]),
        reason=EndReason(row["reason"]),
        energy_wh=Fraction(row["energy_wh"]),
        charge_fee_yuan=Fraction(row["charge_fee_yuan"]),
        service_fee_yuan=Fraction(row["service_fee_yuan"]),
    )


def user_from_row(row: dict[str, Any]) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        password_hash=row["password_hash"],
        role=Role(row["role"]),
        created=from_utc_us(row["created_utc_us"]),
        token_generation=row["token_generation"],
        removed=None if row["removed_utc_us"] is None else from_utc_us(row["removed_utc_us"]),
    )


def audit_from_row(row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=from_utc_us(row["at_utc_us"]),
        user_id=row["user_id"],
        action=row["action"],
        detail=json.loads(row["detail"]),
    )
