"""The accounts' tables: users and registration codes, their migrations, their models, and the
user records read from them.

Registration codes are stored as their SHA-256 only (`code_sha256`, code_digest), so that the
file does not hand out unspent codes. A code is 96 random bits: a fast hash is enough, no guess
of it can be checked against the digest faster than against /register. Times are INTEGER
microseconds since the epoch, UTC, as every table of the station has them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from peewee import AutoField, BigIntegerField, Database, IntegerField, Model, TextField

from controller.storage_schema import Migrations, from_utc_us


def code_digest(code: str) -> str:
    """What is stored of a registration code: its SHA-256, in hex."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def _code_sha256(db: Database) -> None:
    # The one function migration 2 calls; frozen with it: its result is what is stored.
    db.connection().create_function("code_sha256", 1, code_digest, deterministic=True)


MIGRATIONS = Migrations(
    "accounts",
    {
        1: (
            # AUTOINCREMENT: an id is never reused, even after a delete, so an old token or an
            # old bill number can never name somebody else's account or bill.
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
        ),
        2: (
            # A token carries its user's generation; raising it ends every token issued before
            # (a new password, a revocation, a removal). Existing tokens carry none: 0.
            "ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0",
            # A removed user's row stays: bills and audit entries name it (no ON DELETE), and
            # the name stays taken, so that no new account inherits its bills in a report.
            "ALTER TABLE users ADD COLUMN removed_utc_us INTEGER",
            # Registration codes as digests. Zeroing freed pages makes the old table's plain
            # codes leave the file, not only the schema.
            "PRAGMA secure_delete = ON",
            _code_sha256,
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
    },
    # The one list made these tables in its versions 1 and 4.
    legacy={1: 1, 4: 2},
)


class Tables(NamedTuple):
    """The accounts' model classes of one database (newest schema)."""

    user: type[Model]
    code: type[Model]


def tables_for(db: Database) -> Tables:
    """Model classes bound to `db` only (Storage.bound makes them once per database)."""

    class UserRow(Model):
        id = AutoField()
        username = TextField(unique=True)
        password_hash = TextField()
        role = TextField()
        created_utc_us = BigIntegerField()
        token_generation = IntegerField(default=0)
        removed_utc_us = BigIntegerField(null=True)

        class Meta:
            database = db
            table_name = "users"

    class CodeRow(Model):
        code_sha256 = TextField(primary_key=True)
        created_utc_us = BigIntegerField()
        expires_utc_us = BigIntegerField()
        # Plain integer columns, not ForeignKeyField: the constraint lives in the SQL above,
        # and a plain id never triggers a lazy query behind the caller's back.
        used_by = IntegerField(null=True)
        used_utc_us = BigIntegerField(null=True)

        class Meta:
            database = db
            table_name = "registration_codes"

    return Tables(UserRow, CodeRow)


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
