"""RULES §5 and REPLAY "Order of things at one instant": completions, then pile events, then
user events, with dispatch after each."""

from __future__ import annotations

from controller.config import Config, StationSettings, parse_tariff
from controller.replay.runner import replay
from controller.replay.scenario import parse_scenario
from tests.controller.harness import COMMON, World, pile

TWO_SLOW = (pile(1, "S1", COMMON, 7), pile(2, "S2", COMMON, 7))


def run(text: str, piles=TWO_SLOW, waiting_area_size: int = 6, pile_queue_len: int = 2):
    config = Config(StationSettings(waiting_area_size, pile_queue_len), parse_tariff({}), piles)
    return replay(config, parse_scenario(text))


def test_a_completion_at_t_frees_the_waiting_area_before_a_request_at_t() -> None:
    # One pile, one place, N = 1. V1 (7 kWh at 7 kW) ends at exactly 07:00; V2 then leaves the
    # waiting area for the pile, so V3's request at 07:00 finds room.
    result = run(
        """
        06:00 (A,V1,T,7)
        06:30 (A,V2,T,7)
        07:00 (A,V3,T,7)
        """,
        piles=(pile(1, "S", COMMON, 7),),
        waiting_area_size=1,
        pile_queue_len=1,
    )
    assert result.refused == []
    last = result.snapshots[-1]
    assert [c.car for c in last.piles[0].cars] == ["V2"]
    assert [c.car for c in last.waiting] == ["V3"]


def test_a_fault_at_the_instant_a_session_completes_comes_after_the_completion() -> None:
    result = run(
        """
        06:00 (A,V1,T,7)
        07:00 (B,S1,O,0)
        """
    )
    (bill,) = result.bills
    assert bill.car == "V1" and result.units.kwh(bill.energy) == 7
    assert bill.reason.value == "completed"
    assert result.snapshots[-1].priority == ()


def test_pile_events_come_before_user_events_of_the_same_instant_whatever_the_file_order() -> None:
    result = run(
        """
        06:00 (A,V1,T,14)
        06:10 (A,V2,T,7)
        06:10 (B,S2,O,0)
        """
    )
    # With S2 faulted first, V2 can only join S1. Had it arrived first, it would have gone to
    # the empty S2 and then been displaced into the priority line.
    last = result.snapshots[-1]
    assert [c.car for c in last.piles[0].cars] == ["V1", "V2"]
    assert last.piles[1].state == "fault"
    assert last.priority == ()
    # The snapshot lists the instant's events in file order.
    assert last.events == ("(A,V2,T,7)", "(B,S2,O,0)")


def test_a_session_stopped_the_instant_it_started_still_gives_a_bill() -> None:
    result = run(
        """
        06:00 (A,V1,T,7)
        06:00 (A,V2,T,7)
        06:00 (A,V3,T,7)
        07:00 (B,S1,O,0)
        """
    )
    # V1 -> S1, V2 -> S2, V3 -> S1 (tie at 2 h each, S1 first). At 07:00 V1 and V2 complete
    # (S1 first), V3 starts at S1, and the fault stops it at once: a bill of 0 kWh.
    cars = [(b.car, b.pile_name, result.units.kwh(b.energy)) for b in result.bills]
    assert cars == [("V1", "S1", 7), ("V2", "S2", 7), ("V3", "S1", 0), ("V3", "S2", 7)]


def test_completions_at_one_instant_are_settled_in_configuration_order() -> None:
    w = World(TWO_SLOW)
    w.request("06:00", "V1", COMMON, 7)
    w.request("06:00", "V2", COMMON, 7)
    w.go("07:00")
    assert [b.pile_name for b in w.bills] == ["S1", "S2"]
