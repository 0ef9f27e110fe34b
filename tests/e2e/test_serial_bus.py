"""Three reference piles on one Modbus RTU bus (a pty pair made by pile-sim, the station at the
other end as on an RS-485 line), and one of them goes dead. The station keeps polling and
commanding the other two between the dead one's timeouts: their sessions go on (their watchdogs
never fire) and end with bills equal to their meters. The dead pile is faulted, so a car of its
mode waits; when the pile answers again it recovers and serves that car.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import (
    Bench,
    PileConf,
    admin_view,
    check_bills_match_meters,
    check_fees,
    check_user_log,
    idle_meters,
    meters,
    operator_token,
    ref_pile,
    rtu_link,
    station_toml,
    stored_bills,
    until,
    until_async,
)

STEP_TIMEOUT_S = 15.0
FINISH_TIMEOUT_S = 30.0


@pytest.mark.asyncio
async def test_one_of_three_devices_on_a_serial_bus_dead(bench: Bench) -> None:
    """Row 10. Units 1, 2 and 3 on one bus: A and B fast at 30 kW, C common at 7 kW. F1 asks for
    1.2 kWh (at A) and F2 for 1.6 kWh (at B: A would finish it after 1.2 + 1.6 = 2.8 kWh of work).
    C goes silent while both charge. Each poll of C now costs the bus a timeout, yet A and B are
    read and fed between them: F1 completes while C is dead, and neither A's nor B's watchdog
    fires. T1 (0.15 kWh, common) arrives once the operator's view shows C faulted: with no
    working common pile it stays in the waiting area. C answers again, recovers, and T1 is
    called to it. Every session ends with one bill, equal to the pile's meter."""
    sim = bench.pile_sim([ref_pile(1, 30), ref_pile(2, 30), ref_pile(3, 7)], pty=True)
    link = rtu_link(sim)
    piles = [
        PileConf(1, "A", link, unit=1),
        PileConf(2, "B", link, unit=2),
        PileConf(3, "C", link, mode="common", power_kw=7, unit=3),
    ]
    st = bench.station(station_toml(piles), operator=True)
    op = await operator_token(st.base)
    before = meters(sim)
    f1, f2, t1 = [await bench.car(st.base, name) for name in ("f1", "f2", "t1")]
    for car, kwh, pile_id in ((f1, 1.2, 1), (f2, 1.6, 2)):
        await car.open(st.base, "fast", kwh)
        call = await car.wait_type("call", STEP_TIMEOUT_S)
        assert (call["stationId"], call["place"]) == (pile_id, 1)
        await car.wait_type("charging", STEP_TIMEOUT_S)

    await until(lambda: sim.unit(1)["session_wh"] >= 300, STEP_TIMEOUT_S, "F1 0.3 kWh into A")
    sim.fault(3, "silent")

    async def c_state() -> str:
        piles_now, _ = await admin_view(st.base, op)
        return str(piles_now[3]["state"])

    await until_async(c_state, "fault", STEP_TIMEOUT_S, "C faulted after three misses")
    first = await t1.open(st.base, "common", 0.15)
    assert (first["type"], first["queueNo"], first["area"]) == ("queued", "T1", "waiting")
    done = await f1.wait_type("done", FINISH_TIMEOUT_S)  # A completes while C is dead
    assert done["reason"] == "completed"
    for unit in (1, 2):
        assert sim.unit(unit)["watchdog_stopped_s"] is None, f"unit {unit} went unfed"
    assert sim.unit(2)["state"] == "charging"
    assert not t1.of_type("call"), "T1 must not be called to a dead pile"

    sim.clear(3)
    call = await t1.wait_type("call", STEP_TIMEOUT_S)
    assert (call["stationId"], call["place"]) == (3, 1)
    for car in (f2, t1):
        done = await car.wait_type("done", FINISH_TIMEOUT_S)
        assert done["reason"] == "completed", (car.name, done)

    after = await idle_meters(sim)
    bills = stored_bills(st.db)
    assert sorted((b.queue_no, b.pile_id, b.reason) for b in bills) == [
        ("F1", 1, "completed"),
        ("F2", 2, "completed"),
        ("T1", 3, "completed"),
    ]
    assert [b.energy_wh for b in sorted(bills, key=lambda b: b.queue_no)] == [1200, 1600, 150]
    check_bills_match_meters(bills, before, after, {1: 1, 2: 2, 3: 3})
    check_fees(bills)
    for car in (f1, f2, t1):
        await check_user_log(st.base, car, bills)
