"""RULES §7: the extended dispatch modes, and RULES §8: the operator totals per pile."""

from __future__ import annotations

from fractions import Fraction

import pytest

from controller.station import Refused
from controller.values import Dispatch
from tests.controller.harness import COMMON, FAST, World, pile

# P is slow (10 kW), Q is fast (30 kW); both serve fast cars.
P_AND_Q = (pile(1, "P", FAST, 10), pile(2, "Q", FAST, 30))


def two_places_free_at_seven(dispatch: Dispatch) -> World:
    """P and Q each busy until exactly 07:00 (one place each), V1 (10 kWh) and V2 (30 kWh) wait."""
    w = World(P_AND_Q, pile_queue_len=1, dispatch=dispatch)
    w.fault("06:00", "Q")
    w.request("06:00", "V0a", FAST, 10)  # only P works: 10 kWh at 10 kW, until 07:00
    w.recover("06:00", "Q")
    w.request("06:00", "V0b", FAST, 30)  # P would finish it at 10:00, Q at 07:00 -> Q
    w.request("06:00", "V1", FAST, 10)
    w.request("06:00", "V2", FAST, 30)
    assert w.queues() == {"P": ["V0a"], "Q": ["V0b"]} and w.waiting() == ["V1", "V2"]
    w.go("07:00")
    return w


def test_single_min_total_assigns_free_places_for_the_least_total_finish_time() -> None:
    w = two_places_free_at_seven(Dispatch.SINGLE_MIN_TOTAL)
    # V1 at P (1 h) and V2 at Q (1 h): 2 h in all; the other way round V1 at Q (1/3 h) and
    # V2 at P (3 h) makes 3 1/3 h. The exact optimum is the first.
    assert w.queues() == {"P": ["V1"], "Q": ["V2"]}


def test_shortest_takes_the_head_first_for_contrast() -> None:
    w = two_places_free_at_seven(Dispatch.SHORTEST)
    # The head V1 finishes soonest at Q (1/3 h). V2 would finish at P after 3 h but at Q after
    # 1/3 + 1 h, so it waits for Q although P is free (RULES §2).
    assert w.queues() == {"P": [], "Q": ["V1"]}
    assert w.waiting() == ["V2"]


def test_single_min_total_orders_cars_on_one_pile_shortest_first() -> None:
    w = World((pile(1, "S", COMMON, 10),), pile_queue_len=2, dispatch=Dispatch.SINGLE_MIN_TOTAL)
    w.fault("06:00", "S")
    w.request("06:00", "V1", COMMON, 30)
    w.request("06:00", "V2", COMMON, 10)
    w.recover("06:10", "S")
    # V1 then V2: 3 h + 4 h = 7 h; V2 then V1: 1 h + 4 h = 5 h.
    assert w.queue("S") == ["V2", "V1"]


def test_batch_min_total_waits_for_a_full_batch_and_ignores_modes() -> None:
    piles = (pile(1, "P", COMMON, 10), pile(2, "Q", FAST, 30))
    w = World(piles, pile_queue_len=1, dispatch=Dispatch.BATCH_MIN_TOTAL)
    w.request("06:00", "V1", FAST, 10)
    assert w.queues() == {"P": [], "Q": []}  # 1 car, 2 places: no batch yet
    w.request("06:00", "V2", COMMON, 30)
    # Batch of 2: V1 at P (1 h) + V2 at Q (1 h) = 2 h beats V1 at Q + V2 at P = 3 1/3 h.
    # The fast car goes to the common pile: modes are ignored.
    assert w.queues() == {"P": ["V1"], "Q": ["V2"]}
    w.request("06:30", "V3", FAST, 5)
    w.request("06:40", "V4", FAST, 5)
    assert w.waiting() == ["V3", "V4"]  # the running batch is not done
    w.go("07:00")  # both end at 07:00: the next batch starts
    assert sorted(w.queue("P") + w.queue("Q")) == ["V3", "V4"]


@pytest.mark.parametrize("dispatch", [Dispatch.SINGLE_MIN_TOTAL, Dispatch.BATCH_MIN_TOTAL])
def test_extended_modes_refuse_changes(dispatch: Dispatch) -> None:
    w = World(P_AND_Q, pile_queue_len=1, dispatch=dispatch)
    w.request("06:00", "V1", FAST, 10)
    w.request("06:00", "V2", FAST, 10)
    w.request("06:00", "V3", FAST, 10)
    with pytest.raises(Refused) as refused:
        w.change("06:01", "V3", kwh=5)
    assert refused.value.error == "changes_disabled"


def test_extended_mode_fault_still_stops_and_bills() -> None:
    w = World(P_AND_Q, pile_queue_len=1, dispatch=Dispatch.SINGLE_MIN_TOTAL)
    w.request("06:00", "V1", FAST, 30)  # Q: 1 h
    bill = w.fault("06:30", "Q")
    assert bill is not None and w.kwh(bill.energy) == 15
    # Displaced into the priority line, then dispatched by the mode's rule: P is free.
    assert w.queue("P") == ["V1"] and w.kwh(w.st.requests["V1"].wanted) == 15


def test_operator_totals_per_pile() -> None:
    w = World((pile(1, "S", COMMON, 7), pile(2, "F", FAST, 30)))
    w.request("06:00", "V1", COMMON, 7)  # S 06:00-07:00, valley
    w.request("06:00", "V2", COMMON, 14)  # S 07:00-09:00, flat
    w.request("06:00", "V3", FAST, 15)  # F 06:00-06:30
    w.cancel("08:00", "V2")  # 7 kWh received 07:00-08:00
    w.finish()
    s = w.st.pile_by_name["S"].totals
    assert s.sessions == 2
    assert w.hours(s.charging_ticks) == 2  # 1 h + 1 h
    assert w.kwh(s.energy) == 14
    assert w.yuan(s.charge_fee) == 7 * Fraction(4, 10) + 7 * Fraction(7, 10)  # 2.8 + 4.9
    assert w.yuan(s.service_fee) == 14 * Fraction(8, 10)
    f = w.st.pile_by_name["F"].totals
    assert (f.sessions, w.hours(f.charging_ticks), w.kwh(f.energy)) == (1, Fraction(1, 2), 15)
