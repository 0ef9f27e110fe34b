"""Bills for the storage tests: the default station's units, a clock, and a bill of whole
kWh and whole yuan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.billing import Bill, EndReason
from controller.units import Units

T0 = datetime(2024, 5, 8, 6, 0, tzinfo=UTC)
UNITS = Units.for_powers([30_000, 7_000])  # the default station: 210,000 ticks per second


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def bill(car: str = "V1", kwh: int = 10, yuan: int = 7) -> Bill:
    """A bill of whole kWh and whole yuan (the exact-money test makes a real, uneven one)."""
    return Bill(
        bill_id=1, car=car, queue_no="T1", pile_id=3, pile_name="C", start_tick=0,
        end_tick=UNITS.ticks(3600), energy=UNITS.energy_from_kwh(kwh),
        charge_fee=yuan * UNITS.fee_units_per_yuan, service_fee=UNITS.fee_units_per_yuan,
        reason=EndReason.COMPLETED,
    )  # fmt: skip
