"""RULES §4: faults under both policies, the interrupted car, recovery and switching piles."""

from __future__ import annotations

from fractions import Fraction

import pytest

from controller.billing import EndReason
from controller.station import Refused
from controller.values import FaultPolicy, PileState
from tests.controller.harness import COMMON, FAST, World, pile

TWO_FAST = (pile(1, "F1", FAST, 30), pile(2, "F2", FAST, 30))
THREE_FAST = (*TWO_FAST, pile(3, "F3", FAST, 30))


def test_priority_policy_bills_the_interrupted_car_and_serves_the_priority_line_first() -> None:
    w = World(TWO_FAST)
    w.request("06:00", "V1", FAST, 60)  # F1 06:00-08:00
    w.request("06:00", "V2", FAST, 60)  # F2 06:00-08:00
    w.request("06:00", "V3", FAST, 30)  # F1: 2 h + 1 h, F2: 2 h + 1 h: tie -> F1
    w.request("06:00", "V4", FAST, 30)  # F1: 4 h, F2: 3 h -> F2
    w.request("06:00", "V5", FAST, 10)  # both full: waits
    bill = w.fault("07:00", "F1")
    # 1. V1 stops with a bill for 06:00-07:00 at 30 kW: 30 kWh, valley price 0.4, service 0.8.
    assert bill is not None and bill.reason is EndReason.FAULT and bill.car == "V1"
    assert w.kwh(bill.energy) == 30
    assert w.yuan(bill.total_fee) == Fraction(30 * 12, 10)
    # 2. V1 still wants 60 - 30 = 30 kWh and keeps F1.
    v1 = w.st.requests["V1"]
    assert (v1.queue_no, w.kwh(v1.wanted)) == ("F1", 30)
    # 3. priority: V1 first, then the rest of F1's queue in order; the faulted pile is empty.
    assert w.priority(FAST) == ["V1", "V3"]
    assert w.queue("F1") == [] and w.st.pile_by_name["F1"].state is PileState.FAULT
    assert w.waiting() == ["V5"]
    # 4. At 08:00 V2 ends and V4 starts at F2; the place goes to V1, not to V5.
    w.go("08:00")
    assert w.queue("F2") == ["V4", "V1"] and w.priority(FAST) == ["V3"]
    w.go("09:00")  # V4 done: V1 charges, V3 is called; V5 still waits for the priority line
    assert w.queue("F2") == ["V1", "V3"] and w.waiting() == ["V5"]
    w.go("10:00")  # V1 got its other 30 kWh: a second bill with its own id
    v1_bills = w.bills_of("V1")
    assert [w.kwh(b.energy) for b in v1_bills] == [30, 30]
    assert v1_bills[0].bill_id != v1_bills[1].bill_id
    assert w.queue("F2") == ["V3", "V5"]


def test_time_order_policy_merges_waiting_cars_of_the_mode_by_number() -> None:
    w = World(THREE_FAST, fault_policy=FaultPolicy.TIME_ORDER)
    for car, kwh in [("V1", 60), ("V2", 60), ("V3", 60), ("V4", 30), ("V5", 30), ("V6", 30)]:
        w.request("06:00", car, FAST, kwh)  # numbers F1..F6
    w.request("06:00", "V7", FAST, 30)
    assert w.queues() == {"F1": ["V1", "V4"], "F2": ["V2", "V5"], "F3": ["V3", "V6"]}
    w.fault("07:00", "F2")
    # Out: F2's cars (V2 interrupted, V5) and the cars not yet charging at F1 and F3 (V4, V6),
    # sorted by number: V2 (F2), V4 (F4), V5 (F5), V6 (F6). Then dispatch, at 07:00:
    #   V2 (1 h): F1 08:00 + 1 = 09:00, F3 the same -> tie, F1.
    #   V4 (1 h): F1 09:00 + 1 = 10:00, F3 08:00 + 1 = 09:00 -> F3.
    #   V5: F1 10:00 and F3 10:00, tie on F1, which is full: V5 and V6 wait.
    assert w.queues() == {"F1": ["V1", "V2"], "F2": [], "F3": ["V3", "V4"]}
    assert w.priority(FAST) == ["V5", "V6"]
    assert w.waiting() == ["V7"]


