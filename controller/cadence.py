"""When the control loop ticks: every poll_s of station time, and sooner when a session should
reach its amount, so a completion is seen promptly even at bench speed-ups. Such an early tick
reads only the piles whose sessions are due: the next car's start waits for one pile's answer,
not for every pile's. Ticks that did not happen are counted, for the loop's health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from controller.station import Station
from controller.units import Units

log = logging.getLogger(__name__)


class Ticking(Protocol):
    """The control loop as its cadence drives it."""

    station: Station
    units: Units
    ticks_missed: int

    def now_tick(self) -> int: ...

    async def tick(self, only: list[int] | None = None) -> None: ...

    def watched(self, duration_s: float, ok: bool) -> None: ...

    async def sleep(self, stop: asyncio.Event, real_s: float) -> bool: ...


class Cadence:
    def __init__(self, loop: Ticking, poll_s: float, scale: float) -> None:
        self.loop = loop
        self.poll_s = poll_s
        self.scale = scale

    async def run(self, stop: asyncio.Event, on_tick: Callable[[], None] | None) -> None:
        loop, scale = self.loop, self.scale
        clock = asyncio.get_running_loop().time
        full_due = 0.0  # when every pile is read next (event loop time)
        only: list[int] | None = None
        period_s = self.poll_s / scale
        while not stop.is_set():
            started = clock()
            full = only is None or started >= full_due
            if full and full_due and started - full_due >= period_s:
                loop.ticks_missed += int((started - full_due) // period_s)
            ok = False
            try:
                await loop.tick(None if full else only)
            except Exception:  # task boundary: a failed tick is logged; the next one runs
                log.exception("control loop: tick failed")
                loop.ticks_missed += 1
            else:
                ok = True
                if on_tick is not None:
                    on_tick()
            took_s = clock() - started
            if full and took_s >= period_s:  # it ran over: the periods it took had no tick
                loop.ticks_missed += int(took_s // period_s)
            loop.watched(took_s, ok)
            if full:
                full_due = clock() + period_s
            wait_s, only = self.next_wake(max(0.0, full_due - clock()) * scale)
            if await loop.sleep(stop, wait_s / scale) and only is None:
                only = []  # woken for a new session: its pile is read and commanded

    def next_wake(self, until_full_s: float) -> tuple[float, list[int] | None]:
        """Station seconds to the next tick, and the piles it reads (None: all of them)."""
        loop = self.loop
        now = loop.now_tick()
        due: list[tuple[float, int]] = []
        for pile in loop.station.piles:
            if pile.meter is not None:
                until_s = (pile.end_estimate - now) / loop.units.ticks_per_s
                if 0 < until_s < until_full_s:
                    due.append((until_s, pile.id))
        if not due:
            return until_full_s, None
        first_s = min(until_s for until_s, _ in due)
        # Sessions due within a millisecond of the first are read by the same tick.
        return first_s, [pile_id for until_s, pile_id in due if until_s <= first_s + 0.001]
