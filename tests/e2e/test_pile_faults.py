"""A pile fails mid-charge, the live station over real Modbus TCP to pile-sim: the pile reports a
fault code (both fault policies, RULES §4), stops answering, answers with Modbus exceptions, or
answers later than the link's timeout. Bills are checked against pile-sim's own meters to the Wh,
the queue against RULES §2 and §4.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from tests.e2e.harness import (
    LINK_TIMEOUT_S,
    WATCHDOG_S,
    Bench,
    Car,
    PileConf,
    StoredBill,
    admin_view,
    billed_wh_by_user,
    check_bills_match_meters,
    check_fees,
    check_user_log,
    idle_meters,
    meters,
    operator_token,
    ref_pile,
    station_toml,
    stored_bills,
    tcp_link,
    until,
)

# At 30 kW and the bench's speed-up a pile delivers 0.5 kWh a real second; every wait below is
# several times what the step needs.
STEP_TIMEOUT_S = 15.0
FINISH_TIMEOUT_S = 30.0
# A lost link is a fault after 3 missed polls, each a 0.2 s timeout, 0.2 s of quiet after it
# and the 0.1 s poll: about 1.5 s.
FAULT_TIMEOUT_S = 8.0


def is_call(pile_id: int, place: int) -> object:
    return lambda m: m["type"] == "call" and (m["stationId"], m["place"]) == (pile_id, place)


def in_priority(m: dict[str, object]) -> bool:
    return m["type"] == "position" and m["area"] == "priority"


async def open_and_check_call(
    car: Car, base: str, kwh: float, queue_no: str, pile_id: int, place: int
) -> None:
    first = await car.open(base, "fast", kwh)
    assert (first["type"], first["queueNo"]) == ("queued", queue_no), first
    call = await car.wait_type("call", STEP_TIMEOUT_S)
    assert (call["stationId"], call["place"]) == (pile_id, place), (car.name, call)


def check_asked(bills: list[StoredBill], cars: dict[Car, float]) -> None:
    """Every car received, over all its bills, exactly the kWh it asked for."""
    by_user = billed_wh_by_user(bills)
    for car, kwh in cars.items():
        assert by_user.get(car.user_id) == Fraction(round(kwh * 1000)), (car.name, by_user)


@pytest.mark.asyncio
@pytest.mark.parametrize("policy", ["priority", "time_order"])
async def test_pile_fault_code_mid_charge(bench: Bench, policy: str) -> None:
    """Rows 1 and 2. Piles A and B (fast, 30 kW, two places each). F1 0.8 kWh goes to A; F2
    1.6 kWh to B; F3 1.2 kWh finishes soonest at A (0.8 + 1.2 = 2.0 kWh of work against
    1.6 + 1.2 = 2.8 at B); F4 0.4 kWh at B (1.6 + 0.4 = 2.0 against 0.8 + 1.2 + 0.4 = 2.4 at A).
    A reports fault code 42 while F1 charges: F1 is billed what A's meter shows, then
    - priority: F1 and F3 go to the priority line in that order; B keeps F2 and F4;
    - time_order: F4 also leaves B, the line is sorted [F1, F3, F4], and F1, its head, is called
      to B's free place.
    When the fault clears A recovers: the waiting cars are regrouped by number and F1, the head,
    is called to A (empty, so it finishes soonest there). Everyone gets what it asked for."""
    sim = bench.pile_sim([ref_pile(1, 30), ref_pile(2, 30)])
    piles = [PileConf(1, "A", tcp_link(sim, 1)), PileConf(2, "B", tcp_link(sim, 2), unit=2)]
    st = bench.station(station_toml(piles, station={"fault_policy": policy}), operator=True)
    op = await operator_token(st.base)
    before = meters(sim)
    f1, f2, f3, f4 = [await bench.car(st.base, name) for name in ("f1", "f2", "f3", "f4")]
    asked = {f1: 0.8, f2: 1.6, f3: 1.2, f4: 0.4}
    for car, queue_no, pile_id, place in (
        (f1, "F1", 1, 1),
        (f2, "F2", 2, 1),
        (f3, "F3", 1, 2),
        (f4, "F4", 2, 2),
    ):
        await open_and_check_call(car, st.base, asked[car], queue_no, pile_id, place)

    await until(lambda: sim.unit(1)["session_wh"] >= 200, STEP_TIMEOUT_S, "F1 0.2 kWh into A")
    at_fault = sim.fault(1, "pile_fault", code=42)  # the pile stops charging at once
    assert at_fault["state"] == "fault"
    fault = await f1.wait_type("fault", STEP_TIMEOUT_S)
    await f3.wait(in_priority, STEP_TIMEOUT_S, "F3 moved to the priority line")
    if policy == "priority":
        await f1.wait(in_priority, STEP_TIMEOUT_S, "F1 in the priority line")
        piles_now, lines = await admin_view(st.base, op)
        assert piles_now[1] == {"state": "fault", "queue": []}
        assert piles_now[2]["queue"] == ["F2", "F4"]
        assert lines["fast"] == ["F1", "F3"]
    else:
        await f4.wait(in_priority, STEP_TIMEOUT_S, "F4 taken out of B")
        await f1.wait(is_call(2, 2), STEP_TIMEOUT_S, "F1 called to B's free place")
        piles_now, lines = await admin_view(st.base, op)
        assert piles_now[1] == {"state": "fault", "queue": []}
        assert piles_now[2]["queue"] == ["F2", "F1"]
        assert lines["fast"] == ["F3", "F4"]
    # F1's first bill: what A delivered up to the fault, to the Wh.
    (fault_bill,) = [b for b in stored_bills(st.db) if b.queue_no == "F1"]
    assert fault_bill.reason == "fault" and fault_bill.pile_id == 1
    assert fault_bill.energy_wh == at_fault["meter_wh"] - before[1]
    assert fault["bill"]["id"] == fault_bill.id

    since = len(f1.messages)
    sim.clear(1)
    await f1.wait(is_call(1, 1), STEP_TIMEOUT_S, "F1 called to A on recovery", start=since)
    if policy == "priority":
        # Recovery regroups the cars not yet charging: F4 leaves B for the sorted line too.
        await f4.wait(in_priority, STEP_TIMEOUT_S, "F4 regrouped on A's recovery")

    for car in (f1, f2, f3, f4):
        done = await car.wait_type("done", FINISH_TIMEOUT_S)
        assert done["reason"] == "completed", (car.name, done)
    after = await idle_meters(sim)
    bills = stored_bills(st.db)
    check_bills_match_meters(bills, before, after, {1: 1, 2: 2})
    check_asked(bills, asked)
    check_fees(bills)
    assert [b.reason for b in bills if b.queue_no == "F1"] == ["fault", "completed"]
    assert len({b.id for b in bills}) == len(bills) == 5  # F1 twice, the others once
    for car in (f1, f2, f3, f4):
        await check_user_log(st.base, car, bills)


async def link_fault_mid_charge(
    bench: Bench, kind: str, params: dict[str, int], *, pile_stops_first: bool
) -> None:
    """Piles A and B (fast, 30 kW). F1 1.5 kWh charges at A, F2 2 kWh at B (A: 1.5 + 2 = 3.5 kWh
    of work, B: 2). A's link fails (`kind`) once F1 has 0.3 kWh. After three missed polls A is
    faulted (RULES §4): F1 gets a bill for what it received and keeps its number; from the
    priority line it is called to B's free place. When A answers again it recovers and F1, not
    yet charging at B, is regrouped and called to A, empty, where it finishes soonest.

    pile_stops_first: A's link comes back only after A stopped by its own watchdog (it hears no
    heartbeat); otherwise it comes back while A still charges (a long watchdog).

    What A delivered while nobody could read it went into F1's car: RULES §4 bills the energy
    the car received, so A's bills must add up to A's meter, and F1 pays for 1.5 kWh in all."""
    watchdog_s = WATCHDOG_S if pile_stops_first else 10 * WATCHDOG_S
    sim = bench.pile_sim([ref_pile(1, 30, watchdog_s=watchdog_s), ref_pile(2, 30)])
    piles = [
        PileConf(1, "A", tcp_link(sim, 1), watchdog_s=watchdog_s),
        PileConf(2, "B", tcp_link(sim, 2), unit=2),
    ]
    st = bench.station(station_toml(piles))
    before = meters(sim)
    f1, f2 = await bench.car(st.base, "f1"), await bench.car(st.base, "f2")
    await open_and_check_call(f1, st.base, 1.5, "F1", 1, 1)
    await open_and_check_call(f2, st.base, 2, "F2", 2, 1)

    await until(lambda: sim.unit(1)["session_wh"] >= 300, STEP_TIMEOUT_S, "F1 0.3 kWh into A")
    at_fault = sim.fault(1, kind, **params)
    fault = await f1.wait_type("fault", FAULT_TIMEOUT_S)
    (fault_bill,) = [b for b in stored_bills(st.db) if b.queue_no == "F1"]
    assert (fault_bill.reason, fault_bill.pile_id) == ("fault", 1)
    # Billed up to a reading taken before A went quiet: some energy, no more than A had then.
    assert 0 < fault_bill.energy_wh <= at_fault["meter_wh"] - before[1]
    assert fault["bill"]["id"] == fault_bill.id
    assert fault["queueNo"] == "F1" and fault["remaining"] < 1.5
    await f1.wait(is_call(2, 2), STEP_TIMEOUT_S, "F1 called to B's free place")

    if pile_stops_first:
        stopped = await until(
            lambda: (u := sim.unit(1))["watchdog_stopped_s"] is not None and u,
            STEP_TIMEOUT_S,
            "A stopped by its watchdog",
        )
        assert (stopped["state"], stopped["power_w"], stopped["enable"]) == ("connected", 0, 0)
    else:
        assert sim.unit(1)["state"] == "charging"  # A never stopped: nobody told it to
    since = len(f1.messages)
    sim.clear(1)
    await f1.wait(is_call(1, 1), STEP_TIMEOUT_S, "F1 called to A on recovery", start=since)

    for car in (f1, f2):
        done = await car.wait_type("done", FINISH_TIMEOUT_S)
        assert done["reason"] == "completed", (car.name, done)
    after = await idle_meters(sim)
    bills = stored_bills(st.db)
    # F2 at B was never disturbed: one session, one bill.
    assert [(b.reason, b.pile_id) for b in bills if b.queue_no == "F2"] == [("completed", 2)]
    check_bills_match_meters(bills, before, after, {1: 1, 2: 2})
    check_asked(bills, {f1: 1.5, f2: 2.0})
    check_fees(bills)
    for car in (f1, f2):
        await check_user_log(st.base, car, bills)


@pytest.mark.asyncio
async def test_pile_silent_mid_charge_returns_after_its_watchdog_stopped_it(bench: Bench) -> None:
    """Row 3: the pile stops answering, then answers again after it stopped by itself."""
    await link_fault_mid_charge(bench, "silent", {}, pile_stops_first=True)


@pytest.mark.asyncio
async def test_pile_silent_mid_charge_returns_while_still_charging(bench: Bench) -> None:
    """Row 3, a short outage: the link is back before the pile's watchdog stopped it."""
    await link_fault_mid_charge(bench, "silent", {}, pile_stops_first=False)


@pytest.mark.asyncio
async def test_pile_answers_modbus_exceptions_mid_charge(bench: Bench) -> None:
    """Row 4: every request to the pile gets exception 04 (server device failure): no reading,
    so the same as a pile that stopped answering."""
    await link_fault_mid_charge(bench, "exception", {"code": 4}, pile_stops_first=True)


@pytest.mark.asyncio
async def test_pile_answers_later_than_the_link_timeout(bench: Bench) -> None:
    """Row 5: every answer comes 500 ms late, the link waits 200 ms (LINK_TIMEOUT_S): no reading
    in time, so the same as a pile that stopped answering."""
    assert LINK_TIMEOUT_S * 1000 < 500
    await link_fault_mid_charge(bench, "delay", {"ms": 500}, pile_stops_first=True)
