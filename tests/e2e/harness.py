"""The end-to-end bench: `pile-sim` and `charge-station serve` as real processes, cars on the
station's WebSocket, and the checks every failure test ends with.

The station drives the simulator over real Modbus (TCP, or RTU on a pty pair). Both run the same
speed-up, so a charge takes seconds. The truth for billing is the simulator's own meters
(`GET /state`); the bills are read from the station's database, where they are exact (whole Wh,
fees as exact fractions), and from `/user/log`, where drivers see them rounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import jwt
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.websocket import WebSocketClientConnection, websocket_connect

from firmware_sim.launch import PileSimProcess

T = TypeVar("T")
Message = dict[str, Any]

SCRIPT = Path(sys.executable).parent / "charge-station"
BENCH_CODE = "e2e-bench-code"
OPERATOR = "operator"
PASSWORD = "e2e-password"

# Time: the station and pile-sim run SCALE times faster than real time. A 30 kW pile then
# delivers 30 kW * 60 / 3600 s = 0.5 kWh a real second. (Faster runs blur the meter checks: the
# station's meter guard allows 2 Wh of slack, which at 30 kW is 4 ms of network jitter at this
# speed-up and well under a millisecond at 600.)
SCALE = 60
POLL_S = 6  # the station's poll, station seconds: 0.1 real s
# The reference piles' heartbeat watchdog, station seconds: 1.5 real s, well above the gaps
# between heartbeats on a busy machine, and short enough that a test waits for it.
WATCHDOG_S = 90
# Every Modbus link answers within this (real seconds) or the read is a miss.
LINK_TIMEOUT_S = 0.2
START_METER_WH = 1_000_000  # meters are not new: 1 MWh on the counter at the start

# One price all day, so the expected fee does not depend on when the test runs:
# fee = kWh * (1.00 + 0.50) yuan.
PRICE_YUAN = Fraction(1)
SERVICE_YUAN = Fraction(1, 2)

DB_FILE = "station.sqlite3"


def real_s(station_s: float) -> float:
    """Real seconds for a stretch of station time."""
    return station_s / SCALE


# -- waiting -----------------------------------------------------------------------------------


async def until(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll `check()` until it returns something true; fail naming `what` on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.01)


async def until_async(
    read: Callable[[], Awaitable[T]], want: T, timeout_s: float, what: str
) -> None:
    """Await `read()` until it returns `want`; fail naming `what` (and the last value)."""
    deadline = time.monotonic() + timeout_s
    while (value := await read()) != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}: {value!r}")
        await asyncio.sleep(0.02)


async def until_async_nonempty(
    read: Callable[[], Awaitable[list[T]]], timeout_s: float, what: str
) -> list[T]:
    """Await `read()` until it returns a non-empty list; fail naming `what` on timeout."""
    deadline = time.monotonic() + timeout_s
    while not (value := await read()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.05)
    return value


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PileConf:
    """One `[[piles]]` table of the station's configuration."""

    id: int
    name: str
    link: str
    mode: str = "fast"
    power_kw: int = 30
    unit: int = 1
    profile: str = "reference"
    meter_unit: int | None = None
    watchdog_s: int | None = WATCHDOG_S  # None: the station's default (evse-wb has none)
    pause_s: float | None = None  # None: the device kind's own


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"no TOML for {value!r}")


