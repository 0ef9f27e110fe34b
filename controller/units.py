"""The station's exact units: integer ticks of time and integer energy, fixed by the pile powers.

Exactness (REPLAY "Arithmetic") without rationals on the hot path: one tick is 1/D second, where
D is the least common multiple of every pile's rated power in whole watts, and one energy unit is
one watt for one tick (1/D joule). A pile of P watts then delivers exactly P units per tick, and
any amount in whole Wh takes exactly amount_units / P ticks, an integer, because P divides D.
Everything stays an integer; fractions appear only when a value is shown.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import lcm
from typing import NamedTuple

SECONDS_PER_DAY = 86_400
J_PER_KWH = 3_600_000

# Prices are held in 1/10000 yuan (0.01 fen) per kWh: every tariff a station publishes fits.
PRICE_UNITS_PER_YUAN = 10_000


class Units(NamedTuple):
    """Conversions between the station's integer units and the units people read."""

    ticks_per_s: int

    @classmethod
    def for_powers(cls, powers_w: list[int]) -> Units:
        return cls(ticks_per_s=lcm(*powers_w) if powers_w else 1)

    # -- time --------------------------------------------------------------------------------
    def ticks(self, seconds: int) -> int:
        return seconds * self.ticks_per_s

    def seconds(self, ticks: int) -> Fraction:
        return Fraction(ticks, self.ticks_per_s)

    def hours(self, ticks: int) -> Fraction:
        return Fraction(ticks, self.ticks_per_s * 3600)

    @property
    def ticks_per_day(self) -> int:
        return SECONDS_PER_DAY * self.ticks_per_s

    # -- energy ------------------------------------------------------------------------------
    @property
    def energy_per_wh(self) -> int:
        return 3600 * self.ticks_per_s

    @property
    def energy_per_kwh(self) -> int:
        return J_PER_KWH * self.ticks_per_s

    def energy_from_wh(self, energy_wh: int) -> int:
        return energy_wh * self.energy_per_wh

    def energy_from_kwh(self, kwh: Decimal | Fraction | int) -> int:
        """Exact energy for an amount in kWh; ValueError if it is not a whole number of Wh."""
        wh = Fraction(kwh) * 1000
        if wh.denominator != 1:
            raise ValueError(f"{kwh} kWh is not a whole number of Wh")
        return int(wh) * self.energy_per_wh

    def kwh(self, energy: int) -> Fraction:
        return Fraction(energy, self.energy_per_kwh)

    def wh_floor(self, energy: int) -> int:
        return energy // self.energy_per_wh

    @staticmethod
    def duration_ticks(energy: int, power_w: int) -> int:
        """Ticks a pile of power_w needs to deliver energy (rounded up to a whole tick)."""
        return -(-energy // power_w)

    # -- money -------------------------------------------------------------------------------
    @property
    def fee_units_per_yuan(self) -> int:
        """A fee is energy units times price units; this many of them make one yuan."""
        return self.energy_per_kwh * PRICE_UNITS_PER_YUAN

    def yuan(self, fee: int) -> Fraction:
        return Fraction(fee, self.fee_units_per_yuan)


def exact_quotient(numerator: int | Fraction, denominator: int) -> int | Fraction:
    """numerator / denominator exactly: an int when it divides, a Fraction otherwise."""
    whole, rest = divmod(numerator, denominator)
    return whole if not rest else Fraction(numerator, denominator)


def round_half_up(value: Fraction, places: int) -> Decimal:
    """value rounded half up (away from zero for the half) to `places` decimals, for display."""
    return Decimal(round_half_up_scaled(value.numerator, value.denominator, places)).scaleb(-places)


def round_half_up_scaled(numerator: int, denominator: int, places: int) -> int:
    """numerator / denominator (denominator > 0) rounded half up to `places` decimals, as a
    whole number of 10**-places: round_half_up without building a Fraction or a Decimal, for
    output that rounds hundreds of values (a replay's snapshots)."""
    whole = (abs(numerator) * 10**places * 2 + denominator) // (2 * denominator)
    return -whole if numerator < 0 else whole
