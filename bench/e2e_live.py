"""The live side of `bench/station_e2e.py`: the station process and its clock, the drivers'
WebSocket clients, the player that sends the scenario's events on time, and a watch on the
simulator's own pile state (when a pile physically finished)."""

from __future__ import annotations

import asyncio
import calendar
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import WebSocketClientConnection, websocket_connect

from controller.replay.scenario import Kind, ScenarioEvent
from firmware_sim.launch import PileSimProcess

FAULT_CODE = 42  # any non-zero code: the reference pile reports state 4 with it
WATCH_EVERY_S = 0.05  # how often the simulator's state is read (real seconds)
MODES = {"F": "fast", "T": "common"}
# The log line the service writes right before it makes its clock (server/assembly/service.py: the
# warning, then StationClock reads the local time); its stamp has millisecond resolution.
CLOCK_MARK = "server.assembly.service: bench configuration"
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


# -- the station's clock -------------------------------------------------------------------------
def tz_for(target_tod_s: float, now_epoch_s: float) -> tuple[str, int]:
    """A POSIX TZ under which the local time of day now is target_tod_s, and its UTC offset.

    The live station prices by its own local time of day (controller/clock.py), so running it in
    this zone makes its day the scenario's day, whatever the hour of the bench run."""
    offset = round(target_tod_s - now_epoch_s) % 86_400
    if offset > 43_200:
        offset -= 86_400
    sign = "-" if offset >= 0 else "+"  # POSIX counts west of Greenwich as positive
    a = abs(offset)
    return f"BENCH{sign}{a // 3600:02d}:{a % 3600 // 60:02d}:{a % 60:02d}", offset


class Timeline(NamedTuple):
    """The station's time of day against this process's monotonic clock."""

    origin_mono: float  # when the station's clock showed tod0_s
    tod0_s: float
    scale: float

    def real_of(self, tod_s: float) -> float:
        return self.origin_mono + (tod_s - self.tod0_s) / self.scale

    def tod_of(self, mono: float) -> float:
        return self.tod0_s + (mono - self.origin_mono) * self.scale


def _stamp(line: str) -> tuple[float, float] | None:
    """(local time of day, wall seconds) of a log line's stamp, read as UTC+0."""
    m = _STAMP.match(line)
    if m is None:
        return None
    moment = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
    local = calendar.timegm(moment.timetuple()) + int(m.group(2)) / 1000
    return local % 86_400, local


def read_timeline(log_path: Path, offset_s: int, scale: float) -> Timeline:
    """The station's clock from its log: StationClock takes the local time right after the
    service's bench-configuration warning is logged (within a millisecond: 0.12 s of station
    time at 120x)."""
    stamps = [_stamp(line) for line in log_path.read_text().splitlines() if CLOCK_MARK in line]
    stamp = stamps[-1] if stamps else None
    if stamp is None:
        raise SystemExit(f"the station's log does not show when its clock started: {log_path}")
    # The stamp is floored to the millisecond.
    tod0, local0 = stamp[0] + 0.0005, stamp[1] + 0.0005
    wall0 = local0 - offset_s
    origin_mono = time.monotonic() - (time.time() - wall0)
    return Timeline(origin_mono, tod0, scale)


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Station:
    """`charge-station serve` in a process of its own, under the bench's time zone."""

    def __init__(self, config: Path, state: Path, log_path: Path, tz: str) -> None:
        exe = Path(sys.executable).parent / "charge-station"
        self.log_path = log_path
        self._log = log_path.open("w")
        env = dict(os.environ, TZ=tz)
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--config", str(config), "--state", str(state)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.stop()
            raise SystemExit(f"the station did not start: {log_path.read_text()[-2000:]}")
        self.base = line.split("http://")[1].strip()

    def status_kb(self, key: str) -> int:
        """A /proc/PID/status figure in kB (VmHWM: the peak resident set)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


async def register(base: str, names: Sequence[str], code: str) -> dict[str, str]:
    """One driver per car through POST /register, one at a time: each costs a scrypt hash
    (16 MiB), and a crowd of them would be the station's peak memory, not the run's."""
    http = AsyncHTTPClient()
    tokens = {}
    for name in names:
        form = urlencode({"username": name, "password": f"{name}-password", "code": code})
        response = await http.fetch(f"http://{base}/register?{form}", method="POST", body="")
        tokens[name] = json.loads(response.body)["token"]
    return tokens


# -- the drivers ---------------------------------------------------------------------------------
class Car:
    """One driver: a WebSocket from the request to `done`, each message with its arrival time
    (stamped in the connection's callback, not when a reader gets round to it)."""

    def __init__(self, name: str, token: str) -> None:
        self.name = name
        self.token = token
        self.ws: WebSocketClientConnection | None = None
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.operations: list[tuple[str, int]] = []  # (event text, messages before it)
        self.local_refusals: list[str] = []  # operations with no request to act on
        self.requested = False
        self.closed = asyncio.Event()
        self.opened = asyncio.Event()

    def _on_message(self, text: str | bytes | None) -> None:
        if text is None:
            self.closed.set()
        else:
            self.messages.append((time.monotonic(), json.loads(text)))

    def request(self, base: str, mode: str, kwh: str) -> asyncio.Task[None]:
        """Open the request's socket; operations sent meanwhile wait for it."""
        self.requested = True
        return asyncio.create_task(self._open(base, mode, kwh))

    async def _open(self, base: str, mode: str, kwh: str) -> None:
        query = urlencode({"token": self.token, "mode": MODES[mode], "quantity": kwh})
        self.ws = await websocket_connect(
            f"ws://{base}/user/charge?{query}", on_message_callback=self._on_message
        )
        self.opened.set()

    async def operate(self, text: str, body: dict[str, Any]) -> None:
        if not self.requested:
            self.local_refusals.append(text)  # never in the station
            return
        await self.opened.wait()
        assert self.ws is not None
        if self.closed.is_set():
            self.local_refusals.append(text)  # the request had left the station
            return
        self.operations.append((text, len(self.messages)))
        await self.ws.write_message(json.dumps(body))

    def of_type(self, *kinds: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, m) for t, m in self.messages if m.get("type") in kinds]

    def refused(self) -> list[str]:
        """The events the station refused: a request answered with an error, an operation
        followed by an error before the next operation, and operations with nothing to act on."""
        out = list(self.local_refusals)
        if self.messages and self.messages[0][1].get("type") == "error":
            out.append("request")
        bounds = [index for _, index in self.operations] + [len(self.messages)]
        for (text, start), end in zip(self.operations, bounds[1:], strict=True):
            if any(m.get("type") == "error" for _, m in self.messages[start:end]):
                out.append(text)
        return out


