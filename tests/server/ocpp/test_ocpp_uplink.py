"""The OCPP 1.6J uplink against a local central system (the ocpp library's central-system side
on loopback): boot, connector statuses, whole sessions as transactions with meter values, and
every way a session ends (completed, fault, cancel, RemoteStopTransaction, ChangeAvailability).

The station is the real Service in process on simulated piles at SCALE times real time; drivers
use its WebSocket API; the bills are read from its database, exact.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from ocpp.v16 import call

from drivers.errors import LinkTimeout
from server.accounts import audit_log
from server.ocpp.uplink import release
from tests.kits.ocpp_csms import Csms
from tests.kits.ocpp_station import (
    CP_ID,
    METER_VALUES_S,
    LiveStation,
    live_station,
    station_config,
)

STEP_S = 10.0  # real seconds any one step may take

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def csms() -> AsyncIterator[Csms]:
    central = Csms()
    await central.start()
    yield central
    await central.stop()


@pytest_asyncio.fixture
async def station(csms: Csms, tmp_path: Path) -> AsyncIterator[LiveStation]:
    async with live_station(station_config(csms.url), tmp_path / "state") as live:
        await csms.wait(
            lambda: {p["connector_id"] for p in csms.of("StatusNotification")} == {0, 1, 2, 3},
            STEP_S,
            "the boot's statuses",
        )
        yield live


def energy_values(payload: dict[str, Any], measurand: str) -> list[int]:
    return [
        int(sample["value"])
        for value in payload["meter_value"]
        for sample in value["sampled_value"]
        if sample.get("measurand") == measurand
    ]


async def stopped(csms: Csms, count: int) -> list[dict[str, Any]]:
    stops = await csms.wait(
        lambda: len(csms.of("StopTransaction")) >= count and csms.of("StopTransaction"),
        STEP_S,
        f"{count} StopTransaction",
    )
    return list(stops)


async def bill_count(station: LiveStation, count: int) -> None:
    deadline = time.monotonic() + STEP_S
    while len(station.bills()) < count:
        assert time.monotonic() < deadline, f"{count} bills"
        await asyncio.sleep(0.02)


async def test_a_boot_tells_every_connector_and_a_session_is_one_transaction(
    csms: Csms, station: LiveStation
) -> None:
    boot = csms.of("BootNotification")[0]
    assert boot["charge_point_vendor"] == "charge-station"
    assert boot["firmware_version"] == release()
    # After the boot, connector 0 (the station) and every pile's connector, numbered by its id.
    first = {p["connector_id"]: p["status"] for p in csms.of("StatusNotification")}
    assert first == {0: "Available", 1: "Available", 2: "Available", 3: "Available"}

    car = await station.car("ada")
    await car.open(station.base, "fast", 1.0)
    await car.wait_type("done", STEP_S)
    (stop,) = await stopped(csms, 1)
    (start,) = csms.of("StartTransaction")
    # The first fast pile (A, connector 1) finishes a lone car soonest (RULES §2: ties go first).
    assert start["connector_id"] == 1
    assert start["id_tag"] == str(car.user_id)
    tx_id = max(csms.started)  # what the central system answered
    assert csms.started[tx_id] == start
    assert stop["transaction_id"] == tx_id
    assert stop["reason"] == "Local"  # the car received its amount
    # The bill, exact from the database: 1 kWh asked at a pile that stops at its limit.
    (billed_wh,) = station.bill_wh(car)
    assert billed_wh == 1 * 1000
    assert stop["meter_stop"] - start["meter_start"] == billed_wh
    # MeterValues every METER_VALUES_S station seconds of the transaction: 1 kWh at 30 kW takes
    # 1000 / 30000 * 3600 = 120 station s, so about 120 / 20 = 6 of them; the meter only climbs,
    # inside [meterStart, meterStop], and the power is the pile's 30 kW while it charges.
    samples = [p for p in csms.of("MeterValues") if p.get("transaction_id") == tx_id]
    assert len(samples) >= 120 // METER_VALUES_S // 2
    energy = [e for p in samples for e in energy_values(p, "Energy.Active.Import.Register")]
    assert energy == sorted(energy)
    assert start["meter_start"] <= energy[0] and energy[-1] <= stop["meter_stop"]
    assert energy[-1] > energy[0]
    assert 30_000 in [w for p in samples for w in energy_values(p, "Power.Active.Import")]
    # Connector 1: called (Preparing), charging, finishing, then free again.
    await csms.wait(lambda: len(csms.statuses(1)) >= 5, STEP_S, "connector 1 free again")
    assert csms.statuses(1) == ["Available", "Preparing", "Charging", "Finishing", "Available"]
    # Order on the wire: the start before its meter values, they before the stop.
    order = [r.action for r in csms.transaction_calls()]
    assert order == ["StartTransaction"] + ["MeterValues"] * len(samples) + ["StopTransaction"]


async def test_boot_pending_is_tried_again_after_its_interval_and_heartbeats_follow_it(
    tmp_path: Path,
) -> None:
    csms = Csms(interval_s=1)
    csms.boot_statuses = ["Pending"]
    await csms.start()
    try:
        async with live_station(station_config(csms.url), tmp_path / "state"):
            await csms.wait(lambda: csms.of("Heartbeat"), STEP_S, "a heartbeat")
        actions = [r.action for r in csms.received]
        # Pending: nothing but BootNotification until Accepted (OCPP 1.6 §4.2), after the
        # interval the central system gave (1 s).
        assert actions[:2] == ["BootNotification", "BootNotification"]
        boots = [r.at_s for r in csms.received if r.action == "BootNotification"]
        assert boots[1] - boots[0] >= 0.9
        assert actions[2] == "StatusNotification"
        # Heartbeats at the central system's interval (1 s), not heartbeat_s (60 s).
        beat = next(r.at_s for r in csms.received if r.action == "Heartbeat")
        last_before = max(r.at_s for r in csms.received if r.at_s < beat)
        assert 0.9 <= beat - last_before < 5
    finally:
        await csms.stop()


async def test_a_fault_stops_the_transaction_and_the_car_goes_on_at_another_pile(
    csms: Csms, station: LiveStation, monkeypatch: pytest.MonkeyPatch
) -> None:
    car = await station.car("bo")
    await car.open(station.base, "fast", 2.0)
    await car.wait_type("charging", STEP_S)
    await csms.wait(lambda: csms.started, STEP_S, "the start")
    pile_a = station.service.loop.runtimes[1].device
    await asyncio.sleep(0.3)  # some energy: 0.3 s at 30 kW x 120 = 300 Wh
    pile_a.model.set_fault(pile_a.model.now_tick, 7)  # type: ignore[attr-defined]
    (stop_a,) = await stopped(csms, 1)
    assert stop_a["reason"] == "Other"  # a fault the pile itself reports
    await csms.wait(lambda: csms.statuses(1)[-1] == "Faulted", STEP_S, "A faulted")
    faulted = [p for p in csms.of("StatusNotification") if p["status"] == "Faulted"]
    assert [(p["connector_id"], p["error_code"], p.get("vendor_error_code")) for p in faulted] == [
        (1, "OtherError", "7")
    ]
    # RULES §4: billed for what it received, and its remaining amount goes on at B (connector 2).
    starts = await csms.wait(lambda: len(csms.of("StartTransaction")) == 2, STEP_S, "B's start")
    start_a, start_b = csms.of("StartTransaction")
    assert (start_a["connector_id"], start_b["connector_id"]) == (1, 2)
    assert starts and start_b["id_tag"] == str(car.user_id)
    await car.wait_type("done", STEP_S)
    stops = await stopped(csms, 2)
    await bill_count(station, 2)
    first_wh, second_wh = station.bill_wh(car)
    assert stop_a["meter_stop"] - start_a["meter_start"] == first_wh > 0
    assert stops[1]["meter_stop"] - start_b["meter_start"] == second_wh
    assert first_wh + second_wh == 2 * 1000  # the two bills together: the 2 kWh asked

    # A pile that stops answering (its link or power lost): PowerLoss, Faulted "no answer".
    slow = await station.car("cy")
    await slow.open(station.base, "common", 1.0)
    await slow.wait_type("charging", STEP_S)
    await csms.wait(lambda: len(csms.of("StartTransaction")) == 3, STEP_S, "C's start")
    await asyncio.sleep(0.2)
    pile_c = station.service.loop.runtimes[3].device

    async def silent() -> Any:
        raise LinkTimeout("pile C: no answer")

    monkeypatch.setattr(pile_c, "read_status", silent)
    (stop_c,) = (await stopped(csms, 3))[2:]
    assert stop_c["reason"] == "PowerLoss"
    await csms.wait(lambda: csms.statuses(3)[-1] == "Faulted", STEP_S, "C faulted")
    assert [p.get("info") for p in csms.of("StatusNotification") if p["connector_id"] == 3][-1] == (
        "no answer from the pile"
    )
    await bill_count(station, 3)
    (c_wh,) = station.bill_wh(slow)
    start_c = csms.of("StartTransaction")[2]
    assert stop_c["meter_stop"] - start_c["meter_start"] == c_wh

    # The fault cleared: A works again and is free.
    pile_a.model.clear_fault(pile_a.model.now_tick)  # type: ignore[attr-defined]
    await csms.wait(lambda: csms.statuses(1)[-1] == "Available", STEP_S, "A available again")


async def test_a_cancel_stops_the_transaction_with_the_bills_energy(
    csms: Csms, station: LiveStation
) -> None:
    car = await station.car("di")
    await car.open(station.base, "fast", 5.0)
    await car.wait_type("charging", STEP_S)
    await csms.wait(
        lambda: any(
            energy_values(p, "Energy.Active.Import.Register") for p in csms.of("MeterValues")
        ),
        STEP_S,
        "meter values",
    )
    car.send({"operation": "cancel"})
    (stop,) = await stopped(csms, 1)
    (start,) = csms.of("StartTransaction")
    assert stop["reason"] == "Other"  # the driver cancelled; the car did not drive off
    await bill_count(station, 1)
    (billed_wh,) = station.bill_wh(car)
    assert 0 < billed_wh < 5000
    assert stop["meter_stop"] - start["meter_start"] == billed_wh
    await csms.wait(lambda: csms.statuses(1)[-1] == "Available", STEP_S, "connector 1 free")
    assert csms.statuses(1)[-2:] == ["Finishing", "Available"]


async def test_remote_stop_transaction_stops_and_bills_the_session(
    csms: Csms, station: LiveStation
) -> None:
    car = await station.car("ed")
    await car.open(station.base, "fast", 5.0)
    await car.wait_type("charging", STEP_S)
    await csms.wait(lambda: csms.started, STEP_S, "the start")
    tx_id = max(csms.started)
    unknown = await csms.call(CP_ID, call.RemoteStopTransaction(transaction_id=tx_id + 50))
    assert unknown.status == "Rejected"
    await asyncio.sleep(0.2)
    answer = await csms.call(CP_ID, call.RemoteStopTransaction(transaction_id=tx_id))
    assert answer.status == "Accepted"
    (stop,) = await stopped(csms, 1)
    assert (stop["transaction_id"], stop["reason"]) == (tx_id, "Remote")
    await car.wait_type("done", STEP_S)
    await bill_count(station, 1)
    (billed_wh,) = station.bill_wh(car)
    assert 0 < billed_wh < 5000
    assert stop["meter_stop"] - csms.started[tx_id]["meter_start"] == billed_wh
    # Written to the audit log as the operator API's stop is, by the central system.
    entries = await station.service.storage.run(lambda s: audit_log.recent_audit(s, 5))
    stop_entry = next(e for e in entries if e.action == "stop_session")
    assert stop_entry.detail["by"] == "ocpp" and stop_entry.detail["transactionId"] == tx_id


async def test_change_availability_switches_piles_as_the_operator_api_does(
    csms: Csms, station: LiveStation
) -> None:
    car = await station.car("fi")
    await car.open(station.base, "fast", 2.0)
    await car.wait_type("charging", STEP_S)
    await csms.wait(lambda: csms.started, STEP_S, "the start")
    await asyncio.sleep(0.2)
    off = await csms.call(CP_ID, call.ChangeAvailability(connector_id=1, type="Inoperative"))
    assert off.status == "Accepted"  # at once: the rules stop and bill the car (RULES §4)
    (stop_a,) = await stopped(csms, 1)
    assert stop_a["reason"] == "Other"
    await csms.wait(lambda: csms.statuses(1)[-1] == "Unavailable", STEP_S, "A unavailable")
    # The displaced car goes on at B for what it still wants.
    await csms.wait(lambda: len(csms.of("StartTransaction")) == 2, STEP_S, "B's start")
    assert csms.of("StartTransaction")[1]["connector_id"] == 2
    assert station.service.door.pile(1).state.value == "off"  # type: ignore[union-attr]
    assert (await csms.call(CP_ID, call.ChangeAvailability(9, "Inoperative"))).status == "Rejected"
    on = await csms.call(CP_ID, call.ChangeAvailability(connector_id=1, type="Operative"))
    assert on.status == "Accepted"
    await csms.wait(lambda: csms.statuses(1)[-1] == "Available", STEP_S, "A available")
    await car.wait_type("done", STEP_S)
    stops = await stopped(csms, 2)
    await bill_count(station, 2)
    first_wh, second_wh = station.bill_wh(car)
    start_a, start_b = csms.of("StartTransaction")
    assert stop_a["meter_stop"] - start_a["meter_start"] == first_wh
    assert stops[1]["meter_stop"] - start_b["meter_start"] == second_wh
    assert first_wh + second_wh == 2000
    # Connector 0: every pile at once.
    everything = await csms.call(CP_ID, call.ChangeAvailability(connector_id=0, type="Inoperative"))
    assert everything.status == "Accepted"
    await csms.wait(
        lambda: all(csms.statuses(c)[-1] == "Unavailable" for c in (1, 2, 3)), STEP_S, "all off"
    )
    audit = await station.service.storage.run(lambda s: audit_log.recent_audit(s, 10))
    actions = [e.action for e in audit]
    assert actions.count("pile_off") == 4 and actions.count("pile_on") == 1


async def test_calls_from_the_central_system_are_answered_honestly(
    csms: Csms, station: LiveStation
) -> None:
    ask = csms.call
    assert (await ask(CP_ID, call.RemoteStartTransaction(id_tag="7"))).status == "Rejected"
    assert (await ask(CP_ID, call.Reset(type="Soft"))).status == "Rejected"
    assert (await ask(CP_ID, call.UnlockConnector(connector_id=1))).status == "NotSupported"
    config = await ask(CP_ID, call.GetConfiguration())
    values = {k["key"]: k["value"] for k in config.configuration_key}
    assert values["NumberOfConnectors"] == "3"
    assert values["MeterValueSampleInterval"] == str(METER_VALUES_S)
    some = await ask(CP_ID, call.GetConfiguration(key=["HeartbeatInterval", "Colour"]))
    assert [k["key"] for k in some.configuration_key] == ["HeartbeatInterval"]
    assert some.unknown_key == ["Colour"]
    change = call.ChangeConfiguration
    assert (
        await ask(CP_ID, change(key="MeterValueSampleInterval", value="30"))
    ).status == "Accepted"
    assert station.service.uplink.meter_values_s == 30  # type: ignore[union-attr]
    assert (await ask(CP_ID, change(key="HeartbeatInterval", value="soon"))).status == "Rejected"
    assert (await ask(CP_ID, change(key="NumberOfConnectors", value="9"))).status == "Rejected"
    assert (await ask(CP_ID, change(key="Colour", value="red"))).status == "NotSupported"
    seen = len(csms.statuses(2))
    trigger = await ask(CP_ID, call.TriggerMessage("StatusNotification", connector_id=2))
    assert trigger.status == "Accepted"
    await csms.wait(lambda: len(csms.statuses(2)) == seen + 1, STEP_S, "the triggered status")
    notimpl = await ask(CP_ID, call.TriggerMessage("DiagnosticsStatusNotification"))
    assert notimpl.status == "NotImplemented"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        # An action OCPP 1.6 does not have.
        ('[2, "u1", "Teleport", {}]', "NotSupported"),
        # An OCPP 1.6 action the station has no handler for.
        ('[2, "u2", "ClearCache", {}]', "NotImplemented"),
        # A required field missing.
        ('[2, "u3", "RemoteStopTransaction", {}]', "ProtocolError"),
        # A field of the wrong type.
        (
            '[2, "u4", "RemoteStopTransaction", {"transactionId": "seven"}]',
            "TypeConstraintViolation",
        ),
        # A field the action does not have (OCPP 1.6's spelling of the code).
        ('[2, "u5", "Reset", {"type": "Hard", "colour": 1}]', "FormationViolation"),
        # A frame that is no Call at all, with an id to answer.
        ('[2, "u6"]', "ProtocolError"),
    ],
)
async def test_a_malformed_or_unknown_call_gets_its_call_error(
    csms: Csms, station: LiveStation, frame: str, code: str
) -> None:
    unique_id = frame.split('"')[1]
    answer = await csms.raw(CP_ID, frame, unique_id)
    assert answer[0] == 4 and answer[2] == code
    # Not JSON at all: nothing to answer, and the link stays up for the next call.
    await csms.points[CP_ID].send("{not json")
    config = await csms.call(CP_ID, call.GetConfiguration(key=["HeartbeatInterval"]))
    assert config.configuration_key[0]["key"] == "HeartbeatInterval"
    assert csms.connects == 1


async def test_a_link_lost_mid_session_delivers_each_message_once(
    csms: Csms, station: LiveStation
) -> None:
    """Reconnects keep one transaction per session: the link drops mid-session and comes back;
    the session's start, meter values and stop each reach the central system once."""
    car = await station.car("gu")
    await car.open(station.base, "fast", 2.0)
    await car.wait_type("charging", STEP_S)
    await csms.wait(lambda: csms.started, STEP_S, "the start")
    await csms.stop()  # down mid-session
    await asyncio.sleep(0.4)
    await csms.start()
    await car.wait_type("done", STEP_S)
    (stop,) = await stopped(csms, 1)
    assert csms.connects == 2
    calls = csms.transaction_calls()
    keys = [(r.action, repr(sorted(r.payload.items()))) for r in calls]
    assert len(keys) == len(set(keys))
    (start,) = csms.of("StartTransaction")
    (billed_wh,) = station.bill_wh(car)
    assert stop["meter_stop"] - start["meter_start"] == billed_wh == Fraction(2000)
    # The messages made while it was down came after the reconnect, in order, before the
    # statuses of the new boot.
    stamps = [r.payload.get("timestamp") or r.payload["meter_value"][0]["timestamp"] for r in calls]
    assert stamps == sorted(stamps)
