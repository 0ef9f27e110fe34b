"""RULES §1 (numbers, waiting area) and §2 (calling and dispatch)."""

from __future__ import annotations

import pytest

from controller.station import Refused
from tests.controller.harness import COMMON, FAST, World, pile

TWO_SLOW = (pile(1, "X", COMMON, 7), pile(2, "Y", COMMON, 7))


def test_numbers_count_per_mode_from_one_and_are_never_reset() -> None:
    w = World()
    assert w.request("06:00", "V1", FAST, 10).queue_no == "F1"
    assert w.request("06:00", "V2", COMMON, 10).queue_no == "T1"
    assert w.request("06:01", "V3", FAST, 10).queue_no == "F2"
    assert w.request("06:02", "V4", COMMON, 10).queue_no == "T2"
    # V1 got 10 kWh at 30 kW in 20 minutes and left at 06:20; coming back it gets F3, not F1.
    w.go("07:00")
    assert "V1" not in w.st.requests
    assert w.request("07:00", "V1", FAST, 10).queue_no == "F3"


def test_full_waiting_area_refuses_and_queues_nothing() -> None:
    w = World((pile(1, "S", COMMON, 7),), waiting_area_size=2, pile_queue_len=2)
    w.request("06:00", "V1", COMMON, 10)  # charging at S
    w.request("06:00", "V2", COMMON, 10)  # second place of S: not in the waiting area
    w.request("06:00", "V3", COMMON, 10)
    w.request("06:00", "V4", COMMON, 10)
    assert w.waiting() == ["V3", "V4"]  # N = 2 counts only these two
    with pytest.raises(Refused) as refused:
        w.request("06:01", "V5", COMMON, 10)
    assert refused.value.error == "waiting_area_full"
    assert "V5" not in w.st.requests
    assert w.waiting() == ["V3", "V4"]
    # The refused request used no number: the next one is T5.
    w.cancel("06:02", "V4")
    assert w.request("06:03", "V6", COMMON, 10).queue_no == "T5"


def test_a_car_already_in_the_station_cannot_ask_twice() -> None:
    w = World()
    w.request("06:00", "V1", FAST, 10)
    with pytest.raises(Refused) as refused:
        w.request("06:01", "V1", COMMON, 5)
    assert refused.value.error == "already_queued"
    assert w.line(COMMON) == [] and w.queue("A") == ["V1"]


def test_zero_amount_is_refused() -> None:
    w = World()
    with pytest.raises(Refused):
        w.st.request(0, "V1", FAST, 0)
    assert w.st.requests == {}


def test_head_waits_for_the_pile_that_finishes_it_soonest_even_if_another_is_free() -> None:
    w = World(TWO_SLOW)
    w.request("06:00", "V1", COMMON, 40)  # both empty: tie, X is listed first
    w.request("06:00", "V2", COMMON, 10)  # X: 40/7 + 10/7 h; Y: 10/7 h -> Y
    w.request("06:00", "V3", COMMON, 5)  # X: 45/7; Y: 10/7 + 5/7 = 15/7 -> Y (now full)
    w.request("06:00", "V4", COMMON, 5)  # X: 45/7; Y: 15/7 + 5/7 = 20/7 -> Y, full: V4 waits
    w.request("06:00", "V5", COMMON, 1)  # behind V4 it waits too, although X has a free place
    assert w.queues() == {"X": ["V1"], "Y": ["V2", "V3"]}
    assert w.waiting() == ["V4", "V5"]
    # V2 finishes at 06:00 + 10/7 h = 07:25:43 (rounded); only then does V4 get its place at Y:
    w.go("07:25")
    assert w.waiting() == ["V4", "V5"]
    w.go("07:26")
    # V4 at Y: V3's rest (5/7 h) + 5/7 = 10/7 h from 07:25:43, far sooner than X (V1 until 11:42).
    # V5 then: Y = V3 + V4 + 1/7 h, X = 40/7 - 10/7 + 1/7 h: Y again, and Y is full: V5 waits.
    assert w.queues() == {"X": ["V1"], "Y": ["V3", "V4"]}
    assert w.waiting() == ["V5"]


def test_ties_go_to_the_pile_listed_first() -> None:
    w = World((pile(7, "Q", COMMON, 7), pile(3, "P", COMMON, 7)))
    w.request("06:00", "V1", COMMON, 10)
    assert w.queue("Q") == ["V1"]  # equal finish times: Q comes first in the configuration
    w.request("06:00", "V2", COMMON, 10)
    assert w.queue("P") == ["V2"]


def test_each_car_goes_to_the_faster_pile_when_it_finishes_sooner() -> None:
    piles = (pile(1, "slow", FAST, 20), pile(2, "quick", FAST, 60))
    w = World(piles)
    w.request("06:00", "V1", FAST, 30)  # slow: 1.5 h, quick: 0.5 h -> quick
    w.request("06:00", "V2", FAST, 30)  # slow: 1.5 h, quick: 0.5 + 0.5 = 1 h -> quick
    w.request("06:00", "V3", FAST, 6)  # slow: 0.3 h, quick: 1 + 0.1 h, and quick is full anyway
    assert w.queues() == {"slow": ["V3"], "quick": ["V1", "V2"]}


def test_waiting_area_is_called_in_number_order_per_mode() -> None:
    w = World((pile(1, "S", COMMON, 7), pile(2, "F", FAST, 30)), pile_queue_len=1)
    for i, mode in enumerate([COMMON, FAST, COMMON, COMMON, FAST, FAST], start=1):
        w.request("06:00", f"V{i}", mode, 7 if mode is COMMON else 30)
    # Each car takes exactly one hour; each pile calls one car an hour, in number order per mode.
    w.go("09:30")
    assert [car for car, p in w.calls() if p == "S"] == ["V1", "V3", "V4"]  # T1, T2, T3
    assert [car for car, p in w.calls() if p == "F"] == ["V2", "V5", "V6"]  # F1, F2, F3


def test_modes_do_not_mix() -> None:
    w = World((pile(1, "S", COMMON, 7), pile(2, "F", FAST, 30)), pile_queue_len=1)
    w.request("06:00", "V1", FAST, 30)
    w.request("06:00", "V2", FAST, 30)
    assert w.queues() == {"S": [], "F": ["V1"]}
    assert w.waiting() == ["V2"]  # the free slow pile never takes a fast car
