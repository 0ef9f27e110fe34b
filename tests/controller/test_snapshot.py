"""The queue state survives a restart: snapshot to JSON and restore into a fresh station."""

from __future__ import annotations

import json

import pytest

from controller.snapshot import restore, snapshot
from controller.station import Station
from controller.values import FaultPolicy
from tests.controller.harness import COMMON, FAST, World, pile

PILES = (pile(1, "F1", FAST, 30), pile(2, "F2", FAST, 30), pile(3, "T1", COMMON, 7))


def busy() -> World:
    w = World(PILES, fault_policy=FaultPolicy.PRIORITY)
    for car, mode, kwh in [
        ("V1", FAST, 60),
        ("V2", FAST, 60),
        ("V3", FAST, 30),
        ("V4", FAST, 30),
        ("V5", FAST, 10),
        ("V6", COMMON, 14),
        ("V7", COMMON, 7),
        ("V8", COMMON, 7),
    ]:
        w.request("06:00", car, mode, kwh)
    w.change("06:05", "V8", kwh=5)
    w.fault("06:30", "F1")  # V1 billed 15 kWh, V1 and V3 to the priority line
    w.go("06:40")
    return w


def view(st: Station) -> dict:
    return {
        "waiting": [(r.car, r.queue_no, r.wanted, r.asked) for r in st.waiting],
        "lines": {m.value: [r.car for r in st.line(m)] for m in (FAST, COMMON)},
        "piles": [
            (
                p.name,
                p.state.value,
                [r.car for r in p.queue],
                p.meter and (p.meter.start_tick, p.meter.energy, p.meter.charge_fee),
                p.meter and p.end_estimate,  # meaningful only while a session runs
            )
            for p in st.piles
        ],
        "totals": [vars_of(p.totals) for p in st.piles],
    }


def vars_of(totals) -> tuple:
    return (totals.sessions, totals.charging_ticks, totals.energy, totals.charge_fee)


def test_a_restored_station_is_the_same_station() -> None:
    w = busy()
    saved = json.loads(json.dumps(snapshot(w.st)))  # through JSON, as it is stored
    fresh = World(PILES, fault_policy=FaultPolicy.PRIORITY)
    restore(fresh.st, saved)
    assert view(fresh.st) == view(w.st)
    assert view(fresh.st)["lines"]["fast"][:2] == ["V1", "V3"]  # the priority line first
    # Numbers carry on: the next fast request is F6, not F1; and the rules go on working.
    assert fresh.st.request(fresh.t("06:40"), "V9", FAST, fresh.e(5)).queue_no == "F6"
    fresh.st.change(fresh.t("06:40"), "V8", COMMON, fresh.e(6))
    assert fresh.st.requests["V8"].wanted == fresh.e(6)


def test_restore_refuses_other_units_and_a_used_station() -> None:
    saved = snapshot(busy().st)
    other = World((pile(1, "F1", FAST, 22), pile(3, "T1", COMMON, 7)))
    with pytest.raises(ValueError, match="other pile powers"):
        restore(other.st, saved)
    used = busy()
    with pytest.raises(ValueError, match="fresh station"):
        restore(used.st, saved)
