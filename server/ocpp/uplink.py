"""The uplink's life: connect, boot, tell every status, then send the outbox in order, with
heartbeats in the quiet and MeterValues on their cadence; reconnect with exponential backoff
and jitter when the link is lost.

Nothing here waits on the station: the door's events become messages in the outbox at once
(a list append and a batched database write), and one sender task drains it at the central
system's pace. A dead or slow central system only makes the outbox longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError
from ocpp.v16 import call

from controller.door import Door, Refused
from controller.storage import AsyncStorage, StorageError
from controller.values import CarId
from server.accounts import audit_log
from server.ocpp.charge_point import StationChargePoint
from server.ocpp.config import OcppSettings
from server.ocpp.connection import Connection, ConnectionClosed, connect
from server.ocpp.outbox import Outbox, Outgoing
from server.ocpp.transactions import Transactions

log = logging.getLogger(__name__)

RESPONSE_TIMEOUT_S = 30.0  # an answer later than this: the link is taken for dead
BACKOFF_FIRST_S = 1.0  # the first pause after a lost link; doubled per failure up to the max
ATTEMPTS = 3  # a message answered with a CallError this often is given up (logged)
RETRY_S = 1.0  # pause before sending a message again after a CallError
CLOSE_TIMEOUT_S = 10.0


def release() -> str:
    try:
        return version("charge-station")
    except PackageNotFoundError:
        return "unknown"


class Uplink:
    """`await uplink.start()` after the station's state is restored; `await uplink.close()`."""

    def __init__(
        self,
        settings: OcppSettings,
        door: Door,
        storage: AsyncStorage,
        scale: float = 1.0,
        *,
        response_timeout_s: float = RESPONSE_TIMEOUT_S,
    ) -> None:
        assert settings.url is not None, "the uplink is configured"
        self.settings = settings
        self.url = settings.url
        self.door = door
        self.storage = storage
        self.scale = scale  # station seconds per real second (meter_values_s is station time)
        self.response_timeout_s = response_timeout_s
        self.heartbeat_s = settings.heartbeat_s
        self.meter_values_s = settings.meter_values_s
        self.attempts = ATTEMPTS
        self.outbox = Outbox(storage)
        self.transactions = Transactions(door, self.outbox)
        self.transactions.online = lambda: self.connected
        self.connected = False  # connected and booted (Accepted)
        self.boots = 0  # accepted boots since start-up
        self.delivered = 0  # messages the central system answered
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._spawned: set[asyncio.Task[Any]] = set()
        self._unsubscribe: Any = None
        self._connection: Connection | None = None

    # -- start and stop ------------------------------------------------------------------------
    async def start(self) -> None:
        rows = await self.outbox.load()
        # Synchronously from here to the subscription: no event can fall in between.
        self.transactions.restore(rows)
        self._unsubscribe = self.door.subscribe(self.transactions.event)
        self._tasks = [
            asyncio.create_task(self._run(), name="ocpp uplink"),
            asyncio.create_task(self._sampler(), name="ocpp meter values"),
            asyncio.create_task(
                self.outbox.run_writer(self._stop, self.door.between_ticks),
                name="ocpp outbox writer",
            ),
        ]
        log.info("uplink: OCPP 1.6J to %s as %s", self.url, self.settings.charge_point_id)

    async def flushed(self) -> None:
        """Return once every outbox write so far is in the database."""
        await self.outbox.flushed()

    async def close(self) -> None:
        """Stop sending; what is still to send stays in the database for the next run."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._stop.set()
        for task in self._tasks[:2]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, CLOSE_TIMEOUT_S)
        if self._connection is not None:
            self._connection.close()
        self.connected = False

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        """Run work as a task that is kept, and whose failure is logged."""
        task = asyncio.ensure_future(work)
        self._spawned.add(task)

        def finished(done: asyncio.Task[Any]) -> None:
            self._spawned.discard(done)
            if not done.cancelled() and done.exception() is not None:
                log.error("uplink: %s failed", name, exc_info=done.exception())

        task.add_done_callback(finished)

    # -- connecting ----------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._connection = await connect(
                    self.url,
                    self.settings.charge_point_id,
                    self.settings.password,
                    self.settings.cafile,
                )
            except ConnectionClosed as exc:
                failures += 1
                if failures & (failures - 1) == 0:  # 1, 2, 4, 8...: a dead CSMS is not a flood
                    log.warning(
                        "uplink: cannot connect to %s (%d tries): %s", self.url, failures, exc
                    )
                await self._pause(failures)
                continue
            booted_before = self.boots
            try:
                await self._connected(self._connection)
            except (ConnectionClosed, TimeoutError, OCPPError, UnknownCallErrorCodeError) as exc:
                log.warning("uplink: link to %s lost: %s", self.url, exc or type(exc).__name__)
            except Exception:  # task boundary: log, and connect again
                log.exception("uplink: the link to %s failed", self.url)
            finally:
                self.connected = False
                self._connection.close()
                self._connection = None
                self.outbox.drop_transient()
            failures = 1 if self.boots > booted_before else failures + 1
            await self._pause(failures)

    async def _pause(self, failures: int) -> None:
        """Exponential backoff with jitter: a fleet of stations does not reconnect in step."""
        delay_s = min(self.settings.reconnect_max_s, BACKOFF_FIRST_S * 2 ** min(failures - 1, 16))
        delay_s *= random.uniform(0.5, 1.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay_s)

    async def _connected(self, connection: Connection) -> None:
        cp = StationChargePoint(self, connection, self.response_timeout_s)
        reader = asyncio.ensure_future(cp.serve())
        sender = asyncio.ensure_future(self._session(cp))
        try:
            done, _ = await asyncio.wait([reader, sender], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, sender):
                task.cancel()
            for task in (reader, sender):
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task
        for task in done:
            task.result()  # the reason the link ended

    # -- sending -------------------------------------------------------------------------------
    def boot_payload(self) -> dict[str, Any]:
        return {
            "charge_point_vendor": "charge-station",
            "charge_point_model": "charge-station",
            "charge_point_serial_number": self.settings.charge_point_id[:25],
            "firmware_version": release()[:50],
        }

    async def _boot(self, cp: StationChargePoint) -> None:
        """BootNotification until Accepted; Pending and Rejected try again after the central
        system's interval (OCPP 1.6 §4.2), answering its calls meanwhile."""
        while True:
            result = await cp.call(call.BootNotification(**self.boot_payload()), suppress=False)
            interval_s = int(result.interval)
            if result.status == "Accepted":
                if interval_s > 0:
                    self.heartbeat_s = interval_s
                return
            wait_s = interval_s if interval_s > 0 else self.settings.heartbeat_s
            log.info("uplink: boot %s by the central system; again in %d s", result.status, wait_s)
            await asyncio.sleep(wait_s)

    async def _session(self, cp: StationChargePoint) -> None:
        await self._boot(cp)
        self.connected = True
        self.boots += 1
        log.info("uplink: booted at %s; %d messages waiting", self.url, len(self.outbox))
        # After the backlog (older, first in the queue): every connector's status now.
        self.transactions.tell_all()
        while True:
            message = await self.outbox.head(self.heartbeat_s)
            if message is None:
                await cp.call(call.Heartbeat(), suppress=False)
                continue
            await self._deliver(cp, message)

    async def _deliver(self, cp: StationChargePoint, message: Outgoing) -> None:
        await self.door.between_ticks()  # the control loop first: the CSMS can wait a tick
        payload: dict[str, Any] | None = message.payload
        if message.tx is not None:
            payload = self.transactions.peer_payload(message.action, message.payload, message.tx)
            if payload is None:
                log.error(
                    "uplink: %s of transaction %d dropped: the central system never accepted "
                    "its start",
                    message.action,
                    message.tx,
                )
                self._given_up(message)
                return
        request = getattr(call, message.action)(**payload)
        try:
            # The station's own messages are built to the schemas (the tests' central system
            # validates every one): checking them again here would cost the event loop two
            # thread hops a message, which 300 MeterValues a second make felt in its ticks.
            result = await cp.call(request, suppress=False, skip_schema_validation=True)
        except (OCPPError, UnknownCallErrorCodeError) as error:
            message.attempts += 1
            if message.attempts < self.attempts:
                log.warning("uplink: %s answered with %s; sending it again", message.action, error)
                await asyncio.sleep(RETRY_S)
                return
            log.error(
                "uplink: %s given up after %d errors: %s", message.action, message.attempts, error
            )
            self._given_up(message)
            return
        if message.action == "StartTransaction":
            assert message.tx is not None
            self.transactions.started(message.tx, int(result.transaction_id))
            status = (result.id_tag_info or {}).get("status")
            if status != "Accepted":
                # The station authorises its drivers itself (StopTransactionOnInvalidId false).
                log.info("uplink: the central system says %s of transaction %d", status, message.tx)
        elif message.action == "StopTransaction":
            assert message.tx is not None
            self.transactions.forget(message.tx)
        elif message.action == "BootNotification" and int(result.interval) > 0:
            self.heartbeat_s = int(result.interval)
        self.outbox.done(message)
        self.delivered += 1

    def _given_up(self, message: Outgoing) -> None:
        self.outbox.done(message)
        if message.action == "StopTransaction" and message.tx is not None:
            self.transactions.forget(message.tx)

    async def _sampler(self) -> None:
        """MeterValues of every running transaction each meter_values_s of station time."""
        while not self._stop.is_set():
            every_s = self.meter_values_s or 60
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), every_s / self.scale)
            if self.meter_values_s and not self._stop.is_set():
                await self.door.between_ticks()
                try:
                    self.transactions.sample()
                except Exception:  # task boundary: log, and sample again next time
                    log.exception("uplink: meter values failed")

    # -- what the central system asks ----------------------------------------------------------
    async def remote_stop(self, pile_id: int, car: CarId, csms_id: int) -> None:
        """RemoteStopTransaction: the session at the pile ends with a bill, as an operator's
        stop (/admin/piles/stop)."""
        try:
            stopped, _ = await self.door.stop_session(pile_id)
        except Refused as exc:
            self.transactions.stop_reasons.pop((pile_id, car), None)
            log.info("uplink: RemoteStopTransaction %d: %s", csms_id, exc.reason)
            return
        names = self.door.pile_names()
        log.info("pile %s: session stopped by the central system", names.get(pile_id, pile_id))
        self.audit(
            "stop_session",
            {
                "stationId": pile_id,
                "name": names.get(pile_id),
                "car": stopped,
                "transactionId": csms_id,
            },
        )

    def audit(self, action: str, detail: dict[str, Any]) -> None:
        """The audit log, as for the operator API's actions: by the central system (no user)."""

        async def write() -> None:
            try:
                entry = {**detail, "by": "ocpp"}
                await self.storage.run(lambda s: audit_log.audit(s, None, action, entry))
            except StorageError as exc:
                log.error("uplink: audit entry %s not written: %s", action, exc)

        self.spawn(write(), "audit")
