"""The station's one door: commands that read the clock themselves, plain views, and one
ordered event stream that every subscriber sees the same."""

from __future__ import annotations

from fractions import Fraction

import pytest

from controller.config import Config, StationSettings, parse_tariff
from controller.door import Door, PlaceChanged, Progress, Refused, StreamEvent
from controller.events import Called, ChargingStarted, Done, PileChanged, Queued, SessionEnded
from controller.live import ControlLoop, PileDevices
from controller.values import Mode, PileState
from firmware_sim.in_process import SimPile
from tests.controller.harness import FAST, pile
from tests.firmware_sim.fakes import FakeClock

SIX = 6 * 3600  # 06:00, valley price (RULES §6): 0.4 yuan/kWh, service 0.8 yuan/kWh


def station(places: int = 2, waiting: int = 6) -> tuple[Door, ControlLoop, FakeClock]:
    clock = FakeClock()
    clock.advance(SIX)
    cfg = Config(
        StationSettings(waiting_area_size=waiting, pile_queue_len=places),
        parse_tariff({}),
        (pile(1, "A", FAST, 30),),
    )
    loop = ControlLoop(cfg, {1: PileDevices(SimPile("A", 30_000, clock))}, clock)
    return Door(loop), loop, clock


def recorder(door: Door) -> list[tuple[int, StreamEvent]]:
    seen: list[tuple[int, StreamEvent]] = []
    door.subscribe(lambda seq, event: seen.append((seq, event)))
    return seen


def test_a_request_through_the_door_is_stamped_with_the_stations_own_clock() -> None:
    door, loop, clock = station()
    seen = recorder(door)
    clock.advance(90)
    view = door.request("V1", Mode.FAST, 10_000)
    # 06:01:30 in ticks: the door read the clock, the caller gave none.
    expected_tick = (SIX + 90) * loop.units.ticks_per_s
    assert [type(e) for _, e in seen] == [Queued, Called, ChargingStarted]
    assert all(e.now_tick == expected_tick for _, e in seen)
    assert [seq for seq, _ in seen] == [1, 2, 3]
    # The only pile was free: called and charging at once, nothing ahead, nothing charged yet.
    assert (view.queue_no, view.area, view.ahead, view.pile_id) == ("F1", "charging", 0, 1)
    assert (view.asked_kwh, view.charged_kwh, view.fee_yuan) == (10, 0, 0)


def test_every_subscriber_sees_one_order_even_when_a_subscriber_issues_a_command() -> None:
    door, _, _ = station(places=1)
    first: list[tuple[int, str]] = []
    second: list[tuple[int, str]] = []

    def cancelling(seq: int, event: StreamEvent) -> None:
        first.append((seq, type(event).__name__))
        # Reacting to V2's queueing with a command: its events must come after this one's.
        if isinstance(event, Queued) and event.car == "V2":
            door.switch_off(1)

    door.subscribe(cancelling)
    door.subscribe(lambda seq, event: second.append((seq, type(event).__name__)))
    door.request("V1", Mode.FAST, 5_000)
    door.request("V2", Mode.FAST, 5_000)
    assert first == second  # the same events, numbered alike, in the same order
    names = [name for _, name in first]
    queued_v2 = names.index("Queued", 1)
    # V2's Queued is told in full before the switch-off's bill and pile change that it caused.
    assert names[queued_v2 + 1 : queued_v2 + 3] == ["SessionEnded", "PileChanged"]
    assert [seq for seq, _ in first] == list(range(1, len(first) + 1))


def test_a_broken_subscriber_does_not_silence_the_others() -> None:
    door, _, _ = station()

    def broken(seq: int, event: StreamEvent) -> None:
        raise RuntimeError("listener bug")

    door.subscribe(broken)
    seen = recorder(door)
    door.request("V1", Mode.FAST, 1_000)
    assert len(seen) == 3


def test_unsubscribed_listeners_hear_nothing_more() -> None:
    door, _, _ = station()
    seen: list[StreamEvent] = []
    stop = door.subscribe(lambda seq, event: seen.append(event))
    door.request("V1", Mode.FAST, 1_000)
    stop()
    door.request("V2", Mode.FAST, 1_000)
    assert [e.car for e in seen if isinstance(e, Queued)] == ["V1"]


