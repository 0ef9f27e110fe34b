"""The station's door events as OCPP 1.6 messages: each pile's connector status, and each
charging session as a transaction (StartTransaction, MeterValues, StopTransaction).

A session is a transaction: it starts when the rules start the car's session at its pile
(meterStart: the meter count the session's energy is counted from) and stops when the session is
billed (meterStop = meterStart + the bill's Wh, so the central system's figure is the bill's).
Transactions have the station's own numbers (`tx`); the central system's transactionId comes
with its answer to StartTransaction and is put into the later messages when they are sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from controller.billing import EndReason
from controller.door import Door, Progress, StreamEvent
from controller.events import Called, ChargingStarted, Displaced, Done, PileChanged, SessionEnded
from controller.values import CarId, PileState, stored_car
from server.ocpp.outbox import Outbox
from server.ocpp.outbox_store import Begin, Forget, PeerId, Stopped, TransactionRow

log = logging.getLogger(__name__)

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
ID_TAG_MAX = 20  # OCPP 1.6 IdToken: CiString20


def timestamp(moment: datetime | None = None) -> str:
    """OCPP's dateTime: UTC, with milliseconds and a Z."""
    moment = moment or datetime.now(UTC)
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def id_tag(car: CarId) -> str:
    """The driver's idTag: the station's user id (cars are user ids), at most 20 characters.
    No name leaves the station; RemoteStopTransaction works by transactionId."""
    return str(car)[:ID_TAG_MAX]


@dataclass(slots=True)
class Tx:
    tx: int
    pile_id: int
    car: CarId
    meter_start_wh: int
    csms_id: int | None = None
    stopped: bool = False


class Status(NamedTuple):
    """A connector's StatusNotification, less its timestamp."""

    status: str
    error_code: str = "NoError"
    info: str | None = None
    vendor_error_code: str | None = None


