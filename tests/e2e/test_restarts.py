"""The station process dies, is stopped, or hangs, with sessions open on pile-sim over real Modbus
TCP: `kill -9` then a restart on the same state directory, SIGTERM then a restart, and SIGSTOP
(the piles' watchdogs stop them) then SIGCONT. No car is lost from the line, every Wh the piles
delivered is billed once, and nothing keeps charging without a live controller.
"""

from __future__ import annotations

import signal
import time
from fractions import Fraction

import pytest

from firmware_sim.launch import PileSimProcess
from tests.e2e.harness import (
    WATCHDOG_S,
    Bench,
    Car,
    Message,
    PileConf,
    StationProcess,
    StoredBill,
    billed_wh_by_pile,
    billed_wh_by_user,
    check_bills_match_meters,
    check_fees,
    check_user_log,
    idle_meters,
    meters,
    real_s,
    ref_pile,
    station_toml,
    stored_bills,
    tcp_link,
    until,
)

STEP_TIMEOUT_S = 15.0
FINISH_TIMEOUT_S = 30.0

# The brief's station (RULES §1): A and B fast at 30 kW, C, D and E common at 7 kW, two places
# each. pile id -> (name, mode, kW); the pile's pile-sim unit is its id.
PILES = {1: ("A", "fast", 30), 2: ("B", "fast", 30), 3: ("C", "common", 7)}
PILES |= {4: ("D", "common", 7), 5: ("E", "common", 7)}
UNITS = {pile_id: pile_id for pile_id in PILES}

# Arrival order, and where each car goes (RULES §2, the pile where it finishes soonest):
#  F1 1.5 -> A; F2 2.0 -> B (A: 1.5 + 2.0 = 3.5 kWh of work, B: 2.0);
#  F3 0.5 -> A, 2nd place (A: 1.5 + 0.5 = 2.0, B: 2.0 + 0.5 = 2.5);
#  T1 0.3 -> C; T2 0.4 -> D (C: 0.3 + 0.4 = 0.7, D: 0.4); T3 0.5 -> E (C 0.8, D 0.9, E 0.5);
#  T4 0.1 -> C, 2nd place (C: 0.3 + 0.1 = 0.4, D: 0.5, E: 0.6); all piles of a mode share a power.
ARRIVALS = [
    ("F1", "fast", 1.5, 1, 1),
    ("F2", "fast", 2.0, 2, 1),
    ("F3", "fast", 0.5, 1, 2),
    ("T1", "common", 0.3, 3, 1),
    ("T2", "common", 0.4, 4, 1),
    ("T3", "common", 0.5, 5, 1),
    ("T4", "common", 0.1, 3, 2),
]
CHARGING = ("F1", "F2", "T1", "T2", "T3")  # five sessions open at once
QUEUED = ("F3", "T4")


def brief_station(bench: Bench) -> tuple[PileSimProcess, StationProcess]:
    sim = bench.pile_sim([ref_pile(unit, kw) for unit, (_, _, kw) in PILES.items()])
    piles = [
        PileConf(pile_id, name, tcp_link(sim, pile_id), mode=mode, power_kw=kw, unit=pile_id)
        for pile_id, (name, mode, kw) in PILES.items()
    ]
    return sim, bench.station(station_toml(piles))


async def arrive(bench: Bench, st: StationProcess) -> dict[str, tuple[Car, float]]:
    """Every car of ARRIVALS asks, in order; each is called where the comment above says."""
    cars: dict[str, tuple[Car, float]] = {}
    for queue_no, mode, kwh, pile_id, place in ARRIVALS:
        car = await bench.car(st.base, queue_no.lower())
        first = await car.open(st.base, mode, kwh)
        assert (first["type"], first["queueNo"]) == ("queued", queue_no), first
        call = await car.wait_type("call", STEP_TIMEOUT_S)
        assert (call["stationId"], call["place"]) == (pile_id, place), (queue_no, call)
        cars[queue_no] = (car, kwh)
    for queue_no in CHARGING:
        await cars[queue_no][0].wait_type("charging", STEP_TIMEOUT_S)
    return cars


