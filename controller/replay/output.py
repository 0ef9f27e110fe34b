"""The replay's output: JSON (REPLAY "Output") and a readable table of the same content.

Values stay exact until here; each is rounded half up exactly once, as it is printed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from controller.units import Units, round_half_up_scaled

if TYPE_CHECKING:
    from fractions import Fraction

    from controller.billing import Bill
    from controller.replay.runner import LineCar, PileView, ReplayResult, Snapshot
    from controller.sharing import Power


def clock(seconds: Fraction | int, *, floor_to_minute: bool = False) -> str:
    """HH:MM:SS (rounded half up to the second) or HH:MM (floored), with +N for later days."""
    if floor_to_minute:
        minutes = int(seconds // 60)
        day, minute_of_day = divmod(minutes, 24 * 60)
        text = f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"
    else:
        whole = round_half_up_scaled(seconds.numerator, seconds.denominator, 0)
        day, second_of_day = divmod(whole, 86_400)
        h, rest = divmod(second_of_day, 3600)
        text = f"{h:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{text}+{day}" if day else text


# Values are rounded in whole hundredths (or ten-thousandths) and then divided: integer division
# gives the float nearest the decimal, whose shortest repr prints those decimals. Integers, not
# Fractions and Decimals, because a replay's snapshots round hundreds of values.


def _kwh(units: Units, energy: int) -> float:
    return round_half_up_scaled(energy, units.energy_per_kwh, 2) / 100


def _cents(units: Units, fee: int) -> int:
    return round_half_up_scaled(fee, units.fee_units_per_yuan, 2)


def _kw(power_w: Power) -> float:
    return round_half_up_scaled(power_w, 1000, 2) / 100


def bill_json(units: Units, bill: Bill) -> dict[str, Any]:
    charge = _cents(units, bill.charge_fee)
    service = _cents(units, bill.service_fee)
    hours = round_half_up_scaled(bill.end_tick - bill.start_tick, units.ticks_per_s * 3600, 4)
    return {
        "car": bill.car,
        "stationId": bill.pile_id,
        "pile": bill.pile_name,
        "quantity": _kwh(units, bill.energy),
        "timeOfUse": hours / 10_000,
        "startTime": clock(units.seconds(bill.start_tick)),
        "endTime": clock(units.seconds(bill.end_tick)),
        "costOfCharge": charge / 100,
        # The shown total is the sum of the shown parts (RULES §6).
        "costOfService": service / 100,
        "cost": (charge + service) / 100,
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
                            "fee": _cents(u, result.fee(c)) / 100,
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
    if result.snapshots and result.snapshots[0].site is not None:
        for snap, shown in zip(result.snapshots, snapshots, strict=True):
            _site_json(snap, shown)
    end = result.end_tick
    return {
        "snapshots": snapshots,
        "refused": [
            {"time": clock(r.time_s), "event": r.event, "reason": r.reason} for r in result.refused
        ],
        "bills": [bill_json(u, b) for b in result.bills],
        "end": None if end is None else clock(u.seconds(end), floor_to_minute=True),
    }


def _site_json(snap: Snapshot, shown: dict[str, Any]) -> None:
    """The fields a site limit adds to a snapshot (REPLAY "Site power limit")."""
    assert snap.site is not None
    available_w, used_w = snap.site
    shown["site"] = {"available": _kw(available_w), "used": _kw(used_w)}
    for pile, entry in zip(snap.piles, shown["piles"], strict=True):
        _pile_power_json(pile, entry)


def _pile_power_json(pile: PileView, entry: dict[str, Any]) -> None:
    # The power goes beside the state, before the cars.
    cars = entry.pop("cars")
    entry["power"] = _kw(pile.power_w)
    entry["cars"] = cars
    if pile.cars and pile.cars[0].paused:
        cars[0]["paused"] = True


def dumps(result: ReplayResult) -> str:
    return json.dumps(to_json(result), ensure_ascii=False)


def to_text(result: ReplayResult) -> str:
    """A readable report: each snapshot as a small table, then the refusals and the bills."""
    data = to_json(result)
    out: list[str] = []
    for snap in data["snapshots"]:
        out.append(f"== {snap['time']}  {' '.join(snap['events'])}")
        if "site" in snap:
            site = snap["site"]
            out.append(f"   site: {site['available']:.2f} kW available, {site['used']:.2f} kW used")
        for pile in snap["piles"]:
            cars = ", ".join(
                f"{c['car']} {c['charged']:.2f} kWh {c['fee']:.2f} yuan"
                + (" (paused)" if c.get("paused") else "")
                for c in pile["cars"]
            )
            power = f"{pile['power']:>6.2f} kW " if "power" in pile else ""
            out.append(f"   {pile['name']:<8} {pile['state']:<8} {power}{cars or '-'}")
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
