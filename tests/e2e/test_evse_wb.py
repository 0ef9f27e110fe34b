"""The real-world pair on the bench: an EVSE-WB-DIN charge controller and its Eastron SDM630
meter (pile-sim over Modbus TCP). The EVSE has no session energy limit, so the station stops it
when the meter reaches the amount; RULES §6: "the bill is the metered energy, which may exceed
the amount by what was delivered since the previous reading" -- all of it, up to the stop.
"""

from __future__ import annotations

import pytest

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
METER_TURNAROUND_MS = 100  # below the link's 200 ms timeout: slow, but an answer


@pytest.mark.asyncio
async def test_an_evse_wb_session_is_billed_all_the_energy_its_meter_counted(
    bench: Bench,
) -> None:
    """F1 asks for 0.5 kWh at A, an 11 kW EVSE-WB-DIN (3 x 16 A) whose SDM630 answers 100 ms
    after it is asked, as a meter on a slow RS-485 bus does. The station stops A once the meter
    shows 0.5 kWh; the pile keeps delivering until the stop reaches it. The one bill is at
    least 0.5 kWh and equals what the meter counted from the start to the stop, to the Wh."""
    sim = bench.pile_sim([f"1:evse-wb:11:meter=2:sdm630:meter_wh={START_METER_WH}"])
    pile = PileConf(
        1, "A", tcp_link(sim, 1), power_kw=11, profile="evse-wb", meter_unit=2, watchdog_s=None
    )
    st = bench.station(station_toml([pile]))
    sim.fault(2, "delay", ms=METER_TURNAROUND_MS)
    before = meters(sim)
    f1 = await bench.car(st.base, "f1")
    await f1.open(st.base, "fast", 0.5)
    done = await f1.wait_type("done", STEP_TIMEOUT_S)
    assert done["reason"] == "completed"
    after = await idle_meters(sim)
    assert sim.unit(1)["current_a"] == 0  # stopped by the station
    bills = stored_bills(st.db)
    assert [(b.queue_no, b.reason) for b in bills] == [("F1", "completed")]
    assert bills[0].energy_wh >= 500
    check_bills_match_meters(bills, before, after, {1: 2})
    check_fees(bills)
    await check_user_log(st.base, f1, bills)
