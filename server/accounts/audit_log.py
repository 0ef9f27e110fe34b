"""The audit log: who (a user, or none for the station's own uplink) did what, and when; its
table, its migration and its queries (functions of a Storage, as the accounts' are).

Written by the operator API's actions, the accounts' changes and the OCPP uplink; read by
/admin/audit. Its rows name users (server.accounts.tables), so it lives beside them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from peewee import AutoField, BigIntegerField, Database, IntegerField, Model, TextField

from controller.storage import Storage, unavailable_as_retryable
from controller.storage_schema import Migrations, from_utc_us, utc_us

MIGRATIONS = Migrations(
    "audit",
    {
        1: (
            """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at_utc_us INTEGER NOT NULL,
            user_id INTEGER REFERENCES users (id),
            action TEXT NOT NULL,
            detail TEXT NOT NULL)""",
        ),
    },
    legacy={1: 1},  # the one list made it in its version 1
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    user_id: int | None
    action: str
    detail: dict[str, Any]


def audit_table(db: Database) -> type[Model]:
    """The audit log's model class, bound to `db` only (Storage.bound)."""

    class AuditRow(Model):
        id = AutoField()
        at_utc_us = BigIntegerField()
        user_id = IntegerField(null=True)
        action = TextField()
        detail = TextField()

        class Meta:
            database = db
            table_name = "audit_log"

    return AuditRow


def audit(
    storage: Storage,
    user_id: int | None,
    action: str,
    detail: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Record who did what. `detail` is JSON: never put a password or a token in it."""
    text = json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True)
    at_utc_us = utc_us(now if now is not None else datetime.now(UTC))
    with unavailable_as_retryable():
        row = storage.bound(audit_table).insert(
            at_utc_us=at_utc_us, user_id=user_id, action=action, detail=text
        )
        return int(row.execute())


def recent_audit(storage: Storage, num: int) -> list[AuditEntry]:
    """The last num audit entries, newest first."""
    a = storage.bound(audit_table)
    with unavailable_as_retryable():
        rows = list(a.select().order_by(a.id.desc()).limit(num).dicts())
    return [
        AuditEntry(
            id=r["id"],
            at=from_utc_us(r["at_utc_us"]),
            user_id=r["user_id"],
            action=r["action"],
            detail=json.loads(r["detail"]),
        )
        for r in rows
    ]