class Transactions:
    """The door's subscriber: events in, messages into the outbox."""

    def __init__(self, door: Door, outbox: Outbox) -> None:
        self.door = door
        self.outbox = outbox
        self.open: dict[int, Tx] = {}  # pile id -> its running transaction
        self.known: dict[int, Tx] = {}  # tx -> a transaction messages still refer to
        self._next_tx = 1
        # (pile id, car) -> the stop reason of a stop the uplink itself asked for (Remote).
        self.stop_reasons: dict[tuple[int, str], str] = {}
        self._car_pile: dict[CarId, int] = {}  # cars called to a pile queue
        self.told: dict[int, Status] = {}  # the last status queued per connector
        # Whether statuses go out now (the uplink is booted); off, they are told after boot.
        self.online: Callable[[], bool] = lambda: False

    # -- restart -------------------------------------------------------------------------------
    def restore(self, rows: list[TransactionRow]) -> None:
        """Carry on from the transactions a previous run left. A session the restored station
        still runs at the same pile for the same car is the same transaction; a transaction
        whose session the station no longer knows (its state was saved before the session
        began) stops as it began, with no energy billed; a session with no transaction (the
        uplink was off) starts one."""
        waiting: dict[int, Tx] = {}
        for row in rows:
            tx = Tx(
                row.tx,
                row.pile_id,
                stored_car(row.car),
                row.meter_start_wh,
                row.csms_id,
                row.stopped,
            )
            self.known[tx.tx] = tx
            self._next_tx = max(self._next_tx, tx.tx + 1)
            if not tx.stopped:
                waiting[tx.pile_id] = tx
        for pile_id in self.door.pile_ids():
            car = self._charging(pile_id)
            tx = waiting.pop(pile_id, None)
            if tx is not None and tx.car == car:
                self.open[pile_id] = tx
                continue
            if tx is not None:
                self._stop(tx, tx.meter_start_wh, "PowerLoss")
            if car is not None:
                self._start(pile_id, car)
        for tx in waiting.values():  # a pile no longer configured
            self._stop(tx, tx.meter_start_wh, "PowerLoss")
        for pile_id, car in self._cars_at_piles().items():
            self._car_pile[car] = pile_id

    # -- the stream ----------------------------------------------------------------------------
    def event(self, seq: int, event: StreamEvent) -> None:
        if isinstance(event, Progress):
            return  # meter values have their own cadence (sample)
        touched: int | None = None
        if isinstance(event, Called):
            self._car_pile[event.car] = event.pile_id
            touched = event.pile_id
        elif isinstance(event, ChargingStarted):
            self._start(event.pile_id, event.car)
            touched = event.pile_id
        elif isinstance(event, SessionEnded):
            self._ended(event)
        elif isinstance(event, Done):
            touched = self._car_pile.pop(event.car, None)
        elif isinstance(event, Displaced):
            self._car_pile.pop(event.car, None)
            touched = event.pile_id
        elif isinstance(event, PileChanged):
            touched = event.pile_id
        if touched is not None:
            self.tell_status(touched)

    def _charging(self, pile_id: int) -> str | None:
        view = self.door.pile(pile_id)
        if view is None or not view.queue or view.queue[0].area != "charging":
            return None
        return view.queue[0].car

    def _cars_at_piles(self) -> dict[int, str]:
        return {p.id: req.car for p in self.door.piles() for req in p.queue}

    def _start(self, pile_id: int, car: CarId) -> None:
        meter = self.door.meter(pile_id)
        start_wh = None
        if meter is not None:
            start_wh = (
                meter.session_start_wh if meter.session_start_wh is not None else meter.meter_wh
            )
        if start_wh is None:
            # The session began before the pile's first good reading: its energy is still
            # counted from the first one, which this start does not know yet.
            log.warning("uplink: pile %s: meter not read yet; meterStart 0", pile_id)
            start_wh = 0
        tx = Tx(self._next_tx, pile_id, car, start_wh)
        self._next_tx += 1
        self.open[pile_id] = tx
        self.known[tx.tx] = tx
        self.outbox.record(Begin(tx.tx, pile_id, car, start_wh))
        payload = {
            "connector_id": pile_id,
            "id_tag": id_tag(car),
            "meter_start": start_wh,
            "timestamp": timestamp(),
        }
        self.outbox.put("StartTransaction", payload, tx.tx)

    def _ended(self, event: SessionEnded) -> None:
        bill = event.bill
        tx = self.open.get(bill.pile_id)
        if tx is None or tx.car != bill.car:
            # Energy a silent pile delivered after its session's bill (RULES §4): billed by the
            # station, but its transaction had stopped already.
            log.info(
                "uplink: bill %s of pile %s has no open transaction; not sent",
                bill.bill_id,
                bill.pile_id,
            )
            return
        del self.open[bill.pile_id]
        reason = self.stop_reasons.pop((bill.pile_id, bill.car), None) or self._reason(
            bill.reason, bill.pile_id
        )
        self._stop(tx, tx.meter_start_wh + self.door.bill_wh(bill), reason)
        if bill.reason is not EndReason.FAULT:  # a fault's status follows: Faulted
            self._tell(bill.pile_id, Status("Finishing"))

    def _reason(self, ended: EndReason, pile_id: int) -> str:
        """StopTransaction's reason for how the rules ended the session."""
        meter = self.door.meter(pile_id)
        if ended is EndReason.COMPLETED:
            return "Local"  # the car received its amount
        if ended is EndReason.CANCELLED:
            # The car left mid-session, or the driver (or the operator) cancelled.
            left = meter is not None and meter.vehicle == "no_vehicle"
            return "EVDisconnected" if left else "Other"
        if ended is EndReason.FAULT:
            # A pile that stopped answering (its power or its link lost); a fault it reports,
            # or an operator's switch-off.
            return "PowerLoss" if meter is not None and not meter.answering else "Other"
        return "Reboot"  # the station stops safely (SIGTERM), and is started again

    def _stop(self, tx: Tx, meter_stop_wh: int, reason: str) -> None:
        tx.stopped = True
        self.outbox.record(Stopped(tx.tx))
        at = timestamp()
        payload = {
            "meter_stop": meter_stop_wh,
            "timestamp": at,
            "transaction_id": tx.tx,  # the station's number: the central system's when sent
            "reason": reason,
            "id_tag": id_tag(tx.car),
            "transaction_data": [
                {
                    "timestamp": at,
                    "sampled_value": [
                        {
                            "value": str(meter_stop_wh),
                            "context": "Transaction.End",
                            "measurand": ENERGY,
                            "unit": "Wh",
                        }
                    ],
                }
            ],
        }
        self.outbox.put("StopTransaction", payload, tx.tx)

    # -- answers from the central system ---------------------------------------------------------
    def started(self, tx_no: int, csms_id: int) -> None:
        tx = self.known.get(tx_no)
        if tx is not None:
            tx.csms_id = csms_id
            self.outbox.record(PeerId(tx_no, csms_id))

    def forget(self, tx_no: int) -> None:
        """Its StopTransaction was answered: nothing refers to the transaction any more."""
        if self.known.pop(tx_no, None) is not None:
            self.outbox.record(Forget(tx_no))

    def peer_payload(
        self, action: str, payload: dict[str, Any], tx_no: int
    ) -> dict[str, Any] | None:
        """The payload as sent: the station's transaction number replaced by the central
        system's id; None if the central system never gave one (its start was refused)."""
        if action == "StartTransaction":
            return payload
        tx = self.known.get(tx_no)
        if tx is None or tx.csms_id is None:
            return None
        return {**payload, "transaction_id": tx.csms_id}

    def pile_of(self, csms_id: int) -> tuple[int, str] | None:
        """(pile, car) of the running transaction the central system calls csms_id."""
        for pile_id, tx in self.open.items():
            if tx.csms_id == csms_id:
                return pile_id, tx.car
        return None

    # -- meter values ------------------------------------------------------------------------------
    def sample(self, pile_ids: list[int] | None = None) -> None:
        """MeterValues of every running transaction (or of these piles): the meter count and
        the power at the control loop's last reading; a pile without a transaction gets one
        without transactionId (a TriggerMessage)."""
        at = timestamp()
        for pile_id in self.door.pile_ids() if pile_ids is None else pile_ids:
            tx = self.open.get(pile_id)
            if pile_ids is None and tx is None:
                continue
            meter = self.door.meter(pile_id)
            if meter is None or meter.meter_wh is None:
                continue
            sampled = [
                {
                    "value": str(meter.meter_wh),
                    "context": "Sample.Periodic",
                    "measurand": ENERGY,
                    "unit": "Wh",
                }
            ]
            if meter.power_w is not None:
                sampled.append(
                    {
                        "value": str(meter.power_w),
                        "context": "Sample.Periodic",
                        "measurand": POWER,
                        "unit": "W",
                    }
                )
            payload: dict[str, Any] = {
                "connector_id": pile_id,
                "meter_value": [{"timestamp": at, "sampled_value": sampled}],
            }
            if tx is not None:
                payload["transaction_id"] = tx.tx
                self.outbox.put("MeterValues", payload, tx.tx)
            elif self.online():
                self.outbox.put("MeterValues", payload)

    # -- statuses ----------------------------------------------------------------------------------
    def status_of(self, pile_id: int) -> Status:
        view = self.door.pile(pile_id)
        assert view is not None
        if view.state is PileState.OFF:
            return Status("Unavailable")
        if view.state is PileState.FAULT:
            meter = self.door.meter(pile_id)
            if meter is not None and not meter.answering:
                return Status("Faulted", "OtherError", "no answer from the pile")
            code = 0 if meter is None else meter.fault_code
            vendor = str(code) if code else None
            return Status("Faulted", "OtherError", "the pile reports a fault", vendor)
        if not view.queue:
            return Status("Available")
        return Status("Charging" if view.queue[0].area == "charging" else "Preparing")

    def tell_status(self, pile_id: int, *, again: bool = False) -> None:
        self._tell(pile_id, self.status_of(pile_id), again=again)

    def tell_all(self) -> None:
        """Every connector's status, as after a boot (connector 0: the station itself)."""
        self.told.clear()
        self.tell_station()
        for pile_id in self.door.pile_ids():
            self.tell_status(pile_id, again=True)

    def tell_station(self) -> None:
        """Connector 0, the station itself: available while it runs."""
        self._tell(0, Status("Available"), again=True)

    def _tell(self, connector: int, status: Status, *, again: bool = False) -> None:
        if not self.online():
            self.told.pop(connector, None)  # told afresh after the next boot
            return
        if not again and self.told.get(connector) == status:
            return
        self.told[connector] = status
        payload = {
            "connector_id": connector,
            "error_code": status.error_code,
            "status": status.status,
            "timestamp": timestamp(),
            "info": status.info,
            "vendor_error_code": status.vendor_error_code,
        }
        self.outbox.put("StatusNotification", {k: v for k, v in payload.items() if v is not None})
