"""Calling cars from the lines into pile queues: RULES §2 (`shortest`) and §7 (extended modes)."""

from __future__ import annotations

from collections.abc import Sequence
from math import lcm
from typing import Any, Protocol

from controller.assign import min_cost_assignment
from controller.values import Mode


# What dispatch needs of the station (controller.station provides it): the rules call dispatch,
# and dispatch calls cars through them, so it names its needs instead of importing the rules.
class Request(Protocol):
    wanted: int


class Pile(Protocol):
    index: int
    working: bool
    queue: list[Any]
    power_w: int


class Station(Protocol):
    piles: Sequence[Pile]
    places: int
    priority: dict[Mode, list[Any]]
    waiting_line: dict[Mode, list[Any]]
    waiting: list[Any]
    energy_guess: Any  # None unless quick estimates of the sessions' energy are at hand

    def working_piles(self, mode: Mode) -> Sequence[Pile]: ...

    def approx_finishes(self, wanted: int, piles: Any, now_tick: int) -> list[float]: ...

    def queue_end(self, pile: Any, now_tick: int) -> int: ...

    def duration(self, energy: int, pile: Any) -> int: ...

    def line(self, mode: Mode) -> list[Any]: ...

    def call(self, req: Any, pile: Any, now_tick: int) -> None: ...


def shortest(st: Station, mode: Mode, now_tick: int) -> None:
    """Call heads of the line while the pile that finishes the head soonest has a free place.

    Candidates are all working piles of the mode, full or not; ties go to the pile configured
    first. If the best pile is full, the head and everyone behind it wait (RULES §2).
    """
    piles = st.working_piles(mode)
    if not piles:
        return
    priority = st.priority[mode]
    waiting = st.waiting_line[mode]
    while priority or waiting:
        head = priority[0] if priority else waiting[0]
        if st.energy_guess is None:
            best = _soonest(st, head.wanted, piles, now_tick)
        elif all(len(pile.queue) >= st.places for pile in piles):
            return  # whichever pile is best, it is full
        else:
            best = _soonest(
                st, head.wanted, _near_soonest(st, head.wanted, piles, now_tick), now_tick
            )
        if len(best.queue) >= st.places:
            return
        st.call(head, best, now_tick)


def _soonest(st: Station, wanted: int, piles: Sequence[Pile], now_tick: int) -> Pile:
    """The pile that finishes `wanted` soonest; ties go to the first listed."""
    best = piles[0]
    if len(piles) > 1:
        best_finish = st.queue_end(best, now_tick) + st.duration(wanted, best)
        for pile in piles[1:]:
            finish = st.queue_end(pile, now_tick) + st.duration(wanted, pile)
            if finish < best_finish:
                best, best_finish = pile, finish
    return best


# Each estimate is a few dozen float roundings (2**-53 each) of values no larger than about
# twice the largest estimate (every estimate is at least now, and a session's energy so far
# took at most now), so it is off by far less than this share of the largest: a pile estimated
# further above the lowest estimate cannot be the soonest, nor tie with it.
_GUESS_MARGIN = 1e-9


def _near_soonest(st: Station, wanted: int, piles: Sequence[Pile], now_tick: int) -> Sequence[Pile]:
    """The piles, in configuration order, that may finish `wanted` soonest: under shared power
    exact times are fractions, slow to add up; float estimates rule the others out first."""
    guesses = st.approx_finishes(wanted, piles, now_tick)
    near = min(guesses) + _GUESS_MARGIN * max(guesses) + 1.0  # ticks
    return [pile for pile, guess in zip(piles, guesses, strict=True) if guess <= near]


def single_min_total(st: Station, mode: Mode, now_tick: int) -> None:
    """With k places of the mode free, call the first min(k, line) cars together so that the
    sum of their finish times is smallest (RULES §7 `single_min_total`)."""
    free = [
        (pile, st.places - len(pile.queue), st.queue_end(pile, now_tick))
        for pile in st.working_piles(mode)
        if len(pile.queue) < st.places
    ]
    k = sum(places for _, places, _ in free)
    cars = st.line(mode)[:k]
    if cars:
        _assign(st, cars, free, now_tick)


def batch_min_total(st: Station, now_tick: int) -> None:
    """When the charging area is empty and the cars present fill all of its places, assign them
    as one batch to any pile, modes ignored, for the smallest sum of finish times (RULES §7)."""
    working = [p for p in st.piles if p.working]
    if not working or any(p.queue for p in working):
        return  # the running batch is not done yet
    places = st.places * len(working)
    present = st.priority[Mode.FAST] + st.priority[Mode.COMMON] + st.waiting
    if len(present) < places:
        return
    _assign(st, present[:places], [(p, st.places, now_tick) for p in working], now_tick)


def _assign(
    st: Station, cars: list[Request], free: list[tuple[Pile, int, int]], now_tick: int
) -> None:
    """Place `cars` on the free places so that the sum of finish times is exactly smallest.

    A car that is the q-th from last of n new cars at a pile whose queue ends at `base` adds
    base + q * own to the sum (it delays the q - 1 after it), so each (pile, q) place is one
    column of an assignment problem. Costs rise with q, so a best answer never leaves a gap.
    Ties between equal sums go to piles configured first.
    """
    columns = [(pile, q, base) for pile, places, base in free for q in range(1, places + 1)]
    scale = len(cars) * (len(st.piles) + 1)
    finish = [
        [base - now_tick + q * st.duration(car.wanted, pile) for pile, q, base in columns]
        for car in cars
    ]
    # Under shared power (RULES §9) times may be fractions: in whole multiples of their common
    # denominator the costs are integers again, and the tie-break by pile stays below 1.
    unit = lcm(*(t.denominator for row in finish for t in row))
    cost = [
        [int(t * unit) * scale + pile.index for t, (pile, _, _) in zip(row, columns, strict=True)]
        for row in finish
    ]
    chosen = min_cost_assignment(cost)
    by_pile: dict[int, list[tuple[int, Request]]] = {}
    for car, col in zip(cars, chosen, strict=True):
        pile, q, _ = columns[col]
        by_pile.setdefault(pile.index, []).append((q, car))
    for index in sorted(by_pile):
        pile = st.piles[index]
        # The car farthest from the end (largest q) joins the queue first.
        for _, car in sorted(by_pile[index], key=lambda item: -item[0]):
            st.call(car, pile, now_tick)
