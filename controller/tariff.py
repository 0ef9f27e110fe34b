"""Time-of-use tariff (RULES §6): which price is in force when, and the price of metered energy."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from typing import NamedTuple

from controller.units import SECONDS_PER_DAY, Units


class Period(NamedTuple):
    """One stretch of the day, [start_s, end_s) in seconds after midnight, at one price."""

    name: str
    start_s: int
    end_s: int
    price: int  # price units (1/10000 yuan) per kWh


class Tariff(NamedTuple):
    """Periods that cover the day exactly once, sorted by start, and the service price."""

    periods: tuple[Period, ...]
    service_price: int  # price units per kWh, charged on every kWh


# RULES §6: peak 1.0 (10-15, 18-21), flat 0.7 (7-10, 15-18, 21-23), valley 0.4 (23-7), service 0.8.
DEFAULT_PRICES_YUAN = {"peak": "1.0", "flat": "0.7", "valley": "0.4"}
DEFAULT_PERIODS = {
    "peak": ["10:00-15:00", "18:00-21:00"],
    "flat": ["07:00-10:00", "15:00-18:00", "21:00-23:00"],
    "valley": ["23:00-07:00"],
}
DEFAULT_SERVICE_YUAN = "0.8"


class TariffClock:
    """A tariff laid on the station's tick clock: splits metered energy at period boundaries."""

    def __init__(self, tariff: Tariff, units: Units) -> None:
        self.tariff = tariff
        self.units = units
        self._day = units.ticks_per_day
        self._starts = [units.ticks(p.start_s) for p in tariff.periods]
        self._ends = [units.ticks(p.end_s) for p in tariff.periods]
        self._prices = [p.price for p in tariff.periods]

    def spans(self, start_tick: int, end_tick: int) -> Iterator[tuple[int, int, int]]:
        """(from, to, price) pieces of [start_tick, end_tick), cut where the price may change.

        An instant on a boundary belongs to the period that starts there (REPLAY).
        """
        t = start_tick
        while t < end_tick:
            day, offset = divmod(t, self._day)
            i = bisect_right(self._starts, offset) - 1
            piece_end = min(end_tick, day * self._day + self._ends[i])
            yield t, piece_end, self._prices[i]
            t = piece_end

    def charge_fee(self, start_tick: int, end_tick: int, energy: int) -> int:
        """Fee units for `energy` delivered evenly over [start_tick, end_tick).

        RULES §6: energy between two readings that straddle a boundary is split in proportion to
        the time on each side. At constant power the split is exact; otherwise any remainder of
        the integer split goes to the last piece, so no energy is lost or counted twice.
        """
        if energy == 0:
            return 0
        duration = end_tick - start_tick
        if duration <= 0:
            # A reading with no time elapsed: price it at the period in force at that instant.
            return energy * self.price_at(start_tick)
        day, offset = divmod(start_tick, self._day)
        i = bisect_right(self._starts, offset) - 1
        if end_tick <= day * self._day + self._ends[i]:
            return energy * self._prices[i]  # within one period: the common case
        fee = 0
        left = energy
        pieces = list(self.spans(start_tick, end_tick))
        whole = type(energy) is int and type(duration) is int
        for a, b, price in pieces[:-1]:
            # Shared power (RULES §9) makes energy and time rational: then the split is exact.
            part = energy * (b - a) // duration if whole else energy * (b - a) / duration
            left -= part
            fee += part * price
        return fee + left * pieces[-1][2]

    def next_boundary(self, tick: int) -> int:
        """The first instant after tick at which a period starts."""
        day, offset = divmod(tick, self._day)
        return day * self._day + self._ends[bisect_right(self._starts, offset) - 1]

    def price_at(self, tick: int) -> int:
        offset = tick % self._day
        return self._prices[bisect_right(self._starts, offset) - 1]

    def service_fee(self, energy: int) -> int:
        return energy * self.tariff.service_price


def check_cover(periods: list[Period]) -> str | None:
    """None if the periods cover [0, 24h) exactly once, otherwise what is wrong."""
    at = 0
    for p in sorted(periods, key=lambda p: p.start_s):
        if p.start_s > at:
            return f"nothing covers {_hhmm(at)}-{_hhmm(p.start_s)}"
        if p.start_s < at:
            return f"{p.name} {_hhmm(p.start_s)}-{_hhmm(p.end_s)} overlaps another period"
        at = p.end_s
    if at != SECONDS_PER_DAY:
        return f"nothing covers {_hhmm(at)}-24:00"
    return None


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
