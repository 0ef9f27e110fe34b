"""What the operator reads off stored bills: report periods, per-pile sums, the CSV export.

RULES §8 reports (by day, week and month, per pile) and the bills export of the operator API.
Sums are exact Fractions; each amount is rounded half up to 0.01 only when shown, and a shown
total is the sum of its shown parts (RULES §6).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from fractions import Fraction
from typing import Any

from controller.storage_schema import StoredBill
from controller.units import round_half_up
from server.driver_api.bills_view import bill_fields

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# The dates a report or an export may name. Python's dates end at 9999-12-31, and a period is
# worked out with the day after it (and a month with 32 days on): the last year is left out so
# that no date accepted here overflows there. No bill is older than the Unix epoch.
FIRST_DATE = date(1970, 1, 1)
LAST_DATE = date(9998, 12, 31)


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # the ISO week: Monday to Sunday
    MONTH = "month"


def parse_date(text: str) -> date:
    """A YYYY-MM-DD date from FIRST_DATE to LAST_DATE; ValueError for anything else (the caller
    says which parameter)."""
    if not _DATE.fullmatch(text):
        raise ValueError(f"{text!r} is not YYYY-MM-DD")
    day = date.fromisoformat(text)
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValueError(f"{text} is not from {FIRST_DATE} to {LAST_DATE}")
    return day


def period_days(period: Period, day: date) -> tuple[date, date]:
    """The first day of the period containing `day`, and the first day after it."""
    if period is Period.DAY:
        return day, day + timedelta(days=1)
    if period is Period.WEEK:
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def midnight(day: date, tz: tzinfo) -> datetime:
    """The start of `day` in the station's time zone, as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def amounts(
    sessions: int, hours: Fraction, kwh: Fraction, charge_yuan: Fraction, service_yuan: Fraction
) -> dict[str, Any]:
    """Totals as shown (RULES §8): the field names of the bills, so clients read one vocabulary."""
    charge = round_half_up(charge_yuan, 2)
    service = round_half_up(service_yuan, 2)
    return {
        "sessions": sessions,
        "timeOfUse": float(round_half_up(hours, 4)),  # hours, as /user/log shows them
        "quantity": float(round_half_up(kwh, 2)),
        "costOfCharge": float(charge),
        "costOfService": float(service),
        "cost": float(charge + service),
    }


@dataclass
class Sums:
    """Exact sums over the bills of one pile."""

    name: str
    sessions: int = 0
    hours: Fraction = field(default_factory=Fraction)
    kwh: Fraction = field(default_factory=Fraction)
    charge_yuan: Fraction = field(default_factory=Fraction)
    service_yuan: Fraction = field(default_factory=Fraction)

    def add(self, bill: StoredBill) -> None:
        self.sessions += 1
        self.hours += bill.time_of_use_h
        self.kwh += bill.energy_kwh
        self.charge_yuan += bill.charge_fee_yuan
        self.service_yuan += bill.service_fee_yuan

    def merge(self, other: Sums) -> None:
        self.sessions += other.sessions
        self.hours += other.hours
        self.kwh += other.kwh
        self.charge_yuan += other.charge_yuan
        self.service_yuan += other.service_yuan

    def shown(self) -> dict[str, Any]:
        return amounts(self.sessions, self.hours, self.kwh, self.charge_yuan, self.service_yuan)


def report(bills: Iterable[StoredBill], piles: Mapping[int, str]) -> dict[str, Any]:
    """Per pile and in total. `piles` (id -> name, configuration order) are listed even without
    a bill; a pile that only the bills know (since removed from the configuration) comes after."""
    by_pile: dict[int, Sums] = {pile_id: Sums(name) for pile_id, name in piles.items()}
    for bill in bills:
        by_pile.setdefault(bill.pile_id, Sums(bill.pile_name)).add(bill)
    order = list(piles) + sorted(set(by_pile) - set(piles))
    total = Sums("")
    rows = []
    for pile_id in order:
        sums = by_pile[pile_id]
        total.merge(sums)
        rows.append({"stationId": pile_id, "name": sums.name, **sums.shown()})
    return {"piles": rows, "total": total.shown()}


CSV_COLUMNS = (
    "id",
    "time",
    "username",
    "stationId",
    "pileName",
    "queueNo",
    "quantity",
    "timeOfUse",
    "startTime",
    "endTime",
    "costOfCharge",
    "costOfService",
    "cost",
)


def _cell(text: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet (OWASP "CSV injection"), and
    # usernames may start with - or @: such text is quoted as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def bills_csv(bills: Iterable[StoredBill], usernames: Mapping[int, str], tz: tzinfo) -> str:
    """The bills as CSV with a header row: the /user/log fields plus the user and the pile name."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_COLUMNS)
    for bill in bills:
        shown = bill_fields(bill, tz)
        user = usernames.get(bill.user_id, "") if bill.user_id is not None else ""
        charge = round_half_up(bill.charge_fee_yuan, 2)
        service = round_half_up(bill.service_fee_yuan, 2)
        writer.writerow(
            [
                bill.id,
                shown["time"],
                _cell(user),
                bill.pile_id,
                _cell(bill.pile_name),
                bill.queue_no,
                f"{round_half_up(bill.energy_kwh, 2)}",
                f"{round_half_up(bill.time_of_use_h, 4)}",
                shown["startTime"],
                shown["endTime"],
                f"{charge}",
                f"{service}",
                f"{charge + service}",  # the shown total is the sum of the shown parts
            ]
        )
    return out.getvalue()