async def resume_all(cars: dict[str, tuple[Car, float]], base: str) -> dict[str, Message]:
    """Open every car's socket again on the restarted station: its `resumed` state."""
    states = {}
    for queue_no, (car, _) in cars.items():
        await car.close()
        states[queue_no] = await car.open(base)
    return states


def check_places(states: dict[str, Message]) -> None:
    """Every request is still in the station with its number, at its pile and place."""
    for queue_no, _, kwh, pile_id, _ in ARRIVALS:
        state = states[queue_no]
        assert state["type"] == "resumed", state
        assert (state["queueNo"], state["stationId"], state["quantity"]) == (
            queue_no,
            pile_id,
            kwh,
        ), state
        assert state["area"] == ("charging" if queue_no in CHARGING else "queue"), state


async def finish(cars: dict[str, tuple[Car, float]]) -> None:
    for queue_no, (car, _) in cars.items():
        done = await car.wait_type("done", FINISH_TIMEOUT_S)
        assert done["reason"] == "completed", (queue_no, done)


def check_received_what_was_asked(
    bills: list[StoredBill], cars: dict[str, tuple[Car, float]]
) -> None:
    by_user = billed_wh_by_user(bills)
    for queue_no, (car, kwh) in cars.items():
        assert by_user.get(car.user_id) == Fraction(round(kwh * 1000)), (queue_no, by_user)


@pytest.mark.asyncio
async def test_kill_9_mid_charge_with_five_sessions_open_then_restart(bench: Bench) -> None:
    """Row 11. Seven cars: five charging (F1 at A, F2 at B, T1 at C, T2 at D, T3 at E) and two
    queued (F3 behind F1, T4 behind T1). The station is killed with SIGKILL and started again
    at once on the same state directory, as systemd would. Every request is there again with its
    number, pile and place; the five sessions go on, and each car ends with exactly one bill for
    what it asked for: the energy delivered while the station was down is billed in the session
    it belongs to (the piles' bills add up to their meters)."""
    sim, st = brief_station(bench)
    before = meters(sim)
    cars = await arrive(bench, st)
    await until(lambda: sim.unit(1)["session_wh"] >= 300, STEP_TIMEOUT_S, "F1 0.3 kWh into A")
    st.kill()
    st.start()
    check_places(await resume_all(cars, st.base))

    await finish(cars)
    after = await idle_meters(sim)
    bills = stored_bills(st.db)
    assert sorted(b.queue_no for b in bills) == sorted(cars)  # one bill each
    assert {b.reason for b in bills} == {"completed"}
    check_bills_match_meters(bills, before, after, UNITS)
    check_received_what_was_asked(bills, cars)
    check_fees(bills)
    for car, _ in cars.values():
        await check_user_log(st.base, car, bills)


