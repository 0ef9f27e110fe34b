"""Bills as the documented API shows them: `/user/log` and `/user/lognew` (PROTOCOL.md).

Amounts are exact until here; each is rounded half up to 0.01 once, and the shown total is the
sum of the shown parts (RULES §6). Times are `YYYY-MM-DD HH:MM:SS` in the station's time zone.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import Any

from controller.storage_schema import StoredBill
from controller.units import round_half_up


def _shown(value: Fraction, places: int = 2) -> Decimal:
    return round_half_up(value, places)


def shown(value: Fraction) -> float:
    """An exact kWh or yuan amount as the API shows it: a number rounded half up to 0.01."""
    return float(round_half_up(value, 2))


def stamp(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def duration_text(start: datetime, end: datetime) -> str:
    """H:MM:SS, rounded half up to the second (the new form's timeOfUse)."""
    seconds = int(_shown(Fraction((end - start).total_seconds()).limit_denominator(10**6), 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def bill_fields(bill: StoredBill, tz: tzinfo) -> dict[str, Any]:
    """The fields the two history endpoints share."""
    charge = _shown(bill.charge_fee_yuan)
    service = _shown(bill.service_fee_yuan)
    return {
        "time": stamp(bill.end, tz),  # the bill is made when the session ends (RULES §6)
        "stationId": bill.pile_id,
        "quantity": float(_shown(bill.energy_kwh)),
        "startTime": stamp(bill.start, tz),
        "endTime": stamp(bill.end, tz),
        "costOfCharge": float(charge),
        "costOfService": float(service),
        "cost": float(charge + service),
    }


def log_entry(bill: StoredBill, tz: tzinfo) -> dict[str, Any]:
    """`/user/log`: id an int, timeOfUse a number of hours."""
    return {
        "id": bill.id,
        **bill_fields(bill, tz),
        "timeOfUse": float(_shown(bill.time_of_use_h, 4)),
    }


def lognew_entry(bill: StoredBill, tz: tzinfo) -> dict[str, Any]:
    """`/user/lognew`: id a string, timeOfUse a string H:MM:SS."""
    return {
        "id": str(bill.id),
        **bill_fields(bill, tz),
        "timeOfUse": duration_text(bill.start, bill.end),
    }
