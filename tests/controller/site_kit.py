"""Running `charge-station replay` on a site-limited station written by a test, and the
arithmetic its expected values are worked with (exact Fractions, rounded half up once)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from server.cli import main

# Default tariff (RULES §6), yuan per kWh: valley 23-07, flat 07-10, peak 10-15, service 0.8.
VALLEY = Fraction(4, 10)
FLAT = Fraction(7, 10)
PEAK = Fraction(1)
SERVICE = Fraction(8, 10)


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.out)

    def snapshot(self, time: str) -> dict[str, Any]:
        (snap,) = [s for s in self.data["snapshots"] if s["time"] == time]
        return snap


def replay(tmp_path: Path, capsys: Any, config: str, events: str, *, as_json: bool = True) -> Run:
    (tmp_path / "station.toml").write_text(config, encoding="utf-8")
    (tmp_path / "events.txt").write_text(events, encoding="utf-8")
    args = ["replay", "--config", str(tmp_path / "station.toml"), str(tmp_path / "events.txt")]
    code = main([*args, "--json"] if as_json else args)
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def pile_toml(pile_id: int, name: str, mode: str, kw: float, min_kw: float | None = None) -> str:
    text = f'[[piles]]\nid = {pile_id}\nname = "{name}"\nmode = "{mode}"\npower_kw = {kw}\n'
    return text + (f"min_power_kw = {min_kw}\n" if min_kw is not None else "")


def half_up(x: Fraction, places: int = 2) -> Decimal:
    scale = 10**places
    return Decimal(math.floor(x * scale + Fraction(1, 2))) / scale


def shown(value: float) -> Decimal:
    """A number of the JSON output as the decimal it was printed as."""
    return Decimal(str(value))


def bill(
    car: str,
    pile: str,
    start: str,
    end: str,
    hours: Fraction,
    *,
    valley: Fraction = Fraction(0),
    flat: Fraction = Fraction(0),
) -> dict[str, Any]:
    """The expected bill of kWh delivered in each period, rounded as REPLAY says."""
    charge = half_up(valley * VALLEY + flat * FLAT)
    service = half_up((valley + flat) * SERVICE)
    return {
        "car": car,
        "pile": pile,
        "quantity": half_up(valley + flat),
        "timeOfUse": half_up(hours, 4),
        "startTime": start,
        "endTime": end,
        "costOfCharge": charge,
        "costOfService": service,
        "cost": charge + service,
    }


def bills_of(run: Run) -> list[dict[str, Any]]:
    """The printed bills in the form `bill` gives (numbers as printed decimals)."""
    keys = ("quantity", "timeOfUse", "costOfCharge", "costOfService", "cost")
    return [
        {
            "car": b["car"],
            "pile": b["pile"],
            **{k: shown(b[k]) for k in keys},
            "startTime": b["startTime"],
            "endTime": b["endTime"],
        }
        for b in run.data["bills"]
    ]


def piles_of(snap: dict[str, Any]) -> dict[str, tuple]:
    """pile name -> (state, power kW, [(car, charged, fee, paused)]) of a printed snapshot."""
    return {
        p["name"]: (
            p["state"],
            shown(p["power"]),
            [
                (c["car"], shown(c["charged"]), shown(c["fee"]), c.get("paused", False))
                for c in p["cars"]
            ],
        )
        for p in snap["piles"]
    }


def site_of(snap: dict[str, Any]) -> tuple[Decimal, Decimal]:
    return shown(snap["site"]["available"]), shown(snap["site"]["used"])
