"""The simulated pile's physics: exact metering, the energy limit, faults, the clock."""

from __future__ import annotations

import pytest

from firmware_sim.pile_model import PileModel, PileStatus

TPS = 1000  # ticks per second in these tests
WH = 3600 * TPS  # watt-ticks in one Wh


def test_a_session_meters_power_times_time() -> None:
    pile = PileModel(7000, TPS)
    pile.start_session(0, limit=None)
    assert pile.status is PileStatus.CHARGING and pile.power_w == 7000
    pile.advance(3600 * TPS)  # one hour at 7 kW
    assert pile.meter_wh == 7000 and pile.session_energy == 7000 * WH
    assert pile.stop_session(3600 * TPS) == 7000 * WH
    assert pile.status is PileStatus.CONNECTED and pile.power_w == 0


def test_a_session_stops_exactly_at_its_limit_even_when_stepped_past_it() -> None:
    pile = PileModel(7000, TPS)
    limit = 3500 * WH  # half an hour
    pile.start_session(0, limit)
    assert pile.finish_tick() == 1800 * TPS
    pile.advance(5000 * TPS)  # well past the end
    assert pile.session_energy == limit and pile.meter == limit
    assert pile.finished_tick == 1800 * TPS
    assert pile.status is PileStatus.FINISHED and pile.power_w == 0
    pile.advance(9000 * TPS)
    assert pile.meter == limit  # nothing more is drawn


def test_the_meter_carries_on_across_sessions_and_never_goes_back() -> None:
    pile = PileModel(30_000, TPS, meter=100 * WH)
    pile.start_session(0, 1000 * WH)
    pile.advance(3600 * TPS)
    pile.start_session(3600 * TPS, 2000 * WH)
    pile.advance(7200 * TPS)
    assert pile.meter == (100 + 1000 + 2000) * WH
    with pytest.raises(ValueError):
        pile.advance(7199 * TPS)


def test_a_lower_setpoint_slows_the_session() -> None:
    pile = PileModel(22_000, TPS)
    pile.setpoint_w = 11_000
    pile.start_session(0, 11_000 * WH)
    assert pile.finish_tick() == 3600 * TPS


def test_a_fault_stops_charging_until_cleared() -> None:
    pile = PileModel(7000, TPS)
    pile.start_session(0, None)
    pile.set_fault(1800 * TPS, code=3)
    pile.advance(3600 * TPS)
    assert pile.status is PileStatus.FAULT and pile.meter_wh == 3500
    pile.clear_fault(3600 * TPS)
    assert pile.status is PileStatus.CONNECTED  # it needs a new start to charge again


def test_no_vehicle_no_power() -> None:
    pile = PileModel(7000, TPS)
    pile.start_session(0, None, plug_in=False)
    pile.advance(3600 * TPS)
    assert pile.status is PileStatus.NO_VEHICLE and pile.meter == 0
    pile.plug_in(3600 * TPS)
    pile.advance(7200 * TPS)
    assert pile.meter_wh == 7000
