"""Comparing the live run of `bench/station_e2e.py` with the replay: sessions side by side,
order of service, kWh and fees, and the delays measured against pile-sim's own piles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from e2e_live import Live
from e2e_scenario import PILES, ReplaySide, Scenario

from controller.replay.scenario import Kind

POWER_KW = {i: kw for i, (_, _, kw) in enumerate(PILES, start=1)}
START_SLACK_S = 0.05  # a pile may begin a little before its `charging` message arrives


class Session(NamedTuple):
    car: str
    pile: int
    kwh: float
    fee: float
    start_s: float  # station time of day; live: when the pile began to deliver (pile-sim)
    ended: str = ""  # live: completed, cancelled or fault


def clock_s(text: str) -> int:
    """Seconds after midnight of the replay's HH:MM[:SS][+N]."""
    clock, _, days = text.partition("+")
    h, m, s = ([int(x) for x in clock.split(":")] + [0])[:3]
    return int(days or 0) * 86_400 + h * 3600 + m * 60 + s


def replay_sessions(ref: ReplaySide) -> list[Session]:
    return [
        Session(b["car"], b["stationId"], b["quantity"], b["cost"], clock_s(b["startTime"]))
        for b in ref.bills
    ]


def live_sessions(live: Live) -> list[Session]:
    """Every bill a driver received (`bill`, or `fault` for an interrupted session). It started
    when pile-sim's pile began to deliver after the `charging` message for that pile (or at
    that message, if the pile never started afresh)."""
    out = []
    for car in live.cars.values():
        charging = car.of_type("charging")
        bills = car.of_type("bill", "fault")
        cancelled = any(m.get("reason") == "cancelled" for _, m in car.of_type("done"))
        for k, (at, message) in enumerate(bills):
            bill = message["bill"]
            pile = bill["stationId"]
            starts = [t for t, m in charging if t <= at and m.get("stationId") == pile]
            start = float("nan")
            if starts:
                began = live.watch.started(pile, starts[-1] - START_SLACK_S)
                start = live.line.tod_of(starts[-1] if began is None else began)
            ended = "fault" if message["type"] == "fault" else "completed"
            if cancelled and k == len(bills) - 1 and ended == "completed":
                ended = "cancelled"
            out.append(Session(car.name, pile, bill["quantity"], bill["cost"], start, ended))
    return sorted(out, key=lambda s: s.start_s)


def _by(sessions: Sequence[Session], key: str) -> dict[Any, list[Session]]:
    groups: dict[Any, list[Session]] = {}
    for s in sorted(sessions, key=lambda s: s.start_s):
        groups.setdefault(getattr(s, key), []).append(s)
    return groups


def compare(expected: list[Session], got: list[Session]) -> dict[str, Any]:
    """Order of service, and each car's k-th bill against its k-th bill in the replay."""
    piles_e, piles_g = _by(expected, "pile"), _by(got, "pile")
    cars_e, cars_g = _by(expected, "car"), _by(got, "car")
    same_piles = {p: [s.car for s in v] for p, v in piles_e.items()} == {
        p: [s.car for s in v] for p, v in piles_g.items()
    }
    same_cars = {c: [s.pile for s in v] for c, v in cars_e.items()} == {
        c: [s.pile for s in v] for c, v in cars_g.items()
    }
    pairs = [
        (e, g)
        for car, mine in cars_e.items()
        for e, g in zip(mine, cars_g.get(car, []), strict=False)
        if e.pile == g.pile
    ]
    return {
        "same_order": same_piles and same_cars,
        "pairs": pairs,
        "max_kwh_diff": max((abs(e.kwh - g.kwh) for e, g in pairs), default=float("nan")),
        "max_fee_diff": max((abs(e.fee - g.fee) for e, g in pairs), default=float("nan")),
        "start_diffs": [g.start_s - e.start_s for e, g in pairs],
        "kwh_beyond_lag": max((_beyond_lag(e, g) for e, g in pairs), default=float("nan")),
    }


def _beyond_lag(expected: Session, got: Session) -> float:
    """The kWh difference that the later start does not account for. A completed session gets
    its amount whenever it starts; one ended by a cancel or a fault at a fixed time loses what
    its pile would have delivered while the live session had not yet begun."""
    if got.ended == "completed":
        return abs(got.kwh - expected.kwh)
    lag_h = (got.start_s - expected.start_s) / 3600
    return abs(got.kwh - (expected.kwh - lag_h * POWER_KW[expected.pile]))


def after_finish(ref_pairs: list[tuple[int, str, str]], kind: str, live: Live) -> list[float]:
    """For each (pile, car that finished, next car) of the replay: from the pile physically
    reaching the finished car's amount (pile-sim) to the next car's message of `kind` for that
    pile at its client, in ms."""
    out = []
    for pile, done_car, next_car in ref_pairs:
        bills = [
            m["bill"]
            for _, m in live.cars[done_car].of_type("bill")
            if m["bill"]["stationId"] == pile
        ]
        if not bills:
            continue
        limit_wh = round(bills[-1]["quantity"] * 1000)
        for at, message in live.cars[next_car].of_type(kind):
            if message.get("stationId") != pile:
                continue
            finished = live.watch.finish(pile, limit_wh, at)
            if finished is not None and at - finished < 1.0:
                out.append((at - finished) * 1000)
                break
    return out


def refusals(scenario: Scenario, live: Live) -> list[str]:
    texts = {ev.subject: ev.text for ev in scenario.events if ev.kind is Kind.REQUEST}
    out = []
    for car in live.cars.values():
        out += [texts[car.name] if r == "request" else r for r in car.refused()]
    return out


def pct(values: list[float], q: float) -> float:
    """The q-quantile, nearest rank (with few samples the p99 is the largest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def measured_speedup(live: Live) -> float | None:
    """Station seconds per real second over the completed sessions: their time of use (the
    station's own clock) against the real time between `charging` and `bill` at the client."""
    station_s = real_s = 0.0
    for car in live.cars.values():
        charging = [t for t, _ in car.of_type("charging")]
        for at, message in car.of_type("bill"):
            began = [t for t in charging if t <= at]
            if began:
                station_s += float(message["bill"]["timeOfUse"]) * 3600
                real_s += at - began[-1]
    return round(station_s / real_s, 1) if real_s else None
