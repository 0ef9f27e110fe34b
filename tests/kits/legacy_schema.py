"""The station database as releases before per-component versions made it: one list of
migrations for every table, versions 1 to 4, copied as they were (controller/storage_schema.py
at commit 1a9c2cb). Tests build old databases from it; nothing here may change."""

from __future__ import annotations

import hashlib
import sqlite3

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

LAST_VERSION = max(MIGRATIONS)


def build(conn: sqlite3.Connection, up_to: int = LAST_VERSION) -> None:
    """Apply versions 1 to `up_to` as those releases did, recording each (applied at time 0)."""
    # The one function migration 4 calls, as those releases registered it.
    conn.create_function(
        "code_sha256", 1, lambda code: hashlib.sha256(code.encode("utf-8")).hexdigest()
    )
    conn.execute(VERSION_TABLE)
    for version in range(1, up_to + 1):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
