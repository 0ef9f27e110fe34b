"""The uplink's outbox and transactions in the station database: their tables, migration and
queries (functions of a Storage).

An uplink (server/ocpp) keeps every message it must not lose here until its peer has answered
it, and its transactions with the peer's id for each. Its writes come in batches of operations
applied in one SQLite transaction, so a burst of meter values is one commit, and a batch is all
there or not at all after a crash.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from controller.storage import Storage, unavailable_as_retryable
from controller.storage_schema import Migrations
from controller.values import CarId

# Transaction messages kept in the order they were made, with their payloads (JSON, timestamps
# inside) until the central system has answered them; and the station's transactions with the
# central system's id for each.
MIGRATIONS = Migrations(
    "outbox",
    {
        1: (
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
    },
    legacy={3: 1},  # the one list made them in its version 3
)


class OutboxRow(NamedTuple):
    id: int  # the sending order
    tx: int  # the station's number of the transaction it belongs to
    action: str
    payload: str  # JSON
    created_utc_us: int


class TransactionRow(NamedTuple):
    tx: int
    pile_id: int
    car: CarId
    meter_start_wh: int
    csms_id: int | None  # None until the peer has answered the transaction's start
    stopped: bool


class Put(NamedTuple):
    row: OutboxRow


class Sent(NamedTuple):
    """The peer answered the message: it leaves the outbox."""

    id: int


class Begin(NamedTuple):
    tx: int
    pile_id: int
    car: CarId
    meter_start_wh: int


class PeerId(NamedTuple):
    tx: int
    csms_id: int


class Stopped(NamedTuple):
    tx: int


class Forget(NamedTuple):
    """The transaction's last message was answered: nothing refers to it any more."""

    tx: int


Operation = Put | Sent | Begin | PeerId | Stopped | Forget


def apply(storage: Storage, operations: list[Operation]) -> None:
    """Apply the operations in order, in one transaction; runs of puts and of sends are one
    statement each (executemany), so a batch of hundreds costs little."""
    db = storage.db
    with unavailable_as_retryable(), db.atomic():
        cursor = db.cursor()
        i = 0
        while i < len(operations):
            op = operations[i]
            kind = type(op)
            j = i
            while j < len(operations) and type(operations[j]) is kind:
                j += 1
            run = operations[i:j]
            if kind is Put:
                cursor.executemany(
                    "INSERT INTO uplink_outbox (id, tx, action, payload, created_utc_us)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [tuple(p.row) for p in run],  # type: ignore[union-attr]
                )
            elif kind is Sent:
                cursor.executemany(
                    "DELETE FROM uplink_outbox WHERE id = ?",
                    [(s.id,) for s in run],  # type: ignore[union-attr]
                )
            else:
                for one in run:
                    _apply_one(cursor, one)
            i = j


def _apply_one(cursor: Any, op: Operation) -> None:
    if isinstance(op, Begin):
        cursor.execute(
            "INSERT OR REPLACE INTO uplink_transactions (tx, pile_id, car, meter_start_wh)"
            " VALUES (?, ?, ?, ?)",
            tuple(op),
        )
    elif isinstance(op, PeerId):
        cursor.execute(
            "UPDATE uplink_transactions SET csms_id = ? WHERE tx = ?", (op.csms_id, op.tx)
        )
    elif isinstance(op, Stopped):
        cursor.execute("UPDATE uplink_transactions SET stopped = 1 WHERE tx = ?", (op.tx,))
    elif isinstance(op, Forget):
        cursor.execute("DELETE FROM uplink_transactions WHERE tx = ?", (op.tx,))


def load(storage: Storage) -> tuple[list[OutboxRow], list[TransactionRow]]:
    """The messages waiting, in sending order, and the transactions still referred to."""
    db = storage.db
    with unavailable_as_retryable():
        rows = db.execute_sql(
            "SELECT id, tx, action, payload, created_utc_us FROM uplink_outbox ORDER BY id"
        ).fetchall()
        txs = db.execute_sql(
            "SELECT tx, pile_id, car, meter_start_wh, csms_id, stopped FROM uplink_transactions"
            " ORDER BY tx"
        ).fetchall()
    return (
        [OutboxRow(*row) for row in rows],
        [TransactionRow(t[0], t[1], t[2], t[3], t[4], bool(t[5])) for t in txs],
    )
