"""What the central system may ask of the station: the operations, declared in one table of
handlers (the library's `@on`), each answered honestly.

- RemoteStopTransaction: the session stops and is billed as an operator's stop (the door's
  `stop_session`, as /admin/piles/stop), with StopTransaction reason Remote.
- ChangeAvailability: a pile (connector 0: every pile) is switched off or on exactly as the
  operator API does, the rules' consequences included (RULES §4): a charging car is stopped and
  billed at once, so the answer is Accepted, never Scheduled; a faulted pile cannot be switched
  on (Rejected) until it is fixed.
- RemoteStartTransaction: Rejected. The station's queue and dispatch decide which pile a car
  gets (RULES §1-2), and a request needs a mode and an amount that the call does not carry;
  drivers ask through the station's app.
- Reset: Rejected (the station is restarted by its service manager, not remotely).
- UnlockConnector: NotSupported (the piles' connectors have no lock the station drives).
- GetConfiguration / ChangeConfiguration: the keys in CONFIGURATION; HeartbeatInterval and
  MeterValueSampleInterval may be changed (until the next restart), the others are read-only.
- TriggerMessage: BootNotification, Heartbeat, StatusNotification and MeterValues; the firmware
  and diagnostics notifications are NotImplemented.
Anything else is answered by the library: NotImplemented for an OCPP 1.6 action without a
handler, NotSupported for an unknown one; a malformed call gets the CallError its fault calls
for, and never ends the connection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

from ocpp.exceptions import OCPPError
from ocpp.messages import CallError, unpack
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action

from controller.door import Door, Refused
from controller.values import PileState
from server.ocpp.config import OcppSettings
from server.ocpp.connection import ConnectionClosed
from server.ocpp.outbox import Outbox
from server.ocpp.transactions import Transactions

log = logging.getLogger(__name__)

# OCPP 1.6's names for two CallError codes the library spells as OCPP 2.0 does (1.6 errata 5.1-5.2).
ERROR_CODES_16 = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}

SAMPLED = "Energy.Active.Import.Register,Power.Active.Import"
# key -> whether the central system may change it
CONFIGURATION = {
    "HeartbeatInterval": True,
    "MeterValueSampleInterval": True,
    "NumberOfConnectors": False,
    "MeterValuesSampledData": False,
    "StopTxnSampledData": False,
    "StopTransactionOnInvalidId": False,
    "AuthorizeRemoteTxRequests": False,
    "TransactionMessageAttempts": False,
    "SupportedFeatureProfiles": False,
}


def _call_id(raw: str) -> str | None:
    """The unique id of something that looks like a Call, to answer even a broken one."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(message, list) or len(message) < 2 or message[0] != 2:
        return None
    unique_id = message[1]
    return unique_id if isinstance(unique_id, str) and 0 < len(unique_id) <= 36 else None


class UplinkSide(Protocol):
    """What the charge point reads and asks of the uplink that owns it (server.ocpp.uplink)."""

    settings: OcppSettings
    door: Door
    outbox: Outbox
    transactions: Transactions
    heartbeat_s: int
    meter_values_s: int
    attempts: int

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None: ...

    async def remote_stop(self, pile_id: int, car: str, csms_id: int) -> None: ...

    def audit(self, action: str, detail: dict[str, Any]) -> None: ...

    def boot_payload(self) -> dict[str, Any]: ...