def _revise(ev: ScenarioEvent) -> dict[str, Any]:
    body: dict[str, Any] = {"operation": "revise"}
    if ev.mode in MODES:
        body["mode"] = MODES[ev.mode]
    if ev.amount is not None:
        body["quantity"] = float(ev.amount)
    return body


async def play(
    events: Sequence[ScenarioEvent],
    cars: dict[str, Car],
    base: str,
    sim: PileSimProcess,
    units: dict[str, int],
    line: Timeline,
) -> list[float]:
    """Each event at its station time; how late each was sent (real seconds)."""
    late: list[float] = []
    pending: list[asyncio.Task[None]] = []
    for ev in events:
        due = line.real_of(ev.time_s)
        # In short steps: one long sleep here overshoots by about a millisecond per second.
        while (wait := due - time.monotonic()) > 0:
            await asyncio.sleep(min(wait, 0.25))
        late.append(time.monotonic() - due)
        if ev.kind is Kind.REQUEST:
            car = cars[ev.subject]
            pending.append(car.request(base, ev.mode, str(ev.amount)))
        elif ev.kind is Kind.LEAVE:
            pending.append(
                asyncio.create_task(cars[ev.subject].operate(ev.text, {"operation": "cancel"}))
            )
        elif ev.kind is Kind.CHANGE:
            pending.append(asyncio.create_task(cars[ev.subject].operate(ev.text, _revise(ev))))
        elif ev.kind is Kind.FAULT:
            sim.fault(units[ev.subject], "pile_fault", code=FAULT_CODE)
        else:
            sim.clear(units[ev.subject])
    await asyncio.gather(*pending)
    return late


# -- the simulator's view ------------------------------------------------------------------------
class Reading(NamedTuple):
    mid: float  # monotonic, halfway through the request
    state: str
    session_wh: int
    limit_wh: int
    power_w: int


class SimWatch(threading.Thread):
    """Reads `GET /state` of pile-sim every WATCH_EVERY_S: the piles' own physics, which says
    when a session reached its limit independently of the station."""

    def __init__(self, sim: PileSimProcess) -> None:
        super().__init__(name="sim watch", daemon=True)
        self.sim = sim
        self.scale = float(sim.line["scale"])
        self.readings: dict[int, list[Reading]] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            sent = time.monotonic()
            state = self.sim.state()
            mid = (sent + time.monotonic()) / 2
            for u in state["units"]:
                self.readings.setdefault(u["unit"], []).append(
                    Reading(mid, u["state"], u["session_wh"], u["limit_wh"], u["power_w"])
                )
            self._halt.wait(WATCH_EVERY_S)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()

    def finish(self, unit: int, limit_wh: int, before: float) -> float | None:
        """When the unit's session with this limit reached it (monotonic), from the last reading
        of it charging before `before`: what was left, at the power it drew. The session count
        is whole Wh, so this is known to half a Wh (1 ms of real time at 30 kW and 120x)."""
        for r in reversed(self.readings.get(unit, [])):
            if r.mid >= before or r.state != "charging" or r.limit_wh != limit_wh:
                continue
            left_s = (limit_wh - r.session_wh - 0.5) * 3600 / r.power_w / self.scale
            if r.mid + left_s <= before:
                return r.mid + left_s
        return None

    def started(self, unit: int, after: float) -> float | None:
        """When the unit's first session begun after `after` (monotonic) started drawing power:
        from its first reading, what it had delivered at the power it drew. None if no new
        session began within a second (the pile carried on with the one it had)."""
        for r in self.readings.get(unit, []):
            if r.mid <= after or r.state != "charging":
                continue
            if r.mid > after + 1.0:
                return None
            start = r.mid - (r.session_wh + 0.5) * 3600 / r.power_w / self.scale
            if start >= after:
                return start
        return None


class Live(NamedTuple):
    """What the live run left for the comparison."""

    cars: dict[str, Car]
    watch: SimWatch
    line: Timeline
    late_s: list[float]
    real_s: float
    memory_kb: dict[str, int]  # the station's peak (VmHWM), and its resident set at the end
    cpu_s: dict[str, float]  # during the run: station, pile-sim and this bench
    tz: str
    log: dict[str, int]
