"""What the uplink must tell the central system, in order: one queue, drained by one sender.

Transaction messages (StartTransaction, MeterValues of a transaction, StopTransaction) are
durable: each is written to the station's database (server.ocpp.outbox_store) as it is made,
and leaves it only once the central system has answered it, so a dead link, a restart or a
`kill -9` loses none of them, and after a reconnect they go out first, oldest first. Other
messages (statuses, heartbeats) are transient: the state they tell of is told afresh after
every connect. Database writes are batched by one writer task, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.storage import AsyncStorage, StorageError
from controller.storage_schema import utc_us
from server.ocpp import outbox_store as store
from server.ocpp.outbox_store import Operation, OutboxRow, Put, Sent, TransactionRow

log = logging.getLogger(__name__)

RETRY_WRITE_S = 1.0  # after a failed database write (locked, disk full): try again this soon
WRITE_EVERY_S = 0.25  # at most this often, so a burst of messages is one transaction


@dataclass(slots=True)
class Outgoing:
    """A message waiting: the action and its payload as the library's keyword arguments."""

    id: int  # the sending order
    action: str
    payload: dict[str, Any]
    tx: int | None  # the station's transaction it belongs to: durable; None: transient
    attempts: int = 0  # answered with a CallError this many times

    @property
    def durable(self) -> bool:
        return self.tx is not None


class Outbox:
    def __init__(self, storage: AsyncStorage) -> None:
        self._storage = storage
        self._queue: deque[Outgoing] = deque()
        self._ready = asyncio.Event()  # something is waiting
        self._next_id = 1
        self._ops: list[Operation] = []
        self._queued_ops = 0  # operations handed to the writer, ever
        self._applied_ops = 0  # ... of which written
        self._wake_writer = asyncio.Event()
        self._written = asyncio.Condition()
        self._urgent = asyncio.Event()  # someone waits for the writes: no pause
        self.durable = 0  # durable messages waiting

    def __len__(self) -> int:
        return len(self._queue)

    async def load(self) -> list[TransactionRow]:
        """The messages a previous run left, first in the queue; its transactions."""
        rows, txs = await self._storage.run(store.load)
        for row in rows:
            self._queue.append(Outgoing(row.id, row.action, json.loads(row.payload), row.tx))
        self.durable = len(rows)
        self._next_id = max((row.id for row in rows), default=0) + 1
        if rows:
            self._ready.set()
            log.info("uplink: %d transaction messages from before the restart to send", len(rows))
        return txs

    # -- filling -------------------------------------------------------------------------------
    def put(self, action: str, payload: dict[str, Any], tx: int | None = None) -> Outgoing:
        """Queue a message at the end; durable (written now) if it belongs to a transaction."""
        message = Outgoing(self._next_id, action, payload, tx)
        self._next_id += 1
        self._queue.append(message)
        if tx is not None:
            self.durable += 1
            now = utc_us(datetime.now(UTC))
            text = json.dumps(payload, separators=(",", ":"))
            self.record(Put(OutboxRow(message.id, tx, action, text, now)))
        self._ready.set()
        return message

    def record(self, op: Operation) -> None:
        """A write for the database, applied after every write recorded before it."""
        self._ops.append(op)
        self._queued_ops += 1
        self._wake_writer.set()

    def drop_transient(self) -> None:
        """The link went down: what only told of the moment is told afresh after the next boot."""
        self._queue = deque(m for m in self._queue if m.durable)
        if not self._queue:
            self._ready.clear()

    # -- draining (the one sender) -------------------------------------------------------------
    async def head(self, timeout_s: float) -> Outgoing | None:
        """The oldest message, left in the queue until `done`; None after timeout_s without."""
        if not self._queue:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self._queue[0] if self._queue else None

    def done(self, message: Outgoing) -> None:
        """The central system answered the head (or it was given up): it leaves the queue."""
        if self._queue and self._queue[0] is message:
            self._queue.popleft()
        else:  # not the head: a transient message dropped meanwhile; find it
            with contextlib.suppress(ValueError):
                self._queue.remove(message)
        if message.durable:
            self.durable -= 1
            self.record(Sent(message.id))

    # -- the database --------------------------------------------------------------------------
    async def flushed(self) -> None:
        """Return once every write recorded so far is in the database (written now, without
        the writer's pause: the station's state saver waits on it)."""
        target = self._queued_ops
        if self._applied_ops < target:
            self._urgent.set()
        async with self._written:
            await self._written.wait_for(lambda: self._applied_ops >= target)

    async def run_writer(
        self, stop: asyncio.Event, quiet: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """The writer task: everything recorded since its last write, in one transaction;
        each write waits for `quiet` (no control-loop tick running) when given."""
        while True:
            if not self._ops:
                if stop.is_set():
                    return
                self._wake_writer.clear()
                waits = [asyncio.ensure_future(self._wake_writer.wait())]
                waits.append(asyncio.ensure_future(stop.wait()))
                _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for waiting in pending:
                    waiting.cancel()
                continue
            if quiet is not None:
                await quiet()
            ops, self._ops = self._ops, []
            try:
                await self._storage.run(functools.partial(store.apply, operations=ops))
            except StorageError as exc:  # kept, in order, and tried again
                log.error("uplink: %d outbox writes not saved (%s); retrying", len(ops), exc)
                self._ops = ops + self._ops
                await asyncio.sleep(RETRY_WRITE_S)
                continue
            except Exception:  # task boundary: the writes are kept and tried again
                log.exception("uplink: outbox write failed; retrying")
                self._ops = ops + self._ops
                await asyncio.sleep(RETRY_WRITE_S)
                continue
            async with self._written:
                self._applied_ops += len(ops)
                self._written.notify_all()
            if not stop.is_set() and not self._urgent.is_set():
                # What comes meanwhile is one write: a few per second, not one per message
                # (each write is a thread hop that competes with the event loop for the GIL).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), WRITE_EVERY_S)
            self._urgent.clear()
