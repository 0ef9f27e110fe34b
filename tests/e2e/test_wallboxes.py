"""The two wallboxes of the device registry on the bench: an ABB Terra AC and a KEBA KeContact
P30 (pile-sim over Modbus TCP), each driven by the station from a car's request to its bill.
Neither has a session energy limit: the station stops it when its count reaches the amount, and
the bill is all the energy counted up to the stop (RULES §6), equal to the twin's own meter.
"""

from __future__ import annotations

import pytest

from firmware_sim.launch import PileSimProcess
from tests.e2e.harness import (
    START_METER_WH,
    Bench,
    PileConf,
    check_bills_match_meters,
    check_fees,
    check_user_log,
    idle_meters,
    meters,
    station_toml,
    stored_bills,
    tcp_link,
)

STEP_TIMEOUT_S = 15.0


async def charge_half_a_kwh(bench: Bench, sim: PileSimProcess, pile: PileConf, unit: int) -> None:
    """F1 asks for 0.5 kWh at the pile on `unit`; one bill of at least that, equal to what the
    twin's meter counted from the start to the stop."""
    st = bench.station(station_toml([pile]))
    before = meters(sim)
    f1 = await bench.car(st.base, "f1")
    await f1.open(st.base, "fast", 0.5)
    done = await f1.wait_type("done", STEP_TIMEOUT_S)
    assert done["reason"] == "completed"
    after = await idle_meters(sim)
    assert sim.unit(unit)["power_w"] == 0  # stopped by the station
    bills = stored_bills(st.db)
    assert [(b.queue_no, b.reason) for b in bills] == [("F1", "completed")]
    assert bills[0].energy_wh >= 500
    check_bills_match_meters(bills, before, after, {1: unit})
    check_fees(bills)
    await check_user_log(st.base, f1, bills)


@pytest.mark.asyncio
async def test_an_abb_terra_ac_session_is_billed_from_its_session_counter(bench: Bench) -> None:
    """An 11 kW ABB Terra AC on unit 1 counts only its sessions (0x401E, Wh); the station adds
    them up into its count and stops the session with 0x4100 = 0 at 0.5 kWh."""
    sim = bench.pile_sim([f"1:abb-terra-ac:11:meter_wh={START_METER_WH}"])
    pile = PileConf(1, "A", tcp_link(sim, 1), power_kw=11, profile="abb-terra-ac", watchdog_s=None)
    await charge_half_a_kwh(bench, sim, pile, 1)
    assert sim.unit(1)["current_ma"] == 0 and sim.unit(1)["abb_state"] == 5  # session stopped


@pytest.mark.asyncio
async def test_a_keba_p30_session_is_billed_from_its_own_meter(bench: Bench) -> None:
    """An 11 kW KEBA P30 answering as unit 255 counts its total energy in 0.1 Wh (1036); the
    station sets its fail-safe (5018), feeds it while it charges and disables it (5014 = 0) at
    0.5 kWh. The twin needs no 0.5 s between requests: the pile's pause_s says so."""
    sim = bench.pile_sim([f"255:keba-p30:11:meter_wh={START_METER_WH}"])
    pile = PileConf(
        1, "K", tcp_link(sim, 255), power_kw=11, unit=255, profile="keba-p30", pause_s=0.01
    )
    await charge_half_a_kwh(bench, sim, pile, 255)
    unit = sim.unit(255)
    assert (unit["enabled"], unit["keba_state"]) == (False, 5)  # disabled: suspended
    assert unit["failsafe_s"] == pile.watchdog_s and unit["failsafe_tripped_s"] is None
