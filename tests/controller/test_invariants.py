"""Property tests: random days of requests, changes, cancels, faults and recoveries, with the
station's invariants checked after every single event."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.events import Called, Done
from controller.replay.output import bill_json
from controller.station import Area, Refused
from controller.values import Dispatch, FaultPolicy, PileState
from tests.controller.harness import COMMON, FAST, World, pile

PILES = (
    pile(1, "F1", FAST, 30),
    pile(2, "F2", FAST, 60),
    pile(3, "T1", COMMON, 7),
    pile(4, "T2", COMMON, 7),
    pile(5, "T3", COMMON, 11),
)
CARS = [f"V{i}" for i in range(12)]

request = st.tuples(
    st.just("request"), st.sampled_from(CARS), st.sampled_from([FAST, COMMON]), st.integers(1, 80)
)
change = st.tuples(
    st.just("change"),
    st.sampled_from(CARS),
    st.sampled_from([None, FAST, COMMON]),
    st.one_of(st.none(), st.integers(0, 60)),
)
# Requests are drawn most often so that lines and pile queues fill up.
op = st.one_of(
    request,
    request,
    request,
    change,
    st.tuples(st.just("cancel"), st.sampled_from(CARS)),
    st.tuples(st.just("fault"), st.integers(0, len(PILES) - 1)),
    st.tuples(st.just("recover"), st.integers(0, len(PILES) - 1)),
    st.tuples(st.just("wait"), st.integers(1, 240)),  # minutes
)


def check(w: World, n: int, m: int) -> None:
    st_ = w.st
    # Every car in the station is in exactly one place, and that place agrees with its area.
    places: dict[str, list[str]] = defaultdict(list)
    for r in st_.waiting:
        places[r.car].append("waiting")
        assert r.area is Area.WAITING and r in st_.waiting_line[r.mode]
    for mode in (FAST, COMMON):
        assert sorted(r.car for r in st_.waiting_line[mode]) == sorted(
            r.car for r in st_.waiting if r.mode is mode
        )
        numbers = [r.number for r in st_.waiting_line[mode]]
        assert numbers == sorted(numbers)  # the waiting line is in number order
        for r in st_.priority[mode]:
            places[r.car].append("priority")
            assert r.area is Area.PRIORITY and r.mode is mode
    for p in st_.piles:
        assert len(p.queue) <= m
        if p.state is not PileState.WORKING:
            assert p.queue == [] and p.meter is None  # a faulted or off pile holds no car
        for i, r in enumerate(p.queue):
            places[r.car].append(p.name)
            assert r.area is Area.QUEUE and r.pile is p
            if st_.dispatch_mode is not Dispatch.BATCH_MIN_TOTAL:
                assert r.mode is p.mode
            if i > 0:
                assert p.charging() is not r  # only the head charges
        if p.queue and p.state is PileState.WORKING:
            assert p.meter is not None  # the simulator plugs in at once: the head charges
    assert len(st_.waiting) <= n
    assert set(places) == set(st_.requests)
    assert all(len(where) == 1 for where in places.values()), places
    assert all(r.wanted > 0 for r in st_.requests.values())


def check_energy_and_money(w: World) -> None:
    running = sum(p.port.session_energy(w.now) for p in w.st.piles if p.meter is not None)
    metered = sum(model.meter for model in w.replay.models.values())
    billed = sum(b.energy for b in w.bills)
    assert metered == billed + running  # every delivered Wh is billed exactly once
    ids = [b.bill_id for b in w.bills]
    assert len(set(ids)) == len(ids)
    power = {p.id: p.power_w for p in w.st.piles}
    clock = w.st.tariff
    for b in w.bills:
        # Simulated piles draw their rated power: the energy is power x time, capped only at the
        # car's amount, and the charging fee is each piece of time at its own price.
        assert b.energy <= power[b.pile_id] * (b.end_tick - b.start_tick)
        duration = b.end_tick - b.start_tick
        fee = 0
        if duration:
            pieces = list(clock.spans(b.start_tick, b.end_tick))
            shares = [b.energy * (y - x) // duration for x, y, _ in pieces]
            shares[-1] = b.energy - sum(shares[:-1])
            fee = sum(s * price for s, (_, _, price) in zip(shares, pieces, strict=True))
        assert b.charge_fee == fee
        assert b.service_fee == b.energy * w.config.tariff.service_price
        shown = bill_json(w.u, b)
        assert round(shown["costOfCharge"] + shown["costOfService"], 2) == shown["cost"]


def check_calls(w: World) -> None:
    """Cars are called from the waiting area in number order, per mode. Extended dispatch calls
    several cars at one instant, in any order among them, but never one older than a car called
    at an earlier instant."""
    before: dict[str, int] = {}  # highest number called at earlier instants
    now_tick, at_now = -1, {}
    for e in w.events:
        if isinstance(e, Called) and not e.from_priority:
            if e.now_tick != now_tick:
                for letter, number in at_now.items():
                    before[letter] = max(before.get(letter, 0), number)
                now_tick, at_now = e.now_tick, {}
            letter, number = e.queue_no[0], int(e.queue_no[1:])
            assert number > before.get(letter, 0), (e, before)
            at_now[letter] = max(at_now.get(letter, 0), number)
            if w.st.dispatch_mode is Dispatch.SHORTEST:
                before[letter] = number  # one car at a time: strictly increasing


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    ops=st.lists(op, min_size=10, max_size=60),
    policy=st.sampled_from(list(FaultPolicy)),
    dispatch=st.sampled_from(list(Dispatch)),
    n=st.integers(1, 6),
    m=st.integers(1, 3),
)
def test_invariants_hold_after_every_event(
    ops: list[tuple], policy: FaultPolicy, dispatch: Dispatch, n: int, m: int
) -> None:
    w = World(PILES, waiting_area_size=n, pile_queue_len=m, fault_policy=policy, dispatch=dispatch)
    minute = w.u.ticks(60)
    accepted: set[str] = set()
    for o in ops:
        now = w.now
        try:
            if o[0] == "request":
                w.st.request(now, o[1], o[2], w.e(o[3]))
                accepted.add(o[1])
            elif o[0] == "change":
                w.st.change(now, o[1], o[2], None if o[3] is None else w.e(o[3]))
            elif o[0] == "cancel":
                w.st.cancel(now, o[1])
            elif o[0] == "fault":
                w.st.fault(now, PILES[o[1]].id)
            elif o[0] == "recover":
                w.st.recover(now, PILES[o[1]].id)
            else:
                w.now = now + o[1] * minute
                w.replay.advance(w.now)
        except Refused:
            pass
        check(w, n, m)
        check_energy_and_money(w)
    # Every working pile of a mode serves its line to the end.
    for p in w.st.piles:
        if p.state is not PileState.WORKING:
            w.st.recover(w.now, p.id)
    w.finish()
    check(w, n, m)
    check_energy_and_money(w)
    check_calls(w)
    if dispatch is not Dispatch.BATCH_MIN_TOTAL:
        # Nobody is lost: every car that was accepted completed or was cancelled.
        assert w.st.requests == {}
        finished = {e.car for e in w.events if isinstance(e, Done)}
        assert accepted <= finished
