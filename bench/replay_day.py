"""Replay throughput bench: a seeded, generated workload run through the replay engine.

The station has 20 simulated piles (8 fast at 30 kW, 12 common at 7 kW), a waiting area of 10
and 2 places per pile. The workload is built in memory as ScenarioEvent tuples (no text
format): requests (fast 10-60 kWh, common 5-40 kWh, one decimal at most), changes shortly after
a request (while the car is likely still waiting), cancels, and pile faults each followed by a
recovery. Arrivals are a Poisson stream whose mean rate comes from the station's capacity
(rated power of each mode over the mean energy asked in it) times a target load below one,
shaped by the hour of day (quiet nights, peaks above capacity), and spread over as many days as
that needs, so that most requests are served rather than refused.

The site-limit variant (RULES §9, bench/site_workload.py) replays the same workload behind a
grid connection of 300 kW, below the piles' 324 kW, with the site's other load as site events.

Only the engine is timed (time.perf_counter around Replay(config, snapshots=False).run(events));
generating the workload and checking the result are not. One more run with snapshots (the
replay's printed state after every event time, as `charge-station replay` builds it) is timed
and reported beside it ("seconds_with_snapshots"). The check: every pile's simulated meter
equals the energy of the bills of that pile ("energy_balanced"). The time spent in Python's
cyclic garbage collector during the run is reported as part of it ("gc_seconds").

    .venv/bin/python bench/replay_day.py [--requests N] [--seed S] [--scaling] [--repeat K]
                                         [--variant both|plain|site]

One readable line per size and variant, then, as the last line, one JSON object: the plain
variant's figures, and the site variant's under "site".
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's engine, installed or not

from site_workload import SITE_KW, with_site  # noqa: E402

from controller.billing import EndReason  # noqa: E402
from controller.config import Config, PileConfig, StationSettings, parse_tariff  # noqa: E402
from controller.replay.runner import Replay, ReplayResult  # noqa: E402
from controller.replay.scenario import Kind, ScenarioEvent  # noqa: E402
from controller.values import Mode  # noqa: E402

FAST_PILES, FAST_KW = 8, 30
COMMON_PILES, COMMON_KW = 12, 7
WAITING_AREA = 10
PILE_QUEUE_LEN = 2

# Amounts asked, in tenths of a kWh (so at most one decimal), uniform over each range.
AMOUNT_TENTHS = {"F": (100, 600), "T": (50, 400)}
LOAD = 0.75  # mean arrival rate as a share of the station's service rate
# Arrivals follow the hour of day (relative weights): quiet nights, morning and evening
# peaks above the station's capacity, when cars queue up in the waiting area.
HOURLY = (3, 2, 2, 2, 2, 3, 6, 12, 17, 16, 13, 12, 12, 11, 11, 12, 14, 17, 18, 16, 13, 10, 7, 5)
# A change comes 1-5 minutes after its request, mostly for cars that arrive while the
# generator's rough estimate says that the pile queues of their mode are full.
CHANGE_IF_LIKELY_WAITING = 0.4
CHANGE_OTHERWISE = 0.01
CANCEL_SHARE = 0.04  # requests followed by a cancel 5 minutes to 4 hours later
FAULTS_PER_PILE_DAY = 0.3  # each pile fails about this often...
FAULT_MINUTES = (15, 180)  # ...and is repaired after this long
SCALING_SIZES = (1_000, 10_000, 100_000)
TARGET_S_PER_10K = 2.0


def station_config() -> Config:
    piles = [PileConfig(i + 1, f"FP{i + 1}", Mode.FAST, FAST_KW * 1000) for i in range(FAST_PILES)]
    piles += [
        PileConfig(FAST_PILES + i + 1, f"TP{i + 1}", Mode.COMMON, COMMON_KW * 1000)
        for i in range(COMMON_PILES)
    ]
    settings = StationSettings(waiting_area_size=WAITING_AREA, pile_queue_len=PILE_QUEUE_LEN)
    return Config(settings, parse_tariff({}), tuple(piles))


def mean_kwh(letter: str) -> float:
    lo, hi = AMOUNT_TENTHS[letter]
    return (lo + hi) / 20


def arrival_plan() -> tuple[float, float]:
    """(cars per second, share of fast requests) for the target load.

    Each mode serves (its rated power) / (mean kWh asked) cars an hour; asking each mode in
    proportion to that keeps both equally loaded, and the total is then the station's total
    power over the mean energy asked.
    """
    fast_per_h = FAST_PILES * FAST_KW / mean_kwh("F")
    common_per_h = COMMON_PILES * COMMON_KW / mean_kwh("T")
    total_per_h = fast_per_h + common_per_h
    return LOAD * total_per_h / 3600, fast_per_h / total_per_h


def amount(rng: random.Random, letter: str) -> Decimal:
    lo, hi = AMOUNT_TENTHS[letter]
    return Decimal(rng.randint(lo, hi)) / 10


class Workload(NamedTuple):
    events: list[ScenarioEvent]
    requests: int
    changes: int
    cancels: int
    faults: int
    days: float  # span of the arrivals


Raw = tuple[int, Kind, str, str, Decimal | None, str]  # a ScenarioEvent without its line number


def generate(n_requests: int, seed: int) -> Workload:
    """The workload: n_requests requests with their changes and cancels, and pile faults."""
    rng = random.Random(seed)
    raw, changes, cancels, span_s = user_events(rng, n_requests)
    pile_raw, faults = pile_events(rng, span_s)
    raw += pile_raw
    raw.sort(key=lambda e: e[0])  # stable: same-instant events keep their generation order
    events = [
        ScenarioEvent(line_no, at, kind, subject, mode, kwh, text)
        for line_no, (at, kind, subject, mode, kwh, text) in enumerate(raw, start=1)
    ]
    return Workload(events, n_requests, changes, cancels, faults, span_s / 86_400)


def user_events(rng: random.Random, n_requests: int) -> tuple[list[Raw], int, int, float]:
    """(events, changes, cancels, time of the last arrival in seconds)."""
    rate, fast_share = arrival_plan()
    peak = max(HOURLY) / (sum(HOURLY) / len(HOURLY))
    keep = [w / max(HOURLY) for w in HOURLY]
    # Rough fluid estimate of each mode's backlog (kWh not yet delivered), to aim the changes
    # at cars that probably wait in the waiting area: more cars of a mode than its pile places.
    power_kw = {"F": FAST_PILES * FAST_KW, "T": COMMON_PILES * COMMON_KW}
    places = {"F": FAST_PILES * PILE_QUEUE_LEN, "T": COMMON_PILES * PILE_QUEUE_LEN}
    backlog = {"F": 0.0, "T": 0.0}
    raw: list[Raw] = []
    t = last = 0.0
    changes = cancels = 0
    for i in range(1, n_requests + 1):
        while True:  # thinning: a Poisson stream at the peak rate, kept by hour of day
            t += rng.expovariate(rate * peak)
            if rng.random() < keep[int(t // 3600) % 24]:
                break
        at, car = int(t), f"V{i}"
        letter = "F" if rng.random() < fast_share else "T"
        kwh = amount(rng, letter)
        raw.append((at, Kind.REQUEST, car, letter, kwh, f"(A,{car},{letter},{kwh})"))

        for m, kwh_left in backlog.items():
            backlog[m] = max(0.0, kwh_left - power_kw[m] * (t - last) / 3600)
        last = t
        backlog[letter] += float(kwh)
        likely_waiting = backlog[letter] / mean_kwh(letter) > places[letter]
        if rng.random() < (CHANGE_IF_LIKELY_WAITING if likely_waiting else CHANGE_OTHERWISE):
            changes += 1
            raw.append(change_event(rng, at + rng.randint(60, 300), car, letter))
        if rng.random() < CANCEL_SHARE:
            cancels += 1
            leave_at = at + rng.randint(300, 4 * 3600)
            raw.append((leave_at, Kind.LEAVE, car, "O", None, f"(A,{car},O,0)"))
    return raw, changes, cancels, t


def change_event(rng: random.Random, at: int, car: str, letter: str) -> Raw:
    """Half of the changes change the amount only, a quarter the mode only, a quarter both."""
    what = rng.random()
    new_letter = letter if what < 0.5 else ("T" if letter == "F" else "F")
    new_kwh = None if 0.5 <= what < 0.75 else amount(rng, new_letter)
    mode = "O" if new_letter == letter else new_letter
    shown = "-1" if new_kwh is None else str(new_kwh)
    return (at, Kind.CHANGE, car, mode, new_kwh, f"(C,{car},{mode},{shown})")


def pile_events(rng: random.Random, span_s: float) -> tuple[list[Raw], int]:
    """Faults of every pile over the arrivals' span, each followed by its recovery."""
    raw: list[Raw] = []
    faults = 0
    mean_gap_s = 86_400 / FAULTS_PER_PILE_DAY
    names = [f"FP{i + 1}" for i in range(FAST_PILES)] + [f"TP{i + 1}" for i in range(COMMON_PILES)]
    for name in names:
        up_at = 0.0
        while True:
            fail_at = int(up_at + rng.expovariate(1 / mean_gap_s))
            if fail_at >= span_s:
                break
            repair_at = fail_at + 60 * rng.randint(*FAULT_MINUTES)
            raw.append((fail_at, Kind.FAULT, name, "O", None, f"(B,{name},O,0)"))
            raw.append((repair_at, Kind.RECOVER, name, "O", None, f"(B,{name},O,1)"))
            faults += 1
            up_at = repair_at + 1.0
    return raw, faults


