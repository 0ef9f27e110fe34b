"""RULES §6: metered energy priced by the period in force, split at boundaries, exact money."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from controller.billing import Bill, EndReason, SessionMeter
from controller.replay.output import bill_json
from controller.tariff import TariffClock
from controller.units import Units, round_half_up, round_half_up_scaled
from tests.controller.harness import COMMON, World, pile

VALLEY, FLAT, PEAK, SERVICE = Fraction(4, 10), Fraction(7, 10), Fraction(1), Fraction(8, 10)
SLOW = (pile(1, "S", COMMON, 7),)


def test_a_session_across_two_boundaries_is_split_at_each() -> None:
    w = World(SLOW)
    w.request("06:00", "V1", COMMON, 28)  # 28 kWh at 7 kW: 06:00-10:00
    w.finish()
    (bill,) = w.bills
    # valley 06-07: 7 kWh; flat 07-10: 21 kWh; the 10:00 instant is peak but nothing is drawn.
    assert w.yuan(bill.charge_fee) == 7 * VALLEY + 21 * FLAT  # 2.8 + 14.7 = 17.5
    assert w.yuan(bill.service_fee) == 28 * SERVICE  # 22.4
    assert w.hours(bill.end_tick - bill.start_tick) == 4


def test_a_session_of_forty_kwh_on_seven_kw_is_exact() -> None:
    w = World(SLOW)
    w.request("06:00", "V1", COMMON, 40)  # 40/7 h: 06:00 to 11:42:51.43
    w.finish()
    (bill,) = w.bills
    assert w.hours(bill.end_tick - bill.start_tick) == Fraction(40, 7)
    # valley 7 kWh, flat 21 kWh, peak from 10:00: the remaining 12 kWh.
    assert w.yuan(bill.charge_fee) == 7 * VALLEY + 21 * FLAT + 12 * PEAK  # 29.5
    assert w.kwh(bill.energy) == 40


def test_a_session_across_midnight() -> None:
    w = World(SLOW)
    w.request("22:00", "V1", COMMON, 28)  # 22:00 to 02:00 the next day
    w.finish()
    (bill,) = w.bills
    assert bill.end_tick == w.t("02:00+1")
    assert w.yuan(bill.charge_fee) == 7 * FLAT + 21 * VALLEY  # 4.9 + 8.4 = 13.3


def test_an_instant_on_a_boundary_belongs_to_the_period_that_starts_there() -> None:
    units = Units.for_powers([7000])
    w = World(SLOW)
    clock = TariffClock(w.config.tariff, units)
    assert clock.price_at(units.ticks(7 * 3600)) == 7000  # flat, 0.7 yuan in 1/10000 yuan
    assert clock.price_at(units.ticks(7 * 3600) - 1) == 4000  # valley just before
    energy = units.energy_from_wh(7000)
    # 06:00-07:00 is all valley; 07:00-08:00 all flat.
    assert clock.charge_fee(units.ticks(6 * 3600), units.ticks(7 * 3600), energy) == 7000 * 4000 * (
        units.energy_per_wh
    )
    assert clock.charge_fee(units.ticks(7 * 3600), units.ticks(8 * 3600), energy) == 7000 * 7000 * (
        units.energy_per_wh
    )


def test_energy_between_two_readings_is_split_in_proportion_to_time() -> None:
    w = World(SLOW)
    units = w.u
    meter = SessionMeter(TariffClock(w.config.tariff, units), w.t("06:30"))
    meter.reading(w.t("06:45"), w.e("1.5"))  # all valley
    meter.reading(w.t("07:45"), w.e("7.5"))  # 6 kWh over 06:45-07:45: 1.5 kWh valley, 4.5 flat
    assert w.kwh(meter.energy) == Fraction(15, 2)
    expected = Fraction(3, 2) * VALLEY + Fraction(3, 2) * VALLEY + Fraction(9, 2) * FLAT
    assert w.yuan(meter.charge_fee) == expected


def test_custom_tariff_applies() -> None:
    tariff = {
        "service_fee": "0.5",
        "prices": {"day": 1.2, "night": "0.3"},
        "periods": {"day": ["08:00-20:00"], "night": ["20:00-08:00"]},
    }
    w = World(SLOW, tariff=tariff)
    w.request("07:00", "V1", COMMON, 14)  # 07:00-09:00: 7 kWh night, 7 kWh day
    w.finish()
    (bill,) = w.bills
    assert w.yuan(bill.charge_fee) == 7 * Fraction(3, 10) + 7 * Fraction(12, 10)
    assert w.yuan(bill.service_fee) == 14 * Fraction(1, 2)


def test_shown_total_is_the_sum_of_the_shown_parts() -> None:
    units = Units.for_powers([7000])
    half_fen = units.fee_units_per_yuan // 200  # 0.005 yuan
    bill = Bill(1, "V1", "T1", 1, "S", 0, 0, 0, half_fen, half_fen, EndReason.COMPLETED)
    shown = bill_json(units, bill)
    # Each part rounds half up to 0.01; the total is their sum (0.02), not round(0.01) = 0.01.
    assert (shown["costOfCharge"], shown["costOfService"], shown["cost"]) == (0.01, 0.01, 0.02)


def test_rounding_is_half_up() -> None:
    assert round_half_up(Fraction(1, 8), 2) == Decimal("0.13")  # banker's rounding gives 0.12
    assert round_half_up(Fraction(5, 1000), 2) == Decimal("0.01")
    assert round_half_up(Fraction(-1, 8), 2) == Decimal("-0.13")
    assert round_half_up(Fraction(40, 7), 4) == Decimal("5.7143")


@given(
    st.integers(-(10**15), 10**15),
    st.integers(1, 10**12),
    st.sampled_from([0, 2, 4]),
)
def test_the_integer_rounding_is_the_decimal_one(
    numerator: int, denominator: int, places: int
) -> None:
    # The replay's output rounds in whole hundredths and divides; it must print what rounding
    # to a Decimal and converting that prints (the output stays byte for byte the same).
    shown = round_half_up(Fraction(numerator, denominator), places)
    scaled = round_half_up_scaled(numerator, denominator, places)
    assert Decimal(scaled).scaleb(-places) == shown
    assert repr(scaled / 10**places) == repr(float(shown))


def test_current_fee_of_a_charging_car_is_charging_plus_service_so_far() -> None:
    w = World(SLOW)
    w.request("06:30", "V1", COMMON, 28)
    now = w.go("07:30")
    energy, charge, service = w.st.session_so_far(w.st.pile_by_name["S"], now)
    # 06:30-07:30 at 7 kW: 3.5 kWh valley then 3.5 kWh flat.
    assert w.kwh(energy) == 7
    assert w.yuan(charge) == Fraction(7, 2) * VALLEY + Fraction(7, 2) * FLAT
    assert w.yuan(service) == 7 * SERVICE
