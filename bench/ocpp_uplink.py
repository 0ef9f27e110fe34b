"""Bench: the OCPP uplink under load. 50 piles charging at once, MeterValues every 10 station
seconds at scale 60 (300 a second), against the tests' local central system in a process of
its own on loopback.

In one run of the station (in process, simulated piles): the control loop's tick durations with
the uplink off, then on (the same cars charging throughout); the messages the central system
answered per second; then a 10-minute outage in station time (10 real seconds at scale 60): the
central system's process is stopped, the backlog is counted, and the time to drain it once the
central system is back. Off and on alternate three times, the same cars charging throughout.

    .venv/bin/python bench/ocpp_uplink.py [--seconds 30] [--piles in-process|modbus] [--json]

Figures: docs/performance.md, "OCPP uplink".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.values import Mode  # noqa: E402
from server.assembly.config import parse_config  # noqa: E402

PILES = 50
SCALE = 60
METER_VALUES_S = 10
OUTAGE_STATION_S = 600  # ten minutes of station time
AMOUNT_WH = 200_000  # 200 kWh at 30 kW: 6.7 station hours, longer than the bench
RUN_LIMIT_S = 300  # the whole bench stops by then, whatever happens
ROUNDS = 3  # off and on phases, in turns


def config(url: str | None, links: dict[int, str] | None = None) -> Any:
    piles: list[dict[str, Any]] = [
        {"id": i, "name": f"P{i:02d}", "mode": "fast", "power_kw": 30} for i in range(1, PILES + 1)
    ]
    for pile in piles:
        if links is not None:  # the piles of a pile-sim process, over Modbus TCP
            pile |= {"link": links[pile["id"]], "unit": pile["id"], "watchdog_s": 60}
    data: dict[str, Any] = {
        "station": {"waiting_area_size": PILES, "pile_queue_len": 1},
        "piles": piles,
        "clock": {"scale": SCALE},
        "server": {"port": 0},
    }
    if url is not None:
        data["ocpp"] = {
            "url": url,
            "charge_point_id": "bench-1",
            "meter_values_s": METER_VALUES_S,
            "reconnect_max_s": 1.0,
        }
    return parse_config(data)


# The station's box runs no central system: on this bench it gets a core of its own, and the
# central system (which checks every message against the schemas) and pile-sim share the other,
# so that what is measured is the uplink's cost to the control loop, not a neighbour's.
STATION_CPU, OTHERS_CPU = 0, 1


def pin(cpu: int, pid: int = 0) -> None:
    """Keep a process (this one by default) on one CPU, where the machine has two or more."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {cpu})


# -- the central system, in its own process ------------------------------------------------------


async def serve_csms(port: int) -> None:
    from tests.kits.ocpp_csms import Csms

    csms = Csms()
    csms.port = port
    await csms.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


class CsmsProcess:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--csms", str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        pin(OTHERS_CPU, self.proc.pid)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the central system did not start: {line!r}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# -- the station ---------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def tick_figures(durations_s: list[float]) -> dict[str, float]:
    return {
        "ticks": len(durations_s),
        "p50_ms": 1000 * statistics.median(durations_s),
        "p99_ms": 1000 * percentile(durations_s, 0.99),
        "max_ms": 1000 * max(durations_s),
    }


async def alternate(
    service: Any, settings: Any, seconds: float, durations: list[float]
) -> tuple[dict[str, float], dict[str, float], float]:
    """Off and on in turns (ROUNDS of each), so that the machine's own ups and downs fall on
    both alike; each start of the uplink carries on from the last one's database. The tick
    figures off and on, and the messages delivered per second while on."""
    from server.ocpp.uplink import Uplink

    off_s: list[float] = []
    on_s: list[float] = []
    delivered = 0
    on_time_s = 0.0
    for _ in range(ROUNDS):
        durations.clear()
        await asyncio.sleep(seconds / ROUNDS)
        off_s += durations
        uplink = Uplink(settings, service.door, service.storage, SCALE)
        await uplink.start()
        while not uplink.connected:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the boot's statuses and starts out of the way
        durations.clear()
        before = uplink.delivered
        t0 = time.monotonic()
        await asyncio.sleep(seconds / ROUNDS)
        on_time_s += time.monotonic() - t0
        delivered += uplink.delivered - before
        on_s += durations
        await uplink.close()
    return tick_figures(off_s), tick_figures(on_s), delivered / on_time_s