def event_kind(text: str) -> str:
    """request, leave, change or pile, from an event tuple's text."""
    letter = text[1]
    if letter == "A":
        return "leave" if text.endswith(",0)") else "request"
    return "change" if letter == "C" else "pile"


def energy_balanced(replay: Replay, result: ReplayResult) -> bool:
    """Every pile's simulated meter equals the energy billed for that pile, and so the totals."""
    billed: Counter[int] = Counter()
    for bill in result.bills:
        billed[bill.pile_id] += bill.energy
    metered = replay.meters()
    return all(metered[p] == billed[p] for p in metered) and sum(metered.values()) == sum(
        b.energy for b in result.bills
    )


class GcTimer:
    """Wall time spent in the cyclic garbage collector, from gc.callbacks (not changing it)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections += 1

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def timed_run(
    config: Config, events: list[ScenarioEvent], snapshots: bool = False
) -> tuple[Replay, float, GcTimer]:
    """One replay of the events: (the replay, engine wall seconds, time in the collector).

    The engine alone keeps no snapshots (the replay's printed state after each event time);
    with snapshots=True the run also builds them, as `charge-station replay` does."""
    gc.collect()  # start from the same heap, not the previous run's garbage
    with GcTimer() as gc_time:
        start = time.perf_counter()
        replay = Replay(config, snapshots=snapshots)
        replay.run(events)
        seconds = time.perf_counter() - start
    return replay, seconds, gc_time


def run_size(n_requests: int, seed: int, repeat: int, site: bool = False) -> dict[str, Any]:
    """Generate one workload, replay it `repeat` times; figures of the median run. With site,
    the site-limit variant of the same workload."""
    workload = generate(n_requests, seed)
    config = station_config()
    events = workload.events
    extra: dict[str, Any] = {}
    if site:
        limited = with_site(config, events, seed)
        config, events = limited.config, limited.events
        extra = {"site_kw": SITE_KW, "site_events": limited.site_events}
    timings: list[tuple[float, float, int]] = []
    replay = None
    for _ in range(repeat):
        replay = None  # free the previous run's result before the next one
        replay, seconds, gc_time = timed_run(config, events)
        timings.append((seconds, gc_time.seconds, gc_time.collections))
    assert replay is not None
    result = replay.result  # every run is the same: the engine is deterministic
    seconds, gc_seconds, gc_collections = sorted(timings)[(len(timings) - 1) // 2]
    with_snapshots = timed_run(config, events, snapshots=True)[1]

    served_cars = {b.car for b in result.bills}
    completed_cars = {b.car for b in result.bills if b.reason is EndReason.COMPLETED}
    refused_by_kind = Counter(event_kind(r.event) for r in result.refused)
    end_tick = result.end_tick
    sim_days = 0.0 if end_tick is None else float(end_tick / replay.units.ticks_per_day)
    return {
        "requests": n_requests,
        "seed": seed,
        **extra,
        "events": len(events),
        "served": len(served_cars),
        "completed": len(completed_cars),
        "refused": refused_by_kind["request"],
        "served_share": round(len(served_cars) / n_requests, 4),
        "bills": len(result.bills),
        "changes": workload.changes,
        "changes_refused": refused_by_kind["change"],
        "cancels": workload.cancels,
        "cancels_refused": refused_by_kind["leave"],
        "faults": workload.faults,
        "pile_events_refused": refused_by_kind["pile"],
        "stranded": len(result.stranded),
        **({"open_sessions": len(result.open_sessions)} if site else {}),
        "days": round(sim_days, 2),
        "seconds": round(seconds, 4),
        "requests_per_s": round(n_requests / seconds, 1),
        "events_per_s": round(len(workload.events) / seconds, 1),
        "us_per_request": round(seconds / n_requests * 1e6, 2),
        "seconds_min": round(min(t[0] for t in timings), 4),
        "repeat": repeat,
        "gc_seconds": round(gc_seconds, 4),  # part of seconds: the collector's share
        "gc_collections": gc_collections,
        "seconds_with_snapshots": round(with_snapshots, 4),
        "energy_balanced": energy_balanced(replay, result),
    }


def describe(r: dict[str, Any]) -> str:
    variant = f"site {r['site_kw']} kW" if "site_kw" in r else "no site"
    return (
        f"{variant:>12}: {r['requests']:>7} requests over {r['days']:.1f} days: "
        f"{r['seconds']:.3f} s, "
        f"{r['requests_per_s']:,.0f} requests/s ({r['events']} events); "
        f"served {r['served']} ({r['served_share']:.1%}), refused {r['refused']}, "
        f"bills {r['bills']}, faults {r['faults']}, gc {r['gc_seconds']:.2f} s, "
        f"{r['seconds_with_snapshots']:.3f} s with snapshots, "
        f"energy {'balanced' if r['energy_balanced'] else 'NOT balanced'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument(
        "--scaling", action="store_true", help="run 1000, 10000 and 100000 requests"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size; the median is reported (default 1)"
    )
    parser.add_argument(
        "--variant",
        choices=("both", "plain", "site"),
        default="both",
        help="without a site limit, with one, or both (default)",
    )
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    sizes = SCALING_SIZES if args.scaling else (args.requests,)
    variants = {"both": (False, True), "plain": (False,), "site": (True,)}[args.variant]
    summaries = []
    all_runs = []
    for site in variants:
        runs = []
        for n in sizes:
            run = run_size(n, args.seed, args.repeat, site)
            print(describe(run), flush=True)
            runs.append(run)
        all_runs += runs
        summaries.append(summarise(runs, args.scaling))
    summary = summaries[0]
    if len(summaries) == 2:
        summary["site"] = summaries[1]
    summary["target_s_per_10k"] = TARGET_S_PER_10K
    summary["machine"] = {
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))
    return 0 if all(r["energy_balanced"] for r in all_runs) else 1


def summarise(runs: list[dict[str, Any]], scaling: bool) -> dict[str, Any]:
    """One variant's figures: its run, or with scaling the 10k run's, every run and the growth."""
    if not scaling:
        return runs[0]
    base = next(r for r in runs if r["requests"] == 10_000)
    per_request = [r["us_per_request"] for r in runs]
    return {
        **base,
        "runs": runs,
        "cost_growth": round(per_request[-1] / per_request[0], 2),  # 1 = linear
    }


if __name__ == "__main__":
    sys.exit(main())
