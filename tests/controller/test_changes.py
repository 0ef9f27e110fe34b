"""RULES §3: changes in the waiting area, refusals elsewhere, and cancelling anywhere."""

from __future__ import annotations

from fractions import Fraction

import pytest

from controller.billing import EndReason
from controller.station import Refused
from tests.controller.harness import COMMON, FAST, World, pile

ONE_EACH = (pile(1, "F", FAST, 30), pile(2, "S", COMMON, 7))


def busy_world() -> World:
    """One fast and one slow pile with one place each, both busy, and three cars waiting."""
    w = World(ONE_EACH, pile_queue_len=1)
    w.request("06:00", "V1", FAST, 60)  # F until 08:00
    w.request("06:00", "V2", COMMON, 70)  # S until 16:00
    w.request("06:01", "V3", COMMON, 7)  # T2
    w.request("06:02", "V4", FAST, 30)  # F2
    w.request("06:03", "V5", COMMON, 14)  # T3
    return w


def test_mode_change_gives_a_new_number_at_the_end_of_the_new_line() -> None:
    w = busy_world()
    req = w.change("06:10", "V3", mode=FAST)
    assert req.queue_no == "F3"  # F1 and F2 are taken: the next fast number
    assert w.line(FAST) == ["V4", "V3"]  # behind V4 (F2)
    assert w.line(COMMON) == ["V5"]
    assert w.waiting() == ["V3", "V4", "V5"]  # the waiting area keeps arrival order
    assert req.wanted == w.e(7)  # the amount is unchanged
    # At 08:00 F frees: V4 (F2) is called before V3 (F3).
    w.go("08:00")
    assert w.queue("F") == ["V4"]


def test_amount_change_keeps_number_and_place() -> None:
    w = busy_world()
    req = w.change("06:10", "V3", kwh="3.5")
    assert req.queue_no == "T2"
    assert w.line(COMMON) == ["V3", "V5"]
    assert req.wanted == w.e("3.5")


def test_mode_and_amount_change_together() -> None:
    w = busy_world()
    req = w.change("06:10", "V5", mode=FAST, kwh=15)
    assert (req.queue_no, req.wanted) == ("F3", w.e(15))
    assert w.line(FAST) == ["V4", "V5"]


def test_change_to_the_current_mode_keeps_the_number() -> None:
    w = busy_world()
    assert w.change("06:10", "V3", mode=COMMON).queue_no == "T2"
    assert w.line(COMMON) == ["V3", "V5"]


@pytest.mark.parametrize("car", ["V1", "V2"])
def test_change_in_a_pile_queue_is_refused(car: str) -> None:
    w = busy_world()
    before = (w.queues(), w.waiting(), w.st.requests[car].wanted)
    with pytest.raises(Refused) as refused:
        w.change("06:10", car, kwh=5)
    assert refused.value.error == "not_in_waiting_area"
    assert (w.queues(), w.waiting(), w.st.requests[car].wanted) == before


def test_change_in_the_priority_line_is_refused_and_cancel_allowed() -> None:
    w = busy_world()
    w.fault("06:30", "S")  # V2 (charging) goes to the priority line with what it still wants
    assert w.priority(COMMON) == ["V2"]
    with pytest.raises(Refused):
        w.change("06:31", "V2", mode=FAST)
    assert w.priority(COMMON) == ["V2"] and w.st.requests["V2"].mode is COMMON
    bills_before = len(w.bills)
    w.cancel("06:32", "V2")  # no bill: it is not charging
    assert w.priority(COMMON) == [] and len(w.bills) == bills_before


def test_change_to_zero_is_refused() -> None:
    w = busy_world()
    with pytest.raises(Refused):
        w.st.change(w.go("06:10"), "V3", None, 0)
    assert w.st.requests["V3"].wanted == w.e(7)


def test_change_or_cancel_of_an_unknown_car_is_refused() -> None:
    w = busy_world()
    with pytest.raises(Refused):
        w.change("06:10", "V9", kwh=5)
    with pytest.raises(Refused):
        w.cancel("06:10", "V9")


def test_cancel_in_the_waiting_area_frees_its_place_without_a_bill() -> None:
    w = busy_world()
    assert w.cancel("06:10", "V3") is None
    assert w.waiting() == ["V4", "V5"] and w.bills == []


def test_cancel_of_a_charging_car_bills_what_it_received_and_calls_the_next() -> None:
    w = busy_world()
    bill = w.cancel("07:00", "V1")
    # V1 charged 06:00-07:00 at 30 kW: 30 kWh; valley (0.4) until 07:00, service 0.8.
    assert bill is not None and bill.reason is EndReason.CANCELLED
    assert w.kwh(bill.energy) == 30
    assert w.yuan(bill.charge_fee) == Fraction(30 * 4, 10)
    assert w.yuan(bill.service_fee) == Fraction(30 * 8, 10)
    assert w.queue("F") == ["V4"] and w.charging("F") == "V4"


def test_cancel_of_a_called_car_not_yet_charging_frees_the_place() -> None:
    w = World(ONE_EACH, pile_queue_len=2)
    w.request("06:00", "V1", FAST, 60)
    w.request("06:00", "V2", FAST, 30)  # second place at F
    w.request("06:00", "V3", FAST, 30)  # waits
    assert w.queue("F") == ["V1", "V2"]
    assert w.cancel("06:05", "V2") is None
    assert w.queue("F") == ["V1", "V3"] and w.waiting() == []
