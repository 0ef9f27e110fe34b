"""The ABB Terra AC driver against its simulated twin over real Modbus TCP, and its decoding
rules on their own (the state byte, the sessions added up into one count, the mA rounding)."""

from __future__ import annotations

import pytest

from drivers.abb_terra_ac import AbbTerraAcPile, SessionSum, charging_state
from drivers.ac_current import setpoint_current_ma
from drivers.contracts import DeviceState
from drivers.errors import BadReading, NotSupported
from drivers.sdm import SdmMeter
from tests.drivers.sim_bench import Bench


def test_the_state_is_the_low_7_bits_of_byte_2() -> None:
    # 0x400C read as [0x400C, 0x400D]; bytes b0 b1 | b2 b3. Whatever the other bytes and bit 7
    # of b2 hold, the state is b2 & 0x7F.
    assert charging_state([0x0000, 0x0400], 0) == 4
    assert charging_state([0xFFFF, 0x84FF], 0) == 4
    assert charging_state([0x0500, 0x0001], 0) == 0  # a 5 in b0 and a 1 in b3 are not it
    assert charging_state([9, 9, 0x0000, 0x0200], 2) == 2  # at an offset in a longer block


def counts(readings: list[int]) -> list[int]:
    sessions = SessionSum()
    out = []
    for session_wh in readings:
        closed_wh, base_wh, count_wh = sessions.next(session_wh)
        sessions.commit(closed_wh, base_wh, session_wh)
        out.append(count_wh)
    return out


def test_sessions_add_up_into_a_count_that_never_goes_back() -> None:
    # A drop starts a new session: 1200 carried over, then 1200 + 300 carried over.
    assert counts([0, 500, 1200, 1200, 0, 300, 40, 40]) == [
        0,
        500,
        1200,
        1200,
        1200,
        1500,
        1540,
        1540,
    ]
    # A driver made mid-session counts from its first reading: 700 is its 0, 900 is 200 more,
    # and the next session's 100 Wh come on top of those 200.
    assert counts([700, 900, 0, 100]) == [0, 200, 200, 300]


def test_setpoints_round_down_to_the_ma_and_stop_below_6_a() -> None:
    # 11000 W on 3 phases: 11000 / 690 = 15.942 A -> 15942 mA (15942 * 0.69 = 10999.98 W).
    assert setpoint_current_ma(11_000, 3, 31_884) == 15_942
    assert setpoint_current_ma(40_000, 3, 31_884) == 31_884  # at most the maximum
    assert setpoint_current_ma(4_140, 3, 31_884) == 6_000  # 6 A x 690 V, exactly
    assert setpoint_current_ma(4_139, 3, 31_884) == 0  # below 6 A: stop
    assert setpoint_current_ma(1_380, 1, 31_884) == 6_000  # 6 A x 230 V on one phase


@pytest.mark.asyncio
async def test_a_session_driven_over_tcp(bench: Bench) -> None:
    sim = bench.sim("1:abb-terra-ac:22")
    pile = AbbTerraAcPile(await bench.tcp(sim), 1, "A", 22_000, clock=bench.clock)
    status = await pile.read_status()
    assert (status.state, status.meter_wh, status.setpoint_w) == (DeviceState.NO_VEHICLE, 0, 0)

    # 11000 W -> 15942 mA, read back from 0x400E as 15942 * 690 // 1000 = 10999 W.
    await pile.enable(11_000)
    assert sim.device(1).snapshot()["current_ma"] == 15_942
    status = await pile.read_status()
    assert (status.state, status.power_w, status.setpoint_w) == (
        DeviceState.CHARGING,
        10_999,
        10_999,
    )
    bench.clock.advance(3600)
    assert (await pile.read_status()).meter_wh == 10_999  # an hour at 10999 W

    await pile.stop()
    status = await pile.read_status()
    # Session stopped (state 5), its cable still plugged and locked: the vehicle is there.
    assert (status.state, status.power_w, status.setpoint_w) == (DeviceState.CONNECTED, 0, 0)
    assert status.meter_wh == 10_999

    # The next session's counter starts from 0; the count goes on from 10999 Wh.
    await pile.enable(22_000)  # 22000 / 690 = 31.884 A: 31884 mA, 31884 * 0.69 = 21999 W
    bench.clock.advance(1800)  # 21999 W for half an hour: 10999.5 Wh, 10999 whole
    status = await pile.read_status()
    assert status.meter_wh == 10_999 + 10_999
    assert status.meter_wh == sim.model(1).meter_wh  # the twin's own physics agree

    await pile.enable(4_000)  # 4000 / 690 = 5.8 A: below 6 A, so it stops
    assert (await pile.read_status()).setpoint_w == 0
    with pytest.raises(NotSupported):
        await pile.enable(11_000, limit_wh=5000)
    with pytest.raises(NotSupported):
        await pile.heartbeat()
    with pytest.raises(NotSupported):
        await pile.set_watchdog(10)


@pytest.mark.asyncio
async def test_errors_single_phase_and_the_vehicle_leaving(bench: Bench) -> None:
    sim = bench.sim("1:abb-terra-ac:7.4:phases=1")
    pile = AbbTerraAcPile(await bench.tcp(sim), 1, "A", 7_400, phases=1, clock=bench.clock)
    await pile.enable(7_400)  # 7400 / 230 = 32.17 A: 32173 mA, 32173 * 0.23 = 7399 W
    status = await pile.read_status()
    assert (status.state, status.power_w) == (DeviceState.CHARGING, 7_399)
    sim.inject(1, "pile_fault", code=21)
    status = await pile.read_status()
    assert (status.state, status.fault_code, status.power_w) == (DeviceState.FAULT, 21, 0)
    sim.clear(1)
    sim.plug(1, False)
    assert (await pile.read_status()).state is DeviceState.NO_VEHICLE


@pytest.mark.asyncio
async def test_an_abb_with_its_own_count_and_a_separate_meter_agree(bench: Bench) -> None:
    sim = bench.sim("1:abb-terra-ac:11:meter=2:sdm630:meter_wh=5000")
    link = await bench.tcp(sim)
    pile = AbbTerraAcPile(link, 1, "A", 11_000, clock=bench.clock)
    meter = SdmMeter(link, 2, "A meter", 11_000, clock=bench.clock)
    start_wh = await meter.read_energy_wh()
    assert start_wh == 5000 and (await pile.read_status()).meter_wh == 0
    await pile.enable(11_000)
    bench.clock.advance(1234)
    own_wh = (await pile.read_status()).meter_wh
    # 10999 W for 1234 s = 3770.3 Wh: the session counter and the meter both say 3770.
    assert own_wh == 3770 == await meter.read_energy_wh() - start_wh


@pytest.mark.asyncio
async def test_a_session_counter_showing_all_ones_is_no_energy(bench: Bench) -> None:
    sim = bench.sim("1:abb-terra-ac:11")
    pile = AbbTerraAcPile(await bench.tcp(sim), 1, "A", 11_000, clock=bench.clock)
    await pile.enable(11_000)
    bench.clock.advance(60)
    good = (await pile.read_status()).meter_wh
    # The twin has no meter faults on its session counter: set the physics so that 0x401E
    # reads all ones (0xFFFFFFFF Wh, in watt-milliseconds).
    sim.device(1).model.session_energy = 0xFFFFFFFF * 3_600_000
    with pytest.raises(BadReading) as bad:
        await pile.read_status()
    assert bad.value.kind == "garbage"
    assert pile.sessions.last_wh == good  # the count's state is untouched
