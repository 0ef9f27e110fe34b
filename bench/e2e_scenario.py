"""The scenario of `bench/station_e2e.py` and the replay's side of its comparison.

A seeded morning at the brief's station (piles A and B fast at 30 kW; C, D and E common at
7 kW; N = 6, M = 2; the default tariff) in REPLAY.md's input format: requests, changes,
cancels, a fault of a common pile and its recovery. The live station runs on real processes,
so its sessions start a second or so (station time) after the replay's; a scenario whose order
of service hinges on a few seconds cannot be reproduced by any real station. `choose_scenario`
therefore keeps the first seed whose order of service (and set of refused events) stays the same
when every event comes up to JITTER_S later, checked by replaying jittered copies in process.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from controller.billing import EndReason
from controller.config import default_config
from controller.events import Called, ChargingStarted, Event, SessionEnded
from controller.replay.runner import Replay
from controller.replay.scenario import Kind, ScenarioEvent, parse_scenario

# (name, mode, kW) in configuration order; ids are 1.. in this order (RULES §1's station).
PILES = (("A", "fast", 30), ("B", "fast", 30), ("C", "common", 7), ("D", "common", 7))
PILES += (("E", "common", 7),)
FIRST_S = 6 * 3600  # the first event: 06:00, an hour before the valley → flat boundary
SPAN_S = 4 * 3600 + 10 * 60  # requests arrive until about 10:10 (flat → peak at 10:00)
MIN_GAP_S = 20  # between any two events (1/6 s of real time at 120x)
JITTER_S = 20  # robustness: the order must not change when events come this much later
JITTER_COPIES = 8
MAX_SEEDS = 200


class Scenario(NamedTuple):
    seed: int
    text: str
    events: list[ScenarioEvent]


class ReplaySide(NamedTuple):
    """What the replay says: its bills (REPLAY.md's JSON), its refused events, and what happens
    at the instant a pile finishes (at_completions)."""

    bills: list[dict[str, Any]]
    refused: list[str]
    end: str | None
    chained_calls: list[tuple[int, str, str]]
    handovers: list[tuple[int, str, str]]


def _clock(time_s: int) -> str:
    return f"{time_s // 3600:02d}:{time_s % 3600 // 60:02d}:{time_s % 60:02d}"


def _amount(rng: random.Random, mode: str) -> str:
    """kWh with one decimal: fast 6-30, common 3-14 (a common session lasts up to 2 hours)."""
    low, high = (60, 300) if mode == "F" else (30, 140)
    return f"{rng.randint(low, high) / 10:.1f}"


def generate(seed: int, requests: int = 30, changes: int = 5, cancels: int = 4) -> str:
    """The scenario text for a seed: `requests` arrivals over SPAN_S from 06:00, then changes a
    few minutes after their car's arrival, cancels up to two hours after it, and a fault of a
    common pile between 07:00 and 08:30 that is repaired 30 to 75 minutes later."""
    rng = random.Random(seed)
    later = sorted(FIRST_S + rng.randrange(60, SPAN_S) for _ in range(requests - 1))
    arrivals = [FIRST_S, *later]
    timed: list[tuple[int, str]] = []
    cars: list[tuple[str, int, str]] = []
    for i, at in enumerate(arrivals, start=1):
        mode = "F" if rng.random() < 0.6 else "T"
        cars.append((f"V{i}", at, mode))
        timed.append((at, f"(A,V{i},{mode},{_amount(rng, mode)})"))
    for car, at, mode in rng.sample(cars[2:], changes):
        kind = rng.choice(("amount", "amount", "mode", "both"))
        new_mode = {"F": "T", "T": "F"}[mode] if kind != "amount" else "O"
        amount = _amount(rng, mode if new_mode == "O" else new_mode) if kind != "mode" else "-1"
        timed.append((at + rng.randint(60, 600), f"(C,{car},{new_mode},{amount})"))
    for car, at, _ in rng.sample(cars[1:], cancels):
        timed.append((at + rng.randint(300, 7200), f"(A,{car},O,0)"))
    pile = rng.choice([name for name, mode, _ in PILES if mode == "common"])
    fault_at = rng.randint(7 * 3600, 8 * 3600 + 1800)
    timed.append((fault_at, f"(B,{pile},O,0)"))
    timed.append((fault_at + rng.randint(1800, 4500), f"(B,{pile},O,1)"))
    return _spaced(timed)


def _spaced(timed: list[tuple[int, str]]) -> str:
    """Sorted, at least MIN_GAP_S apart (a later event moves later), one line each: a real
    station takes events one at a time, so none shares an instant with another."""
    lines = []
    last = -MIN_GAP_S
    for wanted, text in sorted(timed, key=lambda item: item[0]):
        at = max(wanted, last + MIN_GAP_S)
        lines.append(f"{_clock(at)} {text}")
        last = at
    return "\n".join(lines) + "\n"


# -- the replay in process: order of service, robustness ------------------------------------------
def _run(events: Sequence[ScenarioEvent]) -> tuple[Replay, list[Event]]:
    seen: list[Event] = []
    rp = Replay(default_config(), seen.append, snapshots=False)
    rp.run(events)
    return rp, seen


def _order(rp: Replay) -> tuple[tuple[tuple[int, tuple[str, ...]], ...], frozenset[str]]:
    """Each pile's cars in the order it charged them, and the refused events."""
    piles: dict[int, list[str]] = {}
    for bill in sorted(rp.result.bills, key=lambda b: b.start_tick):
        piles.setdefault(bill.pile_id, []).append(bill.car)
    refused = frozenset(r.event for r in rp.result.refused)
    return tuple((pid, tuple(cars)) for pid, cars in sorted(piles.items())), refused


def _jittered(events: list[ScenarioEvent], rng: random.Random) -> list[ScenarioEvent]:
    """Every event 0..JITTER_S later, still one at a time and in file order."""
    out = []
    last = -1
    for ev in events:
        at = max(ev.time_s + rng.randint(0, JITTER_S), last + 1)
        out.append(ev._replace(time_s=at))
        last = at
    return out


def _acceptable(events: list[ScenarioEvent]) -> bool:
    """The fault interrupts a charging car, every car is served, at least two changes and one
    cancel are accepted, and the order of service survives jitter."""
    rp, _ = _run(events)
    reasons = [b.reason for b in rp.result.bills]
    if EndReason.FAULT not in reasons or rp.result.stranded:
        return False
    refused = {r.event for r in rp.result.refused}
    changes = [e for e in events if e.kind is Kind.CHANGE and e.text not in refused]
    cancels = [e for e in events if e.kind is Kind.LEAVE and e.text not in refused]
    if len(changes) < 2 or not cancels:
        return False
    nominal = _order(rp)
    rng = random.Random(0)
    return all(_order(_run(_jittered(events, rng))[0]) == nominal for _ in range(JITTER_COPIES))


def choose_scenario(seed: int) -> Scenario:
    """The first seed from `seed` on whose scenario is acceptable (deterministic)."""
    for candidate in range(seed, seed + MAX_SEEDS):
        text = generate(candidate)
        events = parse_scenario(text)
        if _acceptable(events):
            return Scenario(candidate, text, events)
    raise SystemExit(f"no acceptable scenario among seeds {seed}..{seed + MAX_SEEDS - 1}")


def at_completions(
    events: Sequence[ScenarioEvent],
) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]]:
    """What the replay does at the very instant a session completes, at the same pile:
    (pile id, car that finished, car called) for each call, the samples of "pile finished →
    next car's call"; and (pile id, car that finished, car that starts charging there)."""
    _, seen = _run(events)
    finished = {
        (e.now_tick, e.bill.pile_id): e.bill.car
        for e in seen
        if isinstance(e, SessionEnded) and e.bill.reason is EndReason.COMPLETED
    }
    calls, starts = [], []
    for e in seen:
        if isinstance(e, Called | ChargingStarted) and (e.now_tick, e.pile_id) in finished:
            item = (e.pile_id, finished[(e.now_tick, e.pile_id)], e.car)
            (calls if isinstance(e, Called) else starts).append(item)
    return calls, starts


