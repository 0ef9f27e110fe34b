"""The replay's output: JSON (REPLAY "Output") and a readable table of the same content.

Values stay exact until here; each is rounded half up exactly once, as it is printed.
"""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from typing import Any

from controller.billing import Bill
from controller.replay.runner import LineCar, ReplayResult
from controller.units import Units, round_half_up


def clock(seconds: Fraction | int, *, floor_to_minute: bool = False) -> str:
    """HH:MM:SS (rounded half up to the second) or HH:MM (floored), with +N for later days."""
    if floor_to_minute:
        minutes = int(seconds // 60)
        day, minute_of_day = divmod(minutes, 24 * 60)
        text = f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"
    else:
        whole = int(round_half_up(Fraction(seconds), 0))
        day, second_of_day = divmod(whole, 86_400)
        h, rest = divmod(second_of_day, 3600)
        text = f"{h:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{text}+{day}" if day else text


def _num(value: Decimal) -> float:
    # The shortest repr of a float made from a 2- or 4-decimal Decimal prints those decimals.
    return float(value)


def _kwh(units: Units, energy: int) -> float:
    return _num(round_half_up(units.kwh(energy), 2))


def _yuan(units: Units, fee: int) -> Decimal:
    return round_half_up(units.yuan(fee), 2)


def bill_json(units: Units, bill: Bill) -> dict[str, Any]:
    charge = _yuan(units, bill.charge_fee)
    service = _yuan(units, bill.service_fee)
    return {
        "car": bill.car,
        "stationId": bill.pile_id,
        "pile": bill.pile_name,
        "quantity": _kwh(units, bill.energy),
        "timeOfUse": _num(round_half_up(units.hours(bill.end_tick - bill.start_tick), 4)),
        "startTime": clock(units.seconds(bill.start_tick)),
        "endTime": clock(units.seconds(bill.end_tick)),
        "costOfCharge": _num(charge),
        # The shown total is the sum of the shown parts (RULES §6).
        "costOfService": _num(service),
        "cost": _num(charge + service),
    }


def _line_json(units: Units, cars: tuple[LineCar, ...]) -> list[dict[str, Any]]:
    return [{"car": c.car, "mode": c.mode, "quantity": _kwh(units, c.wanted)} for c in cars]


def to_json(result: ReplayResult) -> dict[str, Any]:
    u = result.units
    snapshots = [
        {
            "time": clock(s.time_s),
            "events": list(s.events),
            "piles": [
                {
                    "name": p.name,
                    "state": p.state,
                    "cars": [
                        {
                            "car": c.car,
                            "charged": _kwh(u, c.energy),
                            "fee": _num(_yuan(u, result.fee(c))),
                        }
                        for c in p.cars
                    ],
                }
                for p in s.piles
            ],
            "priority": _line_json(u, s.priority),
            "waiting": _line_json(u, s.waiting),
        }
        for s in result.snapshots
    ]
    end = result.end_tick
    return {
        "snapshots": snapshots,
        "refused": [
            {"time": clock(r.time_s), "event": r.event, "reason": r.reason} for r in result.refused
        ],
        "bills": [bill_json(u, b) for b in result.bills],
        "end": None if end is None else clock(u.seconds(end), floor_to_minute=True),
    }


def dumps(result: ReplayResult) -> str:
    return json.dumps(to_json(result), ensure_ascii=False)


def to_text(result: ReplayResult) -> str:
    """A readable report: each snapshot as a small table, then the refusals and the bills."""
    data = to_json(result)
    out: list[str] = []
    for snap in data["snapshots"]:
        out.append(f"== {snap['time']}  {' '.join(snap['events'])}")
        for pile in snap["piles"]:
            cars = ", ".join(
                f"{c['car']} {c['charged']:.2f} kWh {c['fee']:.2f} yuan" for c in pile["cars"]
            )
            out.append(f"   {pile['name']:<8} {pile['state']:<8} {cars or '-'}")
        for title in ("priority", "waiting"):
            cars = ", ".join(f"{c['car']}({c['mode']} {c['quantity']:.2f})" for c in snap[title])
            out.append(f"   {title:<17} {cars or '-'}")
    if data["refused"]:
        out.append("")
        out.append("Refused:")
        for r in data["refused"]:
            out.append(f"   {r['time']}  {r['event']}  {r['reason']}")
    out.append("")
    out.append("Bills:")
    header = ("car", "pile", "kWh", "hours", "start", "end", "charge", "service", "total")
    rows = [
        (
            b["car"],
            b["pile"],
            f"{b['quantity']:.2f}",
            f"{b['timeOfUse']:.4f}",
            b["startTime"],
            b["endTime"],
            f"{b['costOfCharge']:.2f}",
            f"{b['costOfService']:.2f}",
            f"{b['cost']:.2f}",
        )
        for b in data["bills"]
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        out.append("   " + "  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)))
    out.append("")
    out.append(f"Last session ended: {data['end'] or 'no session ran'}")
    return "\n".join(out)