class StationChargePoint(ChargePoint):
    def __init__(self, uplink: UplinkSide, connection: Any, response_timeout_s: float) -> None:
        super().__init__(
            uplink.settings.charge_point_id,
            connection,
            response_timeout=response_timeout_s,
            logger=logging.getLogger("server.ocpp.wire"),
        )
        self.uplink = uplink

    # -- the connection ------------------------------------------------------------------------
    async def serve(self) -> None:
        """Read and route messages until the connection closes (ConnectionClosed)."""
        while True:
            raw = await self._connection.recv()
            await self.uplink.door.between_ticks()
            try:
                await self.route_message(raw)
            except ConnectionClosed:
                raise
            except Exception:  # task boundary: one bad message must not end the link
                log.exception("uplink: a message from the central system failed: %.200s", raw)
                unique_id = _call_id(raw)
                if unique_id is not None:
                    error = CallError(unique_id, "InternalError", "the station failed", {})
                    await self._send(error.to_json())

    async def route_message(self, raw_msg: str) -> None:
        try:
            unpack(raw_msg)
        except OCPPError as error:
            # The library logs and drops a message it cannot unpack; a Call with an id is owed
            # an answer (OCPP-J §4.2.3).
            log.warning("uplink: malformed message from the central system: %.200s", raw_msg)
            unique_id = _call_id(raw_msg)
            if unique_id is not None:
                reply = CallError(unique_id, error.code, error.description, {})
                await self._send(reply.to_json())
            return
        await super().route_message(raw_msg)

    async def _send(self, message: str) -> None:
        if message.startswith("[4"):
            parsed = json.loads(message)
            if parsed[2] in ERROR_CODES_16:
                parsed[2] = ERROR_CODES_16[parsed[2]]
                # Details may hold the offending message as an object: text is enough.
                parsed[4] = {}
                message = json.dumps(parsed)
        await super()._send(message)

    # -- the operations --------------------------------------------------------------------------
    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(
        self, id_tag: str, **_: Any
    ) -> call_result.RemoteStartTransaction:
        log.info(
            "uplink: RemoteStartTransaction for idTag %s rejected: drivers ask at the station",
            id_tag,
        )
        return call_result.RemoteStartTransaction(status="Rejected")

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(
        self, transaction_id: int, **_: Any
    ) -> call_result.RemoteStopTransaction:
        found = self.uplink.transactions.pile_of(transaction_id)
        if found is None:
            return call_result.RemoteStopTransaction(status="Rejected")
        pile_id, car = found
        self.uplink.transactions.stop_reasons[(pile_id, car)] = "Remote"
        self.uplink.spawn(self.uplink.remote_stop(pile_id, car, transaction_id), "remote stop")
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.change_availability)
    def on_change_availability(
        self, connector_id: int, type: str, **_: Any
    ) -> call_result.ChangeAvailability:
        door = self.uplink.door
        ids = door.pile_ids()
        if connector_id != 0 and connector_id not in ids:
            return call_result.ChangeAvailability(status="Rejected")
        off = type == "Inoperative"
        accepted = True
        for pile_id in ids if connector_id == 0 else [connector_id]:
            view = door.pile(pile_id)
            assert view is not None
            want = PileState.OFF if off else PileState.WORKING
            if view.state is want:
                continue
            try:
                if off:
                    door.switch_off(pile_id)
                else:
                    door.switch_on(pile_id)
            except Refused as exc:
                log.info("uplink: ChangeAvailability of pile %s refused: %s", view.name, exc.reason)
                accepted = False
                continue
            log.info(
                "pile %s: switched %s by the central system", view.name, "off" if off else "on"
            )
            self.uplink.audit(
                "pile_off" if off else "pile_on", {"stationId": pile_id, "name": view.name}
            )
        return call_result.ChangeAvailability(status="Accepted" if accepted else "Rejected")

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        log.info(
            "uplink: Reset (%s) rejected: the station is restarted by its service manager", type
        )
        return call_result.Reset(status="Rejected")

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        return call_result.UnlockConnector(status="NotSupported")

    @on(Action.get_configuration)
    def on_get_configuration(
        self, key: list[str] | None = None, **_: Any
    ) -> call_result.GetConfiguration:
        values = self._configuration()
        wanted = key or list(CONFIGURATION)
        known = [
            {"key": k, "readonly": not CONFIGURATION[k], "value": values[k]}
            for k in wanted
            if k in CONFIGURATION
        ]
        unknown = [k for k in wanted if k not in CONFIGURATION]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    def _configuration(self) -> dict[str, str]:
        uplink = self.uplink
        return {
            "HeartbeatInterval": str(uplink.heartbeat_s),
            "MeterValueSampleInterval": str(uplink.meter_values_s),
            "NumberOfConnectors": str(len(uplink.door.pile_ids())),
            "MeterValuesSampledData": SAMPLED,
            "StopTxnSampledData": "Energy.Active.Import.Register",
            "StopTransactionOnInvalidId": "false",
            "AuthorizeRemoteTxRequests": "false",
            "TransactionMessageAttempts": str(uplink.attempts),
            "SupportedFeatureProfiles": "Core,RemoteTrigger",
        }

    @on(Action.change_configuration)
    def on_change_configuration(
        self, key: str, value: str, **_: Any
    ) -> call_result.ChangeConfiguration:
        if key not in CONFIGURATION:
            return call_result.ChangeConfiguration(status="NotSupported")
        if not CONFIGURATION[key]:
            return call_result.ChangeConfiguration(status="Rejected")
        try:
            seconds = int(value)
        except ValueError:
            return call_result.ChangeConfiguration(status="Rejected")
        if key == "HeartbeatInterval" and 1 <= seconds <= 86_400:
            self.uplink.heartbeat_s = seconds
        elif key == "MeterValueSampleInterval" and 0 <= seconds <= 86_400:
            self.uplink.meter_values_s = seconds
        else:
            return call_result.ChangeConfiguration(status="Rejected")
        log.info("uplink: %s set to %s s by the central system", key, seconds)
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        if requested_message not in (
            "BootNotification",
            "Heartbeat",
            "StatusNotification",
            "MeterValues",
        ):
            return call_result.TriggerMessage(status="NotImplemented")
        if (
            connector_id is not None
            and connector_id != 0
            and connector_id not in self.uplink.door.pile_ids()
        ):
            return call_result.TriggerMessage(status="Rejected")
        return call_result.TriggerMessage(status="Accepted")

    @after(Action.trigger_message)
    def after_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> None:
        """The requested message goes out after the answer (OCPP 1.6 §5.17)."""
        uplink = self.uplink
        transactions = uplink.transactions
        piles = uplink.door.pile_ids()
        if connector_id is not None and connector_id != 0 and connector_id not in piles:
            return
        if requested_message == "BootNotification":
            uplink.outbox.put("BootNotification", uplink.boot_payload())
        elif requested_message == "Heartbeat":
            uplink.outbox.put("Heartbeat", {})
        elif requested_message == "StatusNotification":
            if connector_id is None:
                transactions.tell_all()
            elif connector_id == 0:
                transactions.tell_station()
            else:
                transactions.tell_status(connector_id, again=True)
        elif requested_message == "MeterValues":
            transactions.sample(piles if not connector_id else [connector_id])