def station_toml(
    piles: Sequence[PileConf],
    *,
    station: dict[str, object] | None = None,
    scale: float = SCALE,
    poll_s: float = POLL_S,
) -> str:
    """A station configuration: the piles, one tariff price all day, the bench's speed-up."""
    lines = ["[station]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in (station or {}).items()]
    lines += [
        "",
        "[tariff]",
        f"service_fee = {float(SERVICE_YUAN)}",
        "[tariff.prices]",
        f"all_day = {float(PRICE_YUAN)}",
        "[tariff.periods]",
        'all_day = ["00:00-24:00"]',
        "",
        "[clock]",
        f"scale = {scale}",
        "",
        "[server]",
        "port = 0",
        f"poll_s = {poll_s}",
        "",
        "[accounts]",
        f'bench_registration_code = "{BENCH_CODE}"',
    ]
    for p in piles:
        table = {
            "id": p.id,
            "name": p.name,
            "mode": p.mode,
            "power_kw": p.power_kw,
            "link": p.link,
            "unit": p.unit,
            "profile": p.profile,
        }
        if p.meter_unit is not None:
            table["meter_unit"] = p.meter_unit
        if p.watchdog_s is not None:
            table["watchdog_s"] = p.watchdog_s
        if p.pause_s is not None:
            table["pause_s"] = p.pause_s
        lines += ["", "[[piles]]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def tcp_link(sim: PileSimProcess, unit: int) -> str:
    return f"{sim.tcp_link(unit)}?timeout={LINK_TIMEOUT_S}"


def rtu_link(sim: PileSimProcess) -> str:
    return f"rtu://{sim.serial_path}?baudrate=115200&timeout={LINK_TIMEOUT_S}"


def ref_pile(unit: int, kw: int, *options: str, watchdog_s: int = WATCHDOG_S) -> str:
    """A pile-sim spec of a reference pile whose meter starts at START_METER_WH + unit."""
    spec = [str(unit), "reference", str(kw), f"meter_wh={START_METER_WH + unit}"]
    spec += [f"watchdog={watchdog_s}", *options]
    return ":".join(spec)


# -- the station as a process ------------------------------------------------------------------


class StationProcess:
    """`charge-station serve` on port 0; `base` is its HOST:PORT, `log_lines` its standard
    error so far."""

    def __init__(self, config: Path, state: Path) -> None:
        self.config = config
        self.state = state
        self.proc: subprocess.Popen[str] | None = None
        self.base = ""
        self.log_lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def db(self) -> Path:
        return self.state / DB_FILE

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 30.0) -> str:
        assert self.proc is None or self.proc.poll() is not None, "the station is running"
        self.proc = proc = subprocess.Popen(
            [str(SCRIPT), "serve", "--config", str(self.config), "--state", str(self.state)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Standard error goes through a pipe drained by a thread: a station whose log fills the
        # pipe would block, and a file would be subject to the file-size limit of the disk test.
        self._reader = threading.Thread(
            target=self._drain, args=(proc.stderr,), name="station stderr", daemon=True
        )
        self._reader.start()
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("station listening on http://"):
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"the station did not start within {timeout_s:g} s: {line!r}\n" + self.log_tail()
            )
        self.base = line.split("http://", 1)[1].strip()
        return self.base

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self.log_lines.append(line.rstrip("\n"))

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_lines[-lines:])

    def logged(self, text: str) -> list[str]:
        return [line for line in self.log_lines if text in line]

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self._join()

    def terminate(self, timeout_s: float = 20.0) -> int:
        """SIGTERM; the exit status (the station must exit by itself within timeout_s)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"the station did not exit within {timeout_s:g} s of SIGTERM\n" + self.log_tail()
            ) from None
        self._join()
        return status

    def _join(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
        assert self.proc is not None
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def close(self) -> None:
        """Whatever state the test left it in: gone."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL ends a process stopped by SIGSTOP too
            self.proc.wait()
        self._join()


# -- cars --------------------------------------------------------------------------------------


@dataclass(eq=False)
class Car:
    """A driver with an account, and every message the station sent to any of its sockets."""

    name: str
    token: str
    user_id: int
    messages: list[Message] = field(default_factory=list)
    closed: bool = True
    ws: WebSocketClientConnection | None = None
    _reader: asyncio.Task[None] | None = None

    async def open(self, base: str, mode: str = "fast", kwh: float | None = None) -> Message:
        """Open /user/charge (a request, or a resume); the first message of the new socket."""
        query = {"token": self.token, "mode": mode}
        if kwh is not None:
            query["quantity"] = f"{kwh:g}"
        start = len(self.messages)
        self.ws = await websocket_connect(f"ws://{base}/user/charge?{urlencode(query)}")
        self.closed = False
        self._reader = asyncio.ensure_future(self._read(self.ws))
        first = await self.wait(lambda m: True, 10, "the first message", start=start)
        return first

    async def _read(self, ws: WebSocketClientConnection) -> None:
        while (text := await ws.read_message()) is not None:
            assert isinstance(text, str)
            self.messages.append(json.loads(text))
        self.closed = True

    def send(self, operation: dict[str, Any]) -> None:
        assert self.ws is not None
        self.ws.write_message(json.dumps(operation))

    async def wait(
        self,
        match: Callable[[Message], bool],
        timeout_s: float,
        what: str,
        *,
        start: int = 0,
    ) -> Message:
        """The first message from index `start` on that matches."""

        def found() -> Message | None:
            return next((m for m in self.messages[start:] if match(m)), None)

        try:
            return await until(found, timeout_s, f"{self.name}: {what}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; got {self.types()}") from None

    async def wait_type(self, kind: str, timeout_s: float, *, start: int = 0) -> Message:
        return await self.wait(lambda m: m["type"] == kind, timeout_s, f"a {kind!r}", start=start)

    def of_type(self, kind: str) -> list[Message]:
        return [m for m in self.messages if m["type"] == kind]

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    async def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # going anyway
                await self._reader
        self.closed = True


async def http_json(base: str, path: str, params: dict[str, str], method: str = "GET") -> Any:
    url = f"http://{base}{path}?{urlencode(params)}"
    body = b"" if method == "POST" else None
    try:
        response = await AsyncHTTPClient().fetch(url, method=method, body=body)
    except HTTPClientError as exc:
        detail = exc.response.body.decode() if exc.response is not None else ""
        raise AssertionError(f"{method} {path}: {exc} {detail}") from None
    return json.loads(response.body)


async def register(base: str, name: str) -> Car:
    params = {"username": name, "password": PASSWORD, "code": BENCH_CODE}
    token = (await http_json(base, "/register", params, "POST"))["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    return Car(name, token, int(claims["sub"]))


def add_operator(state: Path) -> None:
    """An operator account, made with the operator's command (before the station starts)."""
    state.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(SCRIPT), "user", "add", OPERATOR, "--operator", "--state", str(state)],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def operator_token(base: str) -> str:
    params = {"username": OPERATOR, "password": PASSWORD}
    return str((await http_json(base, "/login", params, "POST"))["token"])


async def admin_view(base: str, token: str) -> tuple[dict[int, Any], dict[str, list[str]]]:
    """(pile id -> {state, queue: [queueNo...]}, mode -> priority line [queueNo...])."""
    piles = (await http_json(base, "/admin/piles", {"token": token}))["piles"]
    queues = await http_json(base, "/admin/queues", {"token": token})
    by_id = {
        p["stationId"]: {"state": p["state"], "queue": [c["queueNo"] for c in p["queue"]]}
        for p in piles
    }
    lines = {mode: [c["queueNo"] for c in line] for mode, line in queues["priority"].items()}
    return by_id, lines


async def user_log(base: str, car: Car) -> list[Message]:
    return list(await http_json(base, "/user/log", {"token": car.token, "num": "100"}))


# -- the truth: pile-sim's own meters ----------------------------------------------------------


def meters(sim: PileSimProcess) -> dict[int, int]:
    """unit -> the physics' true meter count, Wh."""
    return {u["unit"]: int(u["meter_wh"]) for u in sim.state()["units"] if "meter_wh" in u}


# -- bills as stored ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredBill:
    id: int
    user_id: int
    queue_no: str
    pile_id: int
    reason: str
    energy_wh: Fraction
    charge_fee_yuan: Fraction
    service_fee_yuan: Fraction


def stored_bills(db: Path) -> list[StoredBill]:
    """Every bill in the station's database, exact, in id order (read-only connection)."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = connection.execute(
            "SELECT id, user_id, queue_no, pile_id, reason, energy_wh, charge_fee_yuan,"
            " service_fee_yuan FROM bills ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    return [
        StoredBill(r[0], r[1], r[2], r[3], r[4], Fraction(r[5]), Fraction(r[6]), Fraction(r[7]))
        for r in rows
    ]


def shown(value: Fraction) -> float:
    """Rounded half up to 0.01, as the API shows amounts."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def check_fees(bills: Iterable[StoredBill]) -> None:
    """Each bill's fees from its energy and the one all-day price: charging fee = kWh * 1.00,
    service fee = kWh * 0.50 (yuan), exactly."""
    for b in bills:
        kwh = b.energy_wh / 1000
        assert b.charge_fee_yuan == kwh * PRICE_YUAN, (b, kwh * PRICE_YUAN)
        assert b.service_fee_yuan == kwh * SERVICE_YUAN, (b, kwh * SERVICE_YUAN)


def billed_wh_by_pile(bills: Iterable[StoredBill]) -> dict[int, Fraction]:
    out: dict[int, Fraction] = {}
    for b in bills:
        out[b.pile_id] = out.get(b.pile_id, Fraction(0)) + b.energy_wh
    return out


def billed_wh_by_user(bills: Iterable[StoredBill]) -> dict[int, Fraction]:
    out: dict[int, Fraction] = {}
    for b in bills:
        out[b.user_id] = out.get(b.user_id, Fraction(0)) + b.energy_wh
    return out


def check_bills_match_meters(
    bills: Sequence[StoredBill],
    before: dict[int, int],
    after: dict[int, int],
    unit_of_pile: dict[int, int],
) -> None:
    """Per pile: the energy of its bills == its true meter at the end - at the start, to the Wh."""
    billed = billed_wh_by_pile(bills)
    for pile_id, unit in unit_of_pile.items():
        delivered = after[unit] - before[unit]
        assert billed.get(pile_id, 0) == delivered, (
            f"pile {pile_id} (unit {unit}): billed {billed.get(pile_id, 0)} Wh, its meter says "
            f"{after[unit]} - {before[unit]} = {delivered} Wh delivered; bills: {list(bills)}"
        )


async def check_user_log(base: str, car: Car, bills: Sequence[StoredBill]) -> None:
    """What the driver sees in /user/log: the same bills, rounded for showing."""
    mine = sorted((b for b in bills if b.user_id == car.user_id), key=lambda b: b.id)
    log = sorted(await user_log(base, car), key=lambda e: e["id"])
    assert [e["id"] for e in log] == [b.id for b in mine]
    for entry, bill in zip(log, mine, strict=True):
        charge, service = shown(bill.charge_fee_yuan), shown(bill.service_fee_yuan)
        assert entry["stationId"] == bill.pile_id
        assert entry["quantity"] == shown(bill.energy_wh / 1000)
        assert (entry["costOfCharge"], entry["costOfService"]) == (charge, service)
        assert entry["cost"] == float(Decimal(str(charge)) + Decimal(str(service)))


# -- clean-up ----------------------------------------------------------------------------------


class Bench:
    """Everything a test started, stopped at its end whatever happened."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state = tmp / "state"
        self.config = tmp / "station.toml"
        self.sims: list[PileSimProcess] = []
        self.stations: list[StationProcess] = []
        self.cars: list[Car] = []

    def pile_sim(self, piles: Sequence[str], *, pty: bool = False) -> PileSimProcess:
        args = ["--scale", str(SCALE)]
        args += ["--pty"] if pty else ["--tcp", "127.0.0.1:0", "--port-per-pile"]
        for spec in piles:
            args += ["--pile", spec]
        log = (self.tmp / f"pile-sim-{len(self.sims)}.log").open("w")
        try:
            sim = PileSimProcess.start(args, stderr=log)
        finally:
            log.close()  # the child has its own copy
        self.sims.append(sim)
        return sim

    def station(self, toml: str, *, operator: bool = False) -> StationProcess:
        self.config.write_text(toml)
        if operator:
            add_operator(self.state)
        station = StationProcess(self.config, self.state)
        self.stations.append(station)
        station.start()
        return station

    async def car(self, base: str, name: str) -> Car:
        car = await register(base, name)
        self.cars.append(car)
        return car

    async def close(self) -> None:
        for car in self.cars:
            await car.close()
        for station in self.stations:
            station.close()
        for sim in self.sims:
            sim.stop()


async def idle_meters(sim: PileSimProcess, timeout_s: float = 15.0) -> dict[int, int]:
    """pile-sim's true meters once no pile delivers power any more."""

    def idle() -> dict[int, int] | None:
        if any(u.get("power_w") for u in sim.state()["units"]):
            return None
        return meters(sim)

    return await until(idle, timeout_s, "every pile idle")