def test_priority_policy_leaves_the_other_piles_alone() -> None:
    w = World(THREE_FAST, fault_policy=FaultPolicy.PRIORITY)
    for car, kwh in [("V1", 60), ("V2", 60), ("V3", 60), ("V4", 30), ("V5", 30), ("V6", 30)]:
        w.request("06:00", car, FAST, kwh)
    w.fault("07:00", "F2")
    assert w.queues() == {"F1": ["V1", "V4"], "F2": [], "F3": ["V3", "V6"]}
    assert w.priority(FAST) == ["V2", "V5"]


def test_recovery_regroups_the_cars_not_yet_charging() -> None:
    w = World(THREE_FAST, fault_policy=FaultPolicy.TIME_ORDER)
    for car, kwh in [("V1", 60), ("V2", 60), ("V3", 60), ("V4", 30), ("V5", 30), ("V6", 30)]:
        w.request("06:00", car, FAST, kwh)
    w.request("06:00", "V7", FAST, 30)
    w.fault("07:00", "F2")  # as in the test above: F1 [V1, V2], F3 [V3, V4], priority V5, V6
    w.recover("07:30", "F2")
    # Out again: V2 (F1) and V4 (F3) join V5 and V6, sorted: V2, V4, V5, V6. Dispatch at 07:30:
    #   V2 (30 kWh left, 1 h): F1 09:00, F2 08:30, F3 09:00 -> F2.
    #   V4: F1 09:00, F2 09:30, F3 09:00 -> tie, F1.
    #   V5: F2 09:30, F3 09:00 (F1 full) -> F3.
    #   V6: F1 10:00 (full), F2 09:30, F3 10:00 (full) -> F2. V7 waits: every pile is full.
    assert w.queues() == {"F1": ["V1", "V4"], "F2": ["V2", "V6"], "F3": ["V3", "V5"]}
    assert w.priority(FAST) == [] and w.waiting() == ["V7"]


def test_fault_of_an_empty_pile_only_marks_it() -> None:
    w = World(TWO_FAST)
    w.request("06:00", "V1", FAST, 30)
    assert w.fault("06:10", "F2") is None
    assert w.st.pile_by_name["F2"].state is PileState.FAULT
    assert w.queues() == {"F1": ["V1"], "F2": []} and w.bills == []


def test_a_faulted_or_off_pile_never_receives_a_car() -> None:
    w = World(TWO_FAST)
    w.fault("06:00", "F1")
    w.st.switch_off(w.go("06:00"), w.st.pile_by_name["F2"].id)
    for i in range(4):
        w.request("06:01", f"V{i}", FAST, 10)
    assert w.queues() == {"F1": [], "F2": []}
    assert w.waiting() == ["V0", "V1", "V2", "V3"]
    w.st.switch_on(w.go("06:30"), w.st.pile_by_name["F2"].id)
    assert w.queue("F2") == ["V0", "V1"]


def test_repeated_pile_events_are_refused() -> None:
    w = World(TWO_FAST)
    with pytest.raises(Refused):
        w.recover("06:00", "F1")  # it is working
    w.fault("06:00", "F1")
    with pytest.raises(Refused):
        w.fault("06:01", "F1")  # it is already faulted
    with pytest.raises(Refused):
        w.st.switch_on(w.go("06:02"), w.st.pile_by_name["F1"].id)  # a fault is not "off"


def test_a_fault_stops_only_its_own_mode() -> None:
    w = World((pile(1, "F", FAST, 30), pile(2, "S", COMMON, 7)))
    w.request("06:00", "V1", COMMON, 7)
    w.request("06:00", "V2", FAST, 30)
    w.fault("06:30", "F")
    assert w.queue("S") == ["V1"] and w.charging("S") == "V1"
    assert w.priority(FAST) == ["V2"] and w.priority(COMMON) == []
