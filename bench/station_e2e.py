"""End-to-end bench: the live station on five piles over Modbus TCP, driven by WebSocket
drivers through a scripted morning, against the same scenario through `charge-station replay`.

- Scenario (bench/e2e_scenario.py): the brief's station (A, B fast at 30 kW; C, D, E common at
  7 kW; N = 6, M = 2; default tariff) and a seeded morning in REPLAY.md's input format: 30
  requests from 06:00 until 10:10 at the latest, changes, cancels, a fault of a common pile
  and its recovery (41 events over more than 4 hours). The first seed from --seed whose order of
  service survives every event coming up to 20 s later is used: a real station starts each
  session a second or so of station time after the replay would, and an order that hinges on
  seconds cannot be reproduced by any real station.
- Replay: `charge-station replay --config STATION.toml SCENARIO --json` gives the expected
  bills; the replay engine in process says which calls and starts happen at the instant a pile
  finishes.
- Live: `pile-sim --tcp 127.0.0.1:0 --port-per-pile --scale 120` with five reference piles, and
  `charge-station serve` with `[clock] scale = 120` whose piles link to them over tcp://. Each
  request is a driver (POST /register with the bench registration code) opening
  `/user/charge` at the event's station time; changes and cancels are `revise` and `cancel`
  operations on that socket; the fault is a `pile_fault` injected into pile-sim, the recovery
  clearing it.
- Time of day: the replay prices by the scenario's times, the live station by its own clock,
  which starts at the local time when it starts (controller/clock.py). The station runs under
  a time zone (TZ) chosen so that its local time at start-up is the scenario's first event
  minus a lead (--lead-s real seconds); the millisecond stamp of the log line it writes right
  before making its clock then places its day against this process's clock (to 1 ms, 0.12 s
  of station time), and every event is sent when the station's clock shows the event's time.
  Both sides thus price the same hours with the same tariff, boundaries included (07:00, 10:00).
- Compared: each pile's cars in order and each car's piles (same_order), the bill count, each
  bill's kWh and fee (a car's k-th bill against its k-th bill in the replay), and the refused
  events. A live session starts when its pile began to deliver, from pile-sim's own state (read
  every 50 ms); `max_kwh_diff_beyond_lag` is what is left of the kWh differences once the later
  start of a session ended by a cancel or a fault is accounted for.
- Latency: for each call the replay makes at the instant a pile finishes, from the pile
  physically reaching its limit (pile-sim) to the called car's `call` message at its client
  (`call_latency`); likewise to the next car's `charging` message (`handover`). rss_mb: the
  station's VmHWM.

    .venv/bin/python bench/station_e2e.py [--seed 1] [--scale 120] [--keep DIR]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e_compare import (  # noqa: E402
    Session,
    after_finish,
    clock_s,
    compare,
    live_sessions,
    measured_speedup,
    pct,
    refusals,
    replay_sessions,
)
from e2e_live import (  # noqa: E402
    Car,
    Live,
    SimWatch,
    Station,
    cpu_s,
    play,
    read_timeline,
    register,
    tz_for,
)
from e2e_scenario import (  # noqa: E402
    PILES,
    ReplaySide,
    Scenario,
    choose_scenario,
    config_text,
    replay_side,
)

from controller.replay.scenario import Kind  # noqa: E402
from firmware_sim.launch import PileSimProcess  # noqa: E402

CODE = "station-e2e-bench"
TARGETS = {"max_kwh_diff": 0.05, "max_fee_diff": 0.10, "call_latency_p99_ms": 50}
END_SLACK_S = 20.0  # real seconds past the replay's end before the live run is given up
# What the station's log says about its piles that bears on the comparison.
LOG_SIGNS = {
    "meter_readings_refused": "bad meter reading",
    "piles_enabled_again": "not enabled any more",
    "ticks_failed": "tick failed",
}


def _hms(tod_s: float) -> str:
    whole = round(tod_s)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


# -- the live run --------------------------------------------------------------------------------
async def live_run(
    scenario: Scenario,
    config: Path,
    sim: PileSimProcess,
    work: Path,
    args: argparse.Namespace,
    until_s: int,
) -> Live:
    """The scenario on the live station; drivers are waited for until station time until_s."""
    events = scenario.events
    first = events[0].time_s
    tz, offset = tz_for(first - args.lead_s * args.scale, time.time())
    station = Station(config, work / "state", work / "station.log", tz)
    watch = SimWatch(sim)
    try:
        line = read_timeline(station.log_path, offset, args.scale)
        watch.start()  # before the first event, so that starting it does not delay that event
        names = [ev.subject for ev in events if ev.kind is Kind.REQUEST]
        tokens = await register(station.base, names, CODE)
        registered_kb = station.status_kb("VmHWM")
        if (spare := line.real_of(first) - time.monotonic()) < 0.5:
            raise SystemExit(f"start-up took too long ({spare:.2f} s to spare): raise --lead-s")
        cars = {name: Car(name, tokens[name]) for name in names}
        units = {name: i for i, (name, _, _) in enumerate(PILES, start=1)}
        cpu0 = _cpu(station, sim)
        late = await play(events, cars, station.base, sim, units, line)
        # Until every driver's socket is closed (done, or refused), or well past the replay's end.
        deadline = line.real_of(until_s) + END_SLACK_S
        left_s = deadline - time.monotonic()
        closed = [asyncio.wait_for(c.closed.wait(), left_s) for c in cars.values()]
        try:
            await asyncio.gather(*closed)
        except TimeoutError:
            print("live run: some drivers were never done (see the table)", file=sys.stderr)
        real_s = time.monotonic() - line.real_of(first)
        hwm, rss = station.status_kb("VmHWM"), station.status_kb("VmRSS")
        cpu = {key: used - cpu0[key] for key, used in _cpu(station, sim).items()}
    finally:
        station.stop()
        watch.stop()
    memory_kb = {"peak": hwm, "after_registering": registered_kb, "end": rss}
    live = Live(cars, watch, line, late, real_s, memory_kb, cpu, tz, log_counts(work))
    if args.keep:
        dump(live, work / "live.json")
    return live


def _cpu(station: Station, sim: PileSimProcess) -> dict[str, float]:
    bench = os.times()
    return {
        "station": cpu_s(station.proc.pid),
        "pile_sim": cpu_s(sim.proc.pid),
        "bench": bench.user + bench.system,
    }


def log_counts(work: Path) -> dict[str, int]:
    """How often the station logged each of LOG_SIGNS."""
    text = (work / "station.log").read_text()
    return {key: text.count(sign) for key, sign in LOG_SIGNS.items()}


def dump(live: Live, path: Path) -> None:
    """Every driver's messages and the simulator's readings, for a closer look afterwards."""
    data = {
        "timeline": live.line._asdict(),
        "late_s": live.late_s,
        "cars": {name: car.messages for name, car in live.cars.items()},
        "readings": {unit: [r._asdict() for r in rs] for unit, rs in live.watch.readings.items()},
    }
    path.write_text(json.dumps(data))


# -- the report ----------------------------------------------------------------------------------
def print_table(cmp: dict[str, Any], expected: list[Session], got: list[Session]) -> None:
    names = {i: name for i, (name, _, _) in enumerate(PILES, start=1)}
    print(
        f"{'car':>4} {'pile':>4} {'start replay':>12} {'live':>9} {'lag s':>6} {'kWh':>7}"
        f" {'live':>7} {'fee':>7} {'live':>7}"
    )
    paired = {id(e): g for e, g in cmp["pairs"]}
    for e in expected:
        g = paired.get(id(e))
        if g is None:
            print(
                f"{e.car:>4} {names[e.pile]:>4} {_hms(e.start_s):>12} {'-':>9} {'':>6}"
                f" {e.kwh:7.2f} {'-':>7} {e.fee:7.2f} {'-':>7}"
            )
            continue
        print(
            f"{e.car:>4} {names[e.pile]:>4} {_hms(e.start_s):>12} {_hms(g.start_s):>9}"
            f" {g.start_s - e.start_s:6.1f} {e.kwh:7.2f} {g.kwh:7.2f} {e.fee:7.2f} {g.fee:7.2f}"
        )
    extra = len(got) - len(cmp["pairs"])
    if extra:
        print(f"{extra} live bills have no counterpart in the replay")


def _num(value: float, places: int) -> float | None:
    """Rounded for the JSON line; None where nothing was measured (JSON has no NaN)."""
    return round(value, places) if math.isfinite(value) else None


def summarize(
    scenario: Scenario, ref: ReplaySide, live: Live, cmp: dict[str, Any], wall_s: float
) -> dict[str, Any]:
    events = scenario.events
    calls = after_finish(ref.chained_calls, "call", live)
    handovers = after_finish(ref.handovers, "charging", live)
    lags = [abs(x) for x in cmp["start_diffs"] if math.isfinite(x)]  # nan: no live start
    return {
        "bills": len(live_sessions(live)),
        "bills_replay": len(ref.bills),
        "same_order": cmp["same_order"],
        "max_kwh_diff": _num(cmp["max_kwh_diff"], 3),
        "max_fee_diff": _num(cmp["max_fee_diff"], 3),
        "max_kwh_diff_beyond_lag": _num(cmp["kwh_beyond_lag"], 3),
        "refused_match": sorted(refusals(scenario, live)) == sorted(ref.refused),
        "refused": len(ref.refused),
        "speedup": live.line.scale,
        "speedup_measured": measured_speedup(live),
        "call_latency_p99_ms": _num(pct(calls, 0.99), 1),
        "call_latency_p50_ms": _num(pct(calls, 0.5), 1),
        "call_latency_samples": len(calls),
        "handover_p50_ms": _num(pct(handovers, 0.5), 1),
        "handover_p99_ms": _num(pct(handovers, 0.99), 1),
        "handover_samples": len(handovers),
        "start_lag_s": {
            "median": round(statistics.median(lags), 1) if lags else None,
            "max": round(max(lags), 1) if lags else None,
        },
        "event_late_ms": {
            "median": round(statistics.median(live.late_s) * 1000, 2),
            "max": round(max(live.late_s) * 1000, 2),
        },
        "rss_mb": round(live.memory_kb["peak"] / 1024, 1),
        "rss_after_registering_mb": round(live.memory_kb["after_registering"] / 1024, 1),
        "rss_end_mb": round(live.memory_kb["end"] / 1024, 1),
        "cpu_s": {key: round(used, 1) for key, used in live.cpu_s.items()},
        "station_log": live.log,
        "events": len(events),
        "virtual_hours": round((events[-1].time_s - events[0].time_s) / 3600, 2),
        "cars": len(live.cars),
        "real_s": round(live.real_s, 1),
        "wall_s": round(wall_s, 1),
        "seed": scenario.seed,
        "targets": TARGETS,
        "machine": {"python": sys.version.split()[0], "cpus": os.cpu_count()},
    }


def report(
    scenario: Scenario,
    ref: ReplaySide,
    live: Live,
    wall_s: float,
    load0: tuple[float, float, float],
) -> None:
    events = scenario.events
    expected, got = replay_sessions(ref), live_sessions(live)
    cmp = compare(expected, got)
    result = summarize(scenario, ref, live, cmp, wall_s)
    result["load_avg"] = [round(load0[0], 2), round(os.getloadavg()[0], 2)]
    print(
        f"scenario: seed {scenario.seed}, {len(events)} events from {_hms(events[0].time_s)} to"
        f" {_hms(events[-1].time_s)} ({result['virtual_hours']} station hours),"
        f" {len(live.cars)} cars; the replay's last session ends {ref.end}"
    )
    print(
        f"station: 5 reference piles on pile-sim over Modbus TCP, scale {live.line.scale:g},"
        f" TZ {live.tz} (its day is the scenario's)"
    )
    print_table(cmp, expected, got)
    lag = result["start_lag_s"]
    print(
        f"bills {result['bills']} (replay {result['bills_replay']}), same order:"
        f" {result['same_order']}, refusals match: {result['refused_match']};"
        f" max diff {result['max_kwh_diff']} kWh ({result['max_kwh_diff_beyond_lag']} beyond"
        f" the later starts), {result['max_fee_diff']} yuan"
    )
    print(
        f"pile finished → call p50 {result['call_latency_p50_ms']} ms, p99"
        f" {result['call_latency_p99_ms']} ms ({result['call_latency_samples']} calls);"
        f" → next car charging p50 {result['handover_p50_ms']} ms, p99"
        f" {result['handover_p99_ms']} ms; sessions start {lag['median']} s (median, at most"
        f" {lag['max']} s) of station time after the replay's"
    )
    print(
        f"speed-up {live.line.scale:g} (measured {result['speedup_measured']}); station peak RSS"
        f" {result['rss_mb']} MB; CPU s {result['cpu_s']} in {result['real_s']} s;"
        f" log {result['station_log']}; load average {result['load_avg']}"
    )
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="first seed to try (default 1)")
    parser.add_argument("--scale", type=float, default=120.0, help="speed-up (default 120)")
    parser.add_argument(
        "--lead-s", type=float, default=12.0, help="real seconds from start-up to the first event"
    )
    parser.add_argument("--keep", metavar="DIR", help="keep the scenario, config and logs here")
    args = parser.parse_args(argv)
    wall0, load0 = time.monotonic(), os.getloadavg()
    scenario = choose_scenario(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / "scenario.txt").write_text(scenario.text)
        sim_args = ["--tcp", "127.0.0.1:0", "--port-per-pile", "--scale", f"{args.scale:g}"]
        for i, (_, _, kw) in enumerate(PILES, start=1):
            sim_args += ["--pile", f"{i}:reference:{kw}"]
        with (work / "pile-sim.log").open("w") as sim_log:
            sim = PileSimProcess.start(sim_args, stderr=sim_log)
            try:
                links = {name: sim.tcp_link(i) for i, (name, _, _) in enumerate(PILES, start=1)}
                config = work / "station.toml"
                config.write_text(config_text(links, args.scale, CODE))
                ref = replay_side(config, work / "scenario.txt", scenario.events)
                until_s = max(scenario.events[-1].time_s, clock_s(ref.end or "00:00")) + 1800
                live = asyncio.run(live_run(scenario, config, sim, work, args, until_s))
            finally:
                sim.stop()
        report(scenario, ref, live, time.monotonic() - wall0, load0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