async def bench(seconds: float, links: dict[int, str] | None) -> dict[str, Any]:
    from tornado.testing import bind_unused_port

    from server.assembly.service import Service
    from server.ocpp.uplink import Uplink

    sock, port = bind_unused_port()
    sock.close()
    url = f"ws://127.0.0.1:{port}/ocpp"
    csms = CsmsProcess(port)
    csms.start()
    state = Path(tempfile.mkdtemp(prefix="ocpp-bench-"))
    service = await Service.start(config(None, links), state, port=0)
    durations: list[float] = []
    service.loop.tick_watchers.append(lambda took_s, ok: durations.append(took_s))
    uplink: Uplink | None = None
    try:
        for i in range(1, PILES + 1):
            service.door.request(f"car-{i:02d}", Mode.FAST, AMOUNT_WH)
        await asyncio.sleep(1.0)  # every pile started
        charging = sum(1 for p in service.door.piles() if p.queue and p.queue[0].area == "charging")

        settings = config(url, links).ocpp
        off, on, rate = await alternate(service, settings, seconds, durations)
        uplink = Uplink(settings, service.door, service.storage, SCALE)
        await uplink.start()
        while not uplink.connected:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        backlog_during_on = uplink.outbox.durable

        # The outage: ten station minutes without the central system.
        csms.stop()
        await asyncio.sleep(OUTAGE_STATION_S / SCALE)
        backlog = uplink.outbox.durable
        await uplink.flushed()
        csms.start()
        t0 = time.monotonic()
        while uplink.outbox.durable > PILES:  # MeterValues keep coming: drained to one round
            await asyncio.sleep(0.05)
            if time.monotonic() - t0 > RUN_LIMIT_S / 2:
                raise RuntimeError("the backlog did not drain")
        drained_s = time.monotonic() - t0
        return {
            "piles": "modbus" if links is not None else "in-process",
            "piles_charging": charging,
            "meter_values_per_s_made": PILES * SCALE / METER_VALUES_S,
            "delivered_per_s": rate,
            "backlog_at_end_of_on_phase": backlog_during_on,
            "tick_off": off,
            "tick_on": on,
            "p99_ratio": on["p99_ms"] / off["p99_ms"],
            "outage_station_s": OUTAGE_STATION_S,
            "outage_backlog_messages": backlog,
            "drained_s": drained_s,
            "drain_per_s": backlog / drained_s,
        }
    finally:
        if uplink is not None:
            await uplink.close()
        await service.stop()
        csms.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="real seconds with the uplink off, and on"
    )
    parser.add_argument("--json", action="store_true", help="only the JSON object")
    parser.add_argument(
        "--piles",
        choices=("in-process", "modbus"),
        default="in-process",
        help="simulated piles in the station's process (ticks of a millisecond), or a pile-sim "
        "process reached over Modbus TCP as hardware would be",
    )
    parser.add_argument("--csms", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.csms is not None:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        asyncio.run(serve_csms(args.csms))
        return
    import logging

    logging.basicConfig(level=logging.WARNING)
    if args.piles == "modbus":
        from firmware_sim.launch import PileSimProcess

        sim_args = ["--tcp", "127.0.0.1:0", "--port-per-pile", "--scale", f"{SCALE:g}"]
        for unit in range(1, PILES + 1):
            sim_args += ["--pile", f"{unit}:reference:30"]
        pin(OTHERS_CPU)  # pile-sim inherits the other core; the station then takes its own
        sim = PileSimProcess.start(sim_args)
        pin(STATION_CPU)
        try:
            links = {unit: sim.tcp_link(unit) for unit in range(1, PILES + 1)}
            figures = asyncio.run(asyncio.wait_for(bench(args.seconds, links), RUN_LIMIT_S))
        finally:
            sim.stop()
    else:
        pin(STATION_CPU)
        figures = asyncio.run(asyncio.wait_for(bench(args.seconds, None), RUN_LIMIT_S))
    if args.json:
        print(json.dumps(figures))
        return
    off, on = figures["tick_off"], figures["tick_on"]
    print(
        f"{figures['piles_charging']} piles charging, scale {SCALE}, MeterValues every "
        f"{METER_VALUES_S} station s: {figures['meter_values_per_s_made']:.0f} a second made"
    )
    print(
        f"delivered: {figures['delivered_per_s']:.0f} messages/s "
        f"(stored, not yet sent at the end: {figures['backlog_at_end_of_on_phase']})"
    )
    print(
        f"tick p50/p99/max, uplink off: {off['p50_ms']:.2f}/{off['p99_ms']:.2f}/"
        f"{off['max_ms']:.2f} ms ({off['ticks']} ticks)"
    )
    print(
        f"tick p50/p99/max, uplink on:  {on['p50_ms']:.2f}/{on['p99_ms']:.2f}/"
        f"{on['max_ms']:.2f} ms ({on['ticks']} ticks); p99 ratio {figures['p99_ratio']:.2f}"
    )
    print(
        f"outage of {OUTAGE_STATION_S} station s: {figures['outage_backlog_messages']} messages "
        f"kept, drained in {figures['drained_s']:.1f} s ({figures['drain_per_s']:.0f}/s)"
    )
    print(json.dumps(figures))  # the last line: one JSON object


if __name__ == "__main__":
    main()
