"""The station database's schema: the runner of every component's versioned migrations, the
station's own tables (bills, the saved queue), and the bill records read from them.

Each part of the station owns its tables and their migrations (a Migrations list: the station's
here; the accounts', the audit log's and the uplink's in server/), and this runner applies them
without knowing them: each component's applied versions are rows of `schema_versions`. A
migration is frozen: once released, a version's statements never change, and a new schema is a
new version in its component's list. The models always describe the newest version; they are
built per database (Storage.bound) so that two databases open in one process never share
bindings. The SQL is SQLite's dialect; another peewee back end would get its own lists.

`schema_version` holds the version of the database's format, one row per format version the
file has passed: versions 1 to 4 were one list of migrations for every table (each component's
`legacy` map says which of its versions each of them made); version 5 keeps each component's
versions in `schema_versions`. A database older than 5 is upgraded in place: its components
start from the versions that list gave them.

Stored representations (the reasons are in controller.storage's docstring):
- times: INTEGER microseconds since the Unix epoch, UTC (`*_utc_us`);
- energy and money: TEXT holding an exact reduced fraction, "n" or "n/d" (`str(Fraction)`),
  in Wh and in yuan (`energy_wh`, `*_fee_yuan`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any, NamedTuple

from peewee import AutoField, BigIntegerField, Database, IntegerField, Model, TextField

from controller.billing import EndReason

# The version table is the one thing every format shares, so it is created outside the
# migrations and never changes: one row per format version the file has passed.
VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY,"
    " applied_utc_us INTEGER NOT NULL)"
)
SCHEMA_VERSION = 5  # the format: components keep their own versions (COMPONENT_TABLE)
# One row per applied migration of each component.
COMPONENT_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_versions ("
    " component TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " applied_utc_us INTEGER NOT NULL,"
    " PRIMARY KEY (component, version))"
)
# A database made by the one list (formats 1 to 4) keeps the version that list had reached
# under this name in schema_versions: a component first opened after the upgrade starts from it.
SINGLE_LIST = "single-list"

# A migration step: a frozen SQL statement, or a function of the database for what SQL alone
# cannot do (registering an SQL function a statement after it calls).
Step = str | Callable[[Database], None]


@dataclass(frozen=True)
class Migrations:
    """One component's tables: its name, its migrations (version -> steps, from 1, in order),
    and which of its versions the one list's versions 1 to 4 had made (`legacy`)."""

    component: str
    steps: Mapping[int, tuple[Step, ...]]
    legacy: Mapping[int, int] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return max(self.steps)


STATION = Migrations(
    "station",
    {
        1: (
            # user_id names an account (server.accounts). The reference dates from the one list,
            # when every table was made together, and stays: no bill names a user who never
            # existed. It has no ON DELETE CASCADE: bills are financial records, so deleting a
            # user who has bills fails instead of silently taking the bills along.
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
            # "A user's newest bills first, num of them" (/user/log). Every SQLite index ends
            # with the rowid, so ORDER BY end DESC, id DESC is read straight off this index.
            "CREATE INDEX bills_user_end ON bills (user_id, end_utc_us)",
        ),
        # The station's queue state (controller.snapshot) as JSON, one row, replaced on every
        # save: requests, pile queues and open sessions with their meter baselines survive a
        # restart.
        2: (
            """CREATE TABLE station_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            saved_utc_us INTEGER NOT NULL,
            state TEXT NOT NULL)""",
        ),
    },
    legacy={1: 1, 2: 2},
)


class Found(NamedTuple):
    """What a database has: its format version (0: a new file) and each component's newest
    applied version (a component without tables yet is absent)."""

    format_version: int
    components: dict[str, int]


def found_versions(db: Database) -> Found:
    """Only reads, so opening an up-to-date file never waits for another process's write."""
    tables = {
        row[0]
        for row in db.execute_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name IN ('schema_version', 'schema_versions')"
        )
    }
    if "schema_version" not in tables:
        return Found(0, {})
    (version,) = db.execute_sql("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    components: dict[str, int] = {}
    if "schema_versions" in tables:
        query = "SELECT component, MAX(version) FROM schema_versions GROUP BY component"
        components = {name: int(v) for name, v in db.execute_sql(query)}
    return Found(int(version), components)


def too_new(found: Found, components: Sequence[Migrations]) -> tuple[str | None, int, int] | None:
    """(component or None for the format, found, supported) of a part newer than this code."""
    if found.format_version > SCHEMA_VERSION:
        return None, found.format_version, SCHEMA_VERSION
    for c in components:
        if found.components.get(c.component, 0) > c.version:
            return c.component, found.components[c.component], c.version
    return None


def needs_upgrade(found: Found, components: Sequence[Migrations]) -> bool:
    if found.format_version < SCHEMA_VERSION:
        return True
    return any(found.components.get(c.component, 0) < c.version for c in components)


def upgrade(db: Database, components: Sequence[Migrations], now_utc_us: int) -> list[str]:
    """Bring the format and every component up to date, in order; the caller holds the write
    transaction, so an upgrade that fails half-way leaves the database as it was. Returns what
    was applied ("accounts 2", "format 5")."""
    db.execute_sql(VERSION_TABLE)
    db.execute_sql(COMPONENT_TABLE)
    formats = dict(db.execute_sql("SELECT version, applied_utc_us FROM schema_version").fetchall())
    done = dict(
        db.execute_sql("SELECT component, MAX(version) FROM schema_versions GROUP BY component")
    )
    applied: list[str] = []

    def record(component: str, version: int, at_utc_us: int) -> None:
        db.execute_sql(
            "INSERT INTO schema_versions (component, version, applied_utc_us) VALUES (?, ?, ?)",
            (component, version, at_utc_us),
        )

    single = max(formats, default=0)
    if 0 < single < SCHEMA_VERSION and SINGLE_LIST not in done:
        record(SINGLE_LIST, single, now_utc_us)  # a file of the one list, met for the first time
        done[SINGLE_LIST] = single
    single = done.get(SINGLE_LIST, 0)
    for c in components:
        if c.component not in done:
            # Its tables as the one list left them: their versions, dated as that list did.
            made = sorted((v, old) for old, v in c.legacy.items() if old <= single)
            for version, old in made:
                record(c.component, version, formats.get(old, now_utc_us))
            done[c.component] = made[-1][0] if made else 0
        for version in sorted(v for v in c.steps if v > done[c.component]):
            for step in c.steps[version]:
                if isinstance(step, str):
                    db.execute_sql(step)
                else:
                    step(db)
            record(c.component, version, now_utc_us)
            applied.append(f"{c.component} {version}")
    for version in range(1, SCHEMA_VERSION + 1):
        if version not in formats:
            db.execute_sql(
                "INSERT INTO schema_version (version, applied_utc_us) VALUES (?, ?)",
                (version, now_utc_us),
            )
            applied.append(f"format {version}")
    return applied


def bill_table(db: Database) -> type[Model]:
    """The bills' model class, bound to `db` only (peewee binds a model class to one database)."""

    class BillRow(Model):
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
            database = db
            table_name = "bills"

    return BillRow


# -- records: what the rows are read into ---------------------------------------------------------
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_US_PER_HOUR = 3_600_000_000


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