@pytest.mark.asyncio
async def test_progress_and_a_bill_come_through_the_stream_with_exact_amounts() -> None:
    door, loop, clock = station()
    seen = recorder(door)
    door.request("V1", Mode.FAST, 10_000)
    await loop.tick()  # the pile is switched on
    clock.advance(600)  # 30 kW for 10 min: 5 kWh
    await loop.tick()
    door.progress()
    progress = [e for _, e in seen if isinstance(e, Progress)]
    assert len(progress) == 1 and progress[0].car == "V1"
    assert door.units.kwh(progress[0].energy) == 5
    # 5 kWh * (0.4 + 0.8) yuan = 6 yuan
    assert door.units.yuan(progress[0].fee) == 6
    view = door.request_of("V1")
    assert view is not None and (view.charged_kwh, view.remaining_kwh) == (5, 5)
    bill = await door.cancel("V1")
    assert bill is not None
    shown = door.bill_view(bill)
    assert (shown.energy_kwh, shown.charge_fee_yuan, shown.service_fee_yuan) == (5, 2, 4)
    assert shown.duration_h == Fraction(1, 6)  # ten minutes
    kinds = [type(e) for _, e in seen]
    assert kinds[-2:] == [SessionEnded, Done]
    assert door.request_of("V1") is None


@pytest.mark.asyncio
async def test_operator_commands_and_their_refusals() -> None:
    door, loop, _ = station(places=1)
    seen = recorder(door)
    door.request("V1", Mode.FAST, 5_000)
    door.request("V2", Mode.FAST, 5_000)
    assert [v.queue_no for v in door.queues().waiting] == ["F2"]
    with pytest.raises(Refused) as refused:
        door.switch_on(1)  # it works already
    assert refused.value.error == "pile_working"
    door.switch_off(1)
    (pile_now,) = door.piles()
    assert pile_now.state is PileState.OFF and pile_now.queue == ()
    assert PileChanged in [type(e) for _, e in seen]
    # V1, charging at the pile, waits in the fast priority line now (RULES §4); V2 still waits.
    assert [v.car for v in door.queues().priority[Mode.FAST]] == ["V1"]
    with pytest.raises(Refused) as refused:
        await door.stop_session(1)
    assert refused.value.error == "no_session"
    with pytest.raises(Refused) as refused:
        door.switch_off(9)
    assert refused.value.error == "unknown_pile"
    door.switch_on(1)
    await loop.tick()
    car, bill = await door.stop_session(1)
    assert car == "V1" and bill is not None
    with pytest.raises(Refused) as refused:
        door.change("V1", Mode.COMMON)
    assert refused.value.error == "not_in_station"


def test_a_change_is_refused_once_called() -> None:
    door, _, _ = station()
    door.request("V1", Mode.FAST, 5_000)
    with pytest.raises(Refused) as refused:
        door.change("V1", energy_wh=8_000)
    assert refused.value.error == "not_in_waiting_area"
    view = door.request_of("V1")
    assert view is not None and view.asked_kwh == 5  # unchanged


def test_aheads_counts_the_line_and_the_pile_queue() -> None:
    door, _, _ = station(places=2)
    for car in ("V1", "V2", "V3", "V4"):
        door.request(car, Mode.FAST, 5_000)
    # V1 charges, V2 is second at the pile (M = 2), V3 and V4 wait in the fast line.
    assert door.aheads(["V1", "V2", "V3", "V4", "nobody"]) == {"V1": 0, "V2": 1, "V3": 0, "V4": 1}


def test_a_place_change_is_told_for_every_car_whose_cars_ahead_moved() -> None:
    door, _, _ = station(places=1)
    seen = recorder(door)
    for car in ("V1", "V2", "V3"):
        door.request(car, Mode.FAST, 5_000)
    assert [e for _, e in seen if isinstance(e, PlaceChanged)] == []  # a new car is not moved
    door.switch_off(1)
    # V1 leaves the pile for the priority line, which is served first (RULES §4): V2 and V3,
    # waiting 0 and 1 cars behind nobody, now have V1 ahead of them: 1 and 2.
    moved = {e.car: e.ahead for _, e in seen if isinstance(e, PlaceChanged)}
    assert moved == {"V2": 1, "V3": 2}
    assert door.aheads(["V1", "V2", "V3"]) == {"V1": 0, "V2": 1, "V3": 2}