@pytest.mark.asyncio
async def test_sigterm_bills_and_stops_every_session_then_a_restart_carries_on(
    bench: Bench,
) -> None:
    """Row 12. The same seven cars. On SIGTERM the station stops and bills every charging
    session (a `bill` on the car's socket, reason `stopped` in the database), tells every pile
    to stop (they stop before their watchdogs would), and exits 0. Started again, every request
    is in its place with its number; the five interrupted cars are charged the rest, the queued
    ones all they asked for."""
    sim, st = brief_station(bench)
    before = meters(sim)
    cars = await arrive(bench, st)
    await until(lambda: sim.unit(1)["session_wh"] >= 300, STEP_TIMEOUT_S, "F1 0.3 kWh into A")
    assert st.terminate() == 0, st.log_tail()
    for queue_no in CHARGING:
        await cars[queue_no][0].wait_type("bill", STEP_TIMEOUT_S)
    at_stop = meters(sim)
    bills = stored_bills(st.db)
    assert sorted((b.queue_no, b.reason) for b in bills) == [(q, "stopped") for q in CHARGING]
    # A stopped bill is its session's last reading before the stop (none yet, on a busy box, for
    # a session a few polls old: 0 Wh); what the pile delivered between that reading and the
    # stop is counted in the car's next session at that pile, the one that follows the restart
    # (the bills add up to the meters at the end).
    billed = billed_wh_by_pile(bills)
    for pile_id, unit in UNITS.items():
        assert 0 <= billed[pile_id] <= at_stop[unit] - before[unit], (pile_id, bills, at_stop)
    for unit in sim.state()["units"]:
        assert unit["power_w"] == 0 and unit["enable"] == 0, unit
        assert unit["watchdog_stopped_s"] is None, unit  # stopped by the station, not a watchdog
    for queue_no in QUEUED:
        assert not cars[queue_no][0].of_type("bill")

    st.start()
    states = await resume_all(cars, st.base)
    check_places(states)
    for queue_no in CHARGING:
        # What is left after the stopped session; less once the new session has begun.
        car, kwh = cars[queue_no]
        (stopped,) = [b for b in bills if b.queue_no == queue_no]
        left_kwh = float(Fraction(round(kwh * 1000)) - stopped.energy_wh) / 1000
        assert 0 < states[queue_no]["remaining"] <= left_kwh + 0.005, (queue_no, states)
    for queue_no in QUEUED:  # not started yet: behind sessions with more than a second to go
        assert states[queue_no]["remaining"] == states[queue_no]["quantity"], states

    await finish(cars)
    after = await idle_meters(sim)
    bills = stored_bills(st.db)
    for queue_no in CHARGING:
        assert [b.reason for b in bills if b.queue_no == queue_no] == ["stopped", "completed"]
    for queue_no in QUEUED:
        assert [b.reason for b in bills if b.queue_no == queue_no] == ["completed"]
    check_bills_match_meters(bills, before, after, UNITS)
    check_received_what_was_asked(bills, cars)
    check_fees(bills)
    for car, _ in cars.values():
        await check_user_log(st.base, car, bills)


@pytest.mark.asyncio
async def test_a_hung_station_is_stopped_by_the_pile_watchdog_then_carries_on(
    bench: Bench,
) -> None:
    """Row 13. A's own watchdog is off at power-up (pile-sim `watchdog=0`); the station writes
    `[[piles]] watchdog_s` (WATCHDOG_S station seconds) to it and feeds it. F1 asks for 1.5 kWh.
    The station is frozen with SIGSTOP mid-charge: A stops the session by itself within
    WATCHDOG_S (state connected, no power). After SIGCONT the station finds A idle, starts it
    again for the rest, and F1's one bill is 1.5 kWh, what A's meter advanced."""
    sim = bench.pile_sim([ref_pile(1, 30, watchdog_s=0)])
    st = bench.station(station_toml([PileConf(1, "A", tcp_link(sim, 1))]))
    before = meters(sim)
    f1 = await bench.car(st.base, "f1")
    await f1.open(st.base, "fast", 1.5)
    await f1.wait_type("charging", STEP_TIMEOUT_S)
    await until(lambda: sim.unit(1)["session_wh"] >= 300, STEP_TIMEOUT_S, "F1 0.3 kWh into A")
    assert sim.unit(1)["watchdog_s"] == WATCHDOG_S  # written by the station

    st.signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    stopped = await until(
        lambda: (u := sim.unit(1))["watchdog_stopped_s"] is not None and u,
        real_s(WATCHDOG_S) + STEP_TIMEOUT_S,
        "A stopped by its watchdog",
    )
    assert (stopped["state"], stopped["power_w"], stopped["enable"]) == ("connected", 0, 0)
    # The last heartbeat came before the freeze, so the stop came within one watchdog period.
    assert time.monotonic() - frozen_at <= real_s(WATCHDOG_S) + 1.0
    assert stopped["session_wh"] < 1500
    st.signal(signal.SIGCONT)

    done = await f1.wait_type("done", FINISH_TIMEOUT_S)
    assert done["reason"] == "completed"
    after = await idle_meters(sim)
    bills = stored_bills(st.db)
    assert [(b.queue_no, b.reason, b.energy_wh) for b in bills] == [("F1", "completed", 1500)]
    check_bills_match_meters(bills, before, after, {1: 1})
    check_fees(bills)
    await check_user_log(st.base, f1, bills)