# -- the replay as a command: the reference ------------------------------------------------------
def replay_command(config: Path, scenario: Path) -> dict[str, Any]:
    """`charge-station replay --config CONFIG SCENARIO --json`, in a process of its own."""
    exe = Path(sys.executable).parent / "charge-station"
    done = subprocess.run(
        [str(exe), "replay", "--config", str(config), str(scenario), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"charge-station replay failed ({done.returncode}): {done.stderr}")
    return json.loads(done.stdout)


def replay_side(config: Path, scenario: Path, events: Sequence[ScenarioEvent]) -> ReplaySide:
    out = replay_command(config, scenario)
    refused = [r["event"] for r in out["refused"]]
    calls, handovers = at_completions(events)
    return ReplaySide(out["bills"], refused, out["end"], calls, handovers)


def config_text(links: dict[str, str], scale: float, code: str) -> str:
    """The station's configuration: RULES §1's station, default tariff, piles on `links`."""
    piles = "".join(
        f'\n[[piles]]\nid = {i}\nname = "{name}"\nmode = "{mode}"\npower_kw = {kw}\n'
        f'link = "{links[name]}"\nunit = {i}\nprofile = "reference"\n'
        for i, (name, mode, kw) in enumerate(PILES, start=1)
    )
    return (
        "[station]\nwaiting_area_size = 6\npile_queue_len = 2\n\n"
        f"[clock]\nscale = {scale:g}\n\n[server]\nport = 0\n\n"
        f'[accounts]\nbench_registration_code = "{code}"\n{piles}'
    )
