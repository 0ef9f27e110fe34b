"""A called car that never plugs in (RULES §3): pile-sim's pile has no vehicle until told, the
station's plug_timeout_s is short. The car loses its turn without a bill and the next car is
served."""

from __future__ import annotations

import time

import pytest

from tests.e2e.harness import (
    Bench,
    PileConf,
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
    user_log,
)

PLUG_TIMEOUT_S = 60  # station seconds: one real second at the bench's speed-up
STEP_TIMEOUT_S = 15.0


@pytest.mark.asyncio
async def test_a_called_car_that_never_plugs_in_loses_its_turn(bench: Bench) -> None:
    """Row 14. One fast pile A without auto-plug. F1 and F2 ask for 0.5 kWh each: F1 is at A,
    F2 second in A's queue. F1 never plugs in: no sooner than plug_timeout_s after its call it
    is done with reason `no_show` and a message saying why, gets no bill, and its request is
    gone (asking again gives a new number, F3). F2 moves to the head of A's queue and its
    session starts; its car plugs in and it is charged 0.5 kWh. A's meter advanced by F2's
    0.5 kWh and F3's 0.1 kWh, and that is what was billed."""
    sim = bench.pile_sim([ref_pile(1, 30, "noplug")])
    toml = station_toml(
        [PileConf(1, "A", tcp_link(sim, 1))], station={"plug_timeout_s": PLUG_TIMEOUT_S}
    )
    st = bench.station(toml)
    before = meters(sim)
    f1, f2 = await bench.car(st.base, "f1"), await bench.car(st.base, "f2")
    await f1.open(st.base, "fast", 0.5)
    call = await f1.wait_type("call", STEP_TIMEOUT_S)
    called_at = time.monotonic()
    assert (call["stationId"], call["place"]) == (1, 1)
    await f2.open(st.base, "fast", 0.5)
    call = await f2.wait_type("call", STEP_TIMEOUT_S)
    assert (call["stationId"], call["place"]) == (1, 2)

    done = await f1.wait_type("done", real_s(PLUG_TIMEOUT_S) + STEP_TIMEOUT_S)
    waited_s = time.monotonic() - called_at
    assert done["reason"] == "no_show", done
    assert isinstance(done.get("msg"), str) and done["msg"], done
    assert waited_s >= real_s(PLUG_TIMEOUT_S) * 0.9, waited_s  # not before its time
    assert not f1.of_type("bill") and not f1.of_type("fault")
    assert sim.unit(1)["meter_wh"] == before[1]  # nothing was delivered to anyone

    await f2.wait_type("charging", STEP_TIMEOUT_S)
    sim.vehicle(1, True)
    done = await f2.wait_type("done", STEP_TIMEOUT_S)
    assert done["reason"] == "completed"
    # F1's request is gone: opening the socket again is a new request with a new number.
    since = len(f1.messages)
    again = await f1.open(st.base, "fast", 0.1)
    assert (again["type"], again["queueNo"]) == ("queued", "F3")
    done = await f1.wait_type("done", STEP_TIMEOUT_S, start=since)
    assert done["reason"] == "completed"

    after = await idle_meters(sim)
    bills = stored_bills(st.db)
    assert [(b.queue_no, b.reason, b.energy_wh) for b in bills] == [
        ("F2", "completed", 500),
        ("F3", "completed", 100),
    ]
    check_bills_match_meters(bills, before, after, {1: 1})
    check_fees(bills)
    assert [entry["quantity"] for entry in await user_log(st.base, f1)] == [0.1]  # F3's only
    await check_user_log(st.base, f2, bills)
