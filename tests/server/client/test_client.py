"""`charge-client` as a user runs it: a subprocess against a real `charge-station serve` process.

The stations run on simulated piles with a flat tariff of 1.2 yuan/kWh plus 0.8 service, so a
charge of Q kWh costs Q x 1.2 + Q x 0.8 = Q x 2.0 yuan. The fast station runs 1800 times faster
than real time (30 kWh at 30 kW: one station hour, two real seconds). The slow one runs in
real time with one place per pile queue, and a car charging 300 kWh on its only fast pile keeps
every later fast request in the waiting area for the whole test.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import pty
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO

import pytest

from tests.kits.serve_process import start_serve

BIN = Path(sys.executable).parent
STATION = BIN / "charge-station"
CLIENT = BIN / "charge-client"
TLS = Path(__file__).parent / "tls"
CODE = "bench-only-code"
PRICE = Decimal("1.2")  # yuan per kWh, all day
SERVICE = Decimal("0.8")  # yuan per kWh
CENT = Decimal("0.01")
FAST = 1800  # the fast station's time runs this many times faster than real time
POLL_REAL_S = 1 / 32  # real seconds between the control loop's polls
WAIT_S = 20  # for a line or an exit that should come within a second or two

CONFIG = """
[station]
waiting_area_size = 20
pile_queue_len = {queue_len}

[clock]
scale = {scale}

[server]
port = 0
poll_s = {poll_s}
{tls}

[accounts]
bench_registration_code = "{code}"

[tariff]
service_fee = {service}

[tariff.prices]
flat = {price}

[tariff.periods]
flat = ["00:00-24:00"]

[[piles]]
id = 1
name = "A"
mode = "fast"
power_kw = 30

[[piles]]
id = 2
name = "C"
mode = "common"
power_kw = 7
"""


# -- processes ------------------------------------------------------------------------------------
class Lines:
    """A process's output read by a thread, so that a test waits on a line with a time limit."""

    def __init__(self, stream: IO[str]) -> None:
        self.text = ""
        self._pos = 0  # where the next search starts
        self._chunks: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream.fileno(),), daemon=True).start()

    def _read(self, fd: int) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")()
        while chunk := os.read(fd, 4096):
            self._chunks.put(decoder.decode(chunk))
        self._chunks.put(None)

    def wait_for(self, pattern: str, *, partial: bool = False) -> re.Match[str]:
        """The first match after the last one, in whole lines (or in a prompt: `partial`)."""
        while True:
            end = len(self.text) if partial else self.text.rfind("\n") + 1
            match = re.compile(pattern, re.M).search(self.text, self._pos, max(end, self._pos))
            if match:
                self._pos = match.end()
                return match
            chunk = self._chunks.get(timeout=WAIT_S)
            assert chunk is not None, f"no {pattern!r} in {self.text!r}"
            self.text += chunk

    def rest(self) -> str:
        while (chunk := self._chunks.get(timeout=WAIT_S)) is not None:
            self.text += chunk
        return self.text


@dataclass
class Station:
    url: str
    state: Path
    proc: subprocess.Popen[str]

    def operator(self, home: Path, name: str) -> Client:
        """`charge-station user add NAME --operator`, then `charge-client login NAME`."""
        password = f"{name}-pass-1"
        done = subprocess.run(
            [str(STATION), "user", "add", name, "--operator", "--state", str(self.state)],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=WAIT_S,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        client = Client(home / name, self.url)
        client.ok("login", name, "--server", self.url, stdin=password + "\n")
        return client


def start_station(directory: Path, *, scale: int, queue_len: int = 2, tls: bool = False) -> Station:
    directory.mkdir(parents=True, exist_ok=True)
    tls_keys = f'tls_cert = "{TLS / "server.pem"}"\ntls_key = "{TLS / "server.key"}"' if tls else ""
    config = directory / "station.toml"
    config.write_text(
        CONFIG.format(
            scale=scale,
            poll_s=min(60, max(0.05, POLL_REAL_S * scale)),  # station seconds, in the bounds
            queue_len=queue_len,
            tls=tls_keys,
            code=CODE,
            price=PRICE,
            service=SERVICE,
        )
    )
    state = directory / "state"
    proc, url = start_serve(config, state, stderr=subprocess.DEVNULL)
    return Station(url, state, proc)


STOPPING: list[subprocess.Popen[str]] = []


def stop(station: Station) -> None:
    """SIGTERM; the station's orderly stop takes a few seconds, waited for once at the end of
    the module (`stations_stopped`) rather than after each test."""
    station.proc.send_signal(signal.SIGTERM)
    STOPPING.append(station.proc)


@pytest.fixture(scope="module", autouse=True)
def stations_stopped() -> Iterator[None]:
    yield
    for proc in STOPPING:
        proc.communicate(timeout=WAIT_S)
    STOPPING.clear()


@dataclass
class Client:
    home: Path  # XDG_CONFIG_HOME
    url: str
    env: dict[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGE_STATION_")}
        return env | {"XDG_CONFIG_HOME": str(self.home)} | self.env

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(CLIENT), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.environ(),
            timeout=WAIT_S,
            check=False,
        )
        # Nothing a user or a station can cause shows a traceback.
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def ok(self, *args: str, stdin: str = "") -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def start(self, *args: str, stdin: int | IO[str] = subprocess.DEVNULL) -> Running:
        proc = subprocess.Popen(
            [str(CLIENT), *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environ(),
        )
        assert proc.stdout is not None and proc.stderr is not None
        return Running(proc, Lines(proc.stdout), Lines(proc.stderr))


@dataclass
class Running:
    proc: subprocess.Popen[str]
    out: Lines
    err: Lines

    def finish(self) -> tuple[int, str, str]:
        out, err = self.out.rest(), self.err.rest()
        code = self.proc.wait(timeout=WAIT_S)
        assert "Traceback" not in err, err
        return code, out, err


def driver(station: Station, home: Path, name: str) -> Client:
    client = Client(home / name, station.url)
    out = client.ok("register", name, "--code", CODE, "--server", station.url, stdin="pw-123456\n")
    assert f"registered {name}" in out
    return client


def money(kwh: Decimal, price: Decimal) -> Decimal:
    return (kwh * price).quantize(CENT)


def bill_amounts(out: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """energy, charge fee, service fee and total of the last bill printed."""

    def last(label: str) -> Decimal:
        values = re.findall(rf"^  {label}\s+([\d.]+) ", out, re.MULTILINE)
        assert values, out
        return Decimal(values[-1])

    return last("energy"), last("charge fee"), last("service fee"), last("total")


# -- stations -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    station = start_station(tmp_path_factory.mktemp("fast"), scale=FAST)
    yield station
    stop(station)


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    """Real time; pile A charges a 300 kWh car for hours, later fast cars wait."""
    directory = tmp_path_factory.mktemp("slow")
    station = start_station(directory, scale=1, queue_len=1)
    blocker = driver(station, directory, "blocker").start(
        "charge", "--mode", "fast", "--quantity", "300", "--on-interrupt", "leave"
    )
    blocker.out.wait_for(r"^charging at pile 1$")
    blocker.proc.send_signal(signal.SIGINT)
    assert blocker.finish()[0] == 130
    yield station
    stop(station)


# -- accounts -------------------------------------------------------------------------------------
def test_register_and_login_keep_the_token_private(fast: Station, tmp_path: Path) -> None:
    dora = driver(fast, tmp_path, "dora")
    folder = tmp_path / "dora" / "charge-client"
    kept = folder / "client.json"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    data = json.loads(kept.read_text())
    assert data["current"] == fast.url
    assert data["stations"][fast.url]["username"] == "dora"
    token = data["stations"][fast.url]["token"]
    assert token.count(".") == 2  # a JWT
    assert "pw-123456" not in kept.read_text()

    # The address was remembered: no --server from here on.
    assert dora.ok("log").strip() == "no bills yet"
    assert "logged out" in dora.ok("logout")
    assert "token" not in json.loads(kept.read_text())["stations"][fast.url]
    done = dora.run("log")
    assert done.returncode == 3 and "not logged in" in done.stderr

    done = dora.run("login", "dora", stdin="wrong-password\n")
    assert done.returncode == 3 and "wrong username or password" in done.stderr
    assert "token" not in json.loads(kept.read_text())["stations"][fast.url]
    assert "logged in as dora" in dora.ok("login", "dora", stdin="pw-123456\n")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert dora.ok("log").strip() == "no bills yet"

    taken = Client(tmp_path / "other", fast.url).run(
        "register", "dora", "--code", CODE, "--server", fast.url, stdin="pw-123456\n"
    )
    assert taken.returncode == 1 and "username is taken" in taken.stderr


# -- a charge from the queue number to the bill ---------------------------------------------------
def test_charge_shows_the_queue_number_the_call_progress_and_the_bill(
    fast: Station, tmp_path: Path
) -> None:
    eve = driver(fast, tmp_path, "eve")
    quantity = Decimal(30)
    code, out, err = eve.start("charge", "--mode", "fast", "--quantity", "30").finish()
    assert code == 0, err
    assert re.search(r"^queue number F\d+ \(fast, 30\.00 kWh\): 0 cars ahead", out, re.M), out
    assert re.search(r"^called: go to pile 1", out, re.M), out
    assert re.search(r"^charging at pile 1$", out, re.M), out
    # At least one progress line (the station sends one a second; this charge takes two),
    # its fee the tariff's price of what it shows as charged.
    progress = re.findall(
        r"^progress .* (\d+\.\d\d) / 30\.00 kWh  fee (\d+\.\d\d) yuan$", out, re.M
    )
    assert progress, out
    for charged, fee in progress:
        assert 0 < Decimal(charged) < quantity
        assert abs(Decimal(fee) - Decimal(charged) * (PRICE + SERVICE)) <= Decimal("0.02")
    energy, charge_fee, service_fee, total = bill_amounts(out)
    assert energy == quantity
    assert charge_fee == money(quantity, PRICE) == Decimal("36.00")
    assert service_fee == money(quantity, SERVICE) == Decimal("24.00")
    assert total == charge_fee + service_fee
    assert out.rstrip().endswith("completed")

    # The log: the same bill as a table, and as the station's JSON, fields unchanged.
    (row,) = eve.ok("log").splitlines()[1:]
    cells = row.split()  # id, ended (date and time), pile, kWh, hours, charge, service, total
    assert cells[3:5] == ["1", "30.00"]
    assert cells[6:] == [str(charge_fee), str(service_fee), str(total)]
    (bill,) = json.loads(eve.ok("log", "--json"))
    assert set(bill) == {
        "id", "time", "stationId", "quantity", "timeOfUse", "startTime", "endTime",
        "costOfCharge", "costOfService", "cost",
    }  # fmt: skip
    assert (bill["quantity"], bill["costOfCharge"], bill["costOfService"], bill["cost"]) == (
        30.0, 36.0, 24.0, 60.0
    )  # fmt: skip
    assert str(bill["id"]) == row.split()[0]


def test_the_station_refusing_an_amount_is_said_and_makes_no_request(
    fast: Station, tmp_path: Path
) -> None:
    fay = driver(fast, tmp_path, "fay")
    done = fay.run("charge", "--mode", "fast", "--quantity", "301")  # the default maximum: 300
    assert done.returncode == 1
    assert "does not accept this amount" in done.stderr and "300" in done.stderr
    assert fay.run("status").returncode == 5
    usage = fay.run("charge", "--mode", "fast")
    assert usage.returncode == 2 and "--quantity" in usage.stderr
    assert fay.run("charge", "--mode", "fast", "--quantity", "-3").returncode == 2


# -- a request left in the station ----------------------------------------------------------------
def test_ctrl_c_leaves_the_request_and_status_revise_cancel_reach_it(
    slow: Station, tmp_path: Path
) -> None:
    gus = driver(slow, tmp_path, "gus")
    charging = gus.start("charge", "--mode", "fast", "--quantity", "10")
    number = charging.out.wait_for(r"^queue number (F\d+) \(fast, 10\.00 kWh\): (.*)$")
    queue_no = number.group(1)
    # Pile A is busy and its queue holds one car: this one waits, first in the fast line.
    assert number.group(2) == "in the waiting area, 0 cars ahead"
    charging.proc.send_signal(signal.SIGINT)  # stdin is not a terminal: left queued
    code, out, _ = charging.finish()
    assert code == 130 and f"left in the station: request {queue_no}" in out

    status = gus.ok("status")
    assert re.search(rf"^queue number\s+{queue_no}$", status, re.M), status
    assert re.search(r"^asked for\s+10\.00 kWh$", status, re.M), status
    assert re.search(r"^where\s+in the waiting area", status, re.M), status
    state = json.loads(gus.ok("status", "--json"))
    assert (state["queueNo"], state["quantity"], state["area"]) == (queue_no, 10.0, "waiting")

    revised = gus.ok("revise", "--quantity", "12.5")
    assert f"revised: request {queue_no}: fast, 12.50 kWh, in the waiting area" in revised
    assert json.loads(gus.ok("status", "--json"))["quantity"] == 12.5

    # A change of mode: a new number of the new mode; the idle common pile C calls it at once.
    revised = gus.ok("revise", "--mode", "common")
    assert re.search(r"revised: request T\d+: common, 12\.50 kWh", revised), revised
    # Called to pile C at once (dispatch follows the change): out of the waiting area.
    assert json.loads(gus.ok("status", "--json"))["area"] in ("queue", "charging")
    refused = gus.run("revise", "--quantity", "5")
    assert refused.returncode == 1
    assert "only while it is in the waiting area" in refused.stderr
    assert "pile 2" in refused.stderr  # where it is, said

    cancelled = gus.ok("cancel")
    assert re.search(r"^cancelled request T\d+$", cancelled, re.M), cancelled
    for command in ("status", "cancel", "revise"):
        gone = gus.run(command, *(["--quantity", "3"] if command == "revise" else []))
        assert gone.returncode == 5 and "no request" in gone.stderr, command


def test_ctrl_c_with_on_interrupt_cancel_cancels(slow: Station, tmp_path: Path) -> None:
    hal = driver(slow, tmp_path, "hal")
    ivy = driver(slow, tmp_path, "ivy")
    first = hal.start("charge", "--mode", "fast", "--quantity", "5", "--on-interrupt", "cancel")
    first.out.wait_for(r"^queue number F\d+ .*: in the waiting area, 0 cars ahead$")
    second = ivy.start("charge", "--mode", "fast", "--quantity", "7")
    second.out.wait_for(r"^queue number F\d+ .*: in the waiting area, 1 car ahead$")

    # The operator sees both, in the order they came.
    olga = slow.operator(tmp_path, "olga")
    waiting = [line.split() for line in olga.ok("queue").splitlines()[1:]]
    assert [(w[0], w[1], w[3], w[5]) for w in waiting] == [
        ("waiting", "1", "hal", "5.00"),
        ("waiting", "2", "ivy", "7.00"),
    ]

    first.proc.send_signal(signal.SIGINT)
    code, out, _ = first.finish()
    assert code == 6 and re.search(r"^request F\d+ cancelled$", out, re.M), out
    assert hal.run("status").returncode == 5
    # The car behind moves up, and is told.
    second.out.wait_for(r"^F\d+: in the waiting area, 0 cars ahead$")
    second.proc.send_signal(signal.SIGINT)
    assert second.finish()[0] == 130
    assert "cancelled" in ivy.ok("cancel")


def test_ctrl_c_on_a_terminal_asks_cancel_or_leave(slow: Station, tmp_path: Path) -> None:
    jo = driver(slow, tmp_path, "jo")
    master, terminal = pty.openpty()
    try:
        with os.fdopen(terminal, "r", closefd=False) as tty_in:
            charging = jo.start("charge", "--mode", "fast", "--quantity", "5", stdin=tty_in)
        charging.out.wait_for(r"^queue number F\d+")
        charging.proc.send_signal(signal.SIGINT)
        charging.err.wait_for(r"cancel the request, or leave it queued\? \[c/l\] ", partial=True)
        os.write(master, b"x\n")
        charging.err.wait_for(r"please answer c \(cancel\) or l \(leave\): ", partial=True)
        os.write(master, b"c\n")
        code, out, _ = charging.finish()
    finally:
        os.close(master)
        os.close(terminal)
    assert code == 6 and re.search(r"^request F\d+ cancelled$", out, re.M), out
    assert jo.run("status").returncode == 5


# -- operators ------------------------------------------------------------------------------------
def test_operator_commands(tmp_path: Path) -> None:
    station = start_station(tmp_path / "station", scale=FAST)
    try:
        kim = driver(station, tmp_path, "kim")
        quantity = Decimal(10)
        assert "completed" in kim.ok("charge", "--mode", "fast", "--quantity", "10")
        refused = kim.run("piles")
        assert refused.returncode == 1 and "operators only" in refused.stderr

        olga = station.operator(tmp_path, "olga")
        piles = [line.split() for line in olga.ok("piles").splitlines()[1:3]]
        charge_fee, service_fee = money(quantity, PRICE), money(quantity, SERVICE)
        total = charge_fee + service_fee
        assert piles[0][:6] == ["1", "A", "fast", "30", "working", "1"]
        assert piles[0][7:] == ["10.00", str(charge_fee), str(service_fee), str(total)]
        assert piles[1][:6] == ["2", "C", "common", "7", "working", "0"]

        assert olga.ok("pile", "off", "2").strip() == "pile 2 is off"
        states = {
            p["stationId"]: p["state"] for p in json.loads(olga.ok("piles", "--json"))["piles"]
        }
        assert states == {1: "working", 2: "off"}
        again = olga.run("pile", "off", "2")
        assert again.returncode == 1 and "not working" in again.stderr
        assert olga.ok("pile", "on", "2").strip() == "pile 2 is working"
        unknown = olga.run("pile", "on", "9")
        assert unknown.returncode == 1 and "no such pile" in unknown.stderr
        assert "empty" in olga.ok("queue")

        # The day's report: kim's one session on A, nothing on C; the total row.
        report = olga.ok("report", "--period", "day").splitlines()
        assert report[0].startswith("day report, ")
        rows = {line.split()[0]: line.split()[1:] for line in report[2:]}
        assert rows["1"] == [
            "A",
            "1",
            rows["1"][2],
            "10.00",
            *map(str, (charge_fee, service_fee, total)),
        ]
        assert rows["2"] == ["C", "0", "0.0000", "0.00", "0.00", "0.00", "0.00"]
        assert rows["total"][0] == "1" and rows["total"][-1] == str(total)
        table = list(csv.reader(io.StringIO(olga.ok("report", "--period", "month", "--csv"))))
        assert table[0] == [
            "stationId", "name", "sessions", "timeOfUse", "quantity", "costOfCharge",
            "costOfService", "cost",
        ]  # fmt: skip
        assert [r[:3] + r[4:] for r in table[1:]] == [
            ["1", "A", "1", "10.00", str(charge_fee), str(service_fee), str(total)],
            ["2", "C", "0", "0.00", "0.00", "0.00", "0.00"],
            ["", "total", "1", "10.00", str(charge_fee), str(service_fee), str(total)],
        ]

        # Codes: one a line, each good for one registration.
        issued = olga.run("codes", "issue", "2", "--hours", "1")
        assert issued.returncode == 0 and "2 registration codes" in issued.stderr
        first, second = issued.stdout.split()
        assert first != second
        new = Client(tmp_path / "lea", station.url)
        new.ok("register", "lea", "--code", first, "--server", station.url, stdin="pw-123456\n")
        reused = Client(tmp_path / "max", station.url).run(
            "register", "max", "--code", first, "--server", station.url, stdin="pw-123456\n"
        )
        assert reused.returncode == 1 and "registration code" in reused.stderr
    finally:
        stop(station)


# -- errors ---------------------------------------------------------------------------------------
def test_no_station_no_login_and_a_rejected_token(fast: Station, tmp_path: Path) -> None:
    nobody = Client(tmp_path / "nobody", fast.url)
    done = nobody.run("log")
    assert done.returncode == 2 and "--server" in done.stderr
    done = nobody.run("log", "--server", fast.url)
    assert done.returncode == 3 and f"not logged in to {fast.url}" in done.stderr
    assert nobody.run("status", "--server", "ftp://station").returncode == 2

    # A token the station does not accept (forged, or from before its secret changed).
    folder = tmp_path / "forged" / "charge-client"
    folder.mkdir(parents=True)
    (folder / "client.json").write_text(
        json.dumps({"current": fast.url, "stations": {fast.url: {"token": "a.b.c"}}})
    )
    forged = Client(tmp_path / "forged", fast.url)
    for command in ("log", "status"):  # HTTP, and the WebSocket's 4401
        done = forged.run(command)
        assert done.returncode == 3 and "log in again" in done.stderr, command


def test_a_station_not_reachable_is_exit_4_saying_why(tmp_path: Path) -> None:
    client = Client(tmp_path / "home", "")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    done = client.run("login", "ann", "--server", closed, stdin="pw-123456\n")
    assert done.returncode == 4 and "connection refused" in done.stderr
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        done = client.run("login", "ann", "--server", url, "--timeout", "0.3", stdin="pw\n")
    assert done.returncode == 4 and "timed out" in done.stderr
    assert not (tmp_path / "home" / "charge-client" / "client.json").exists()


def test_tls_with_the_station_ca_and_without_it(tmp_path: Path) -> None:
    station = start_station(tmp_path / "station", scale=FAST, tls=True)
    try:
        assert station.url.startswith("https://127.0.0.1:")
        stranger = Client(tmp_path / "stranger", station.url)
        done = stranger.run("login", "x", "--server", station.url, stdin="pw-123456\n")
        assert done.returncode == 4
        assert "certificate verification failed" in done.stderr and "--cafile" in done.stderr

        ned = Client(tmp_path / "ned", station.url)
        ned.ok(
            "register", "ned", "--code", CODE, "--server", station.url,
            "--cafile", str(TLS / "ca.pem"), stdin="pw-123456\n",
        )  # fmt: skip
        # The CA file is remembered with the address: wss for the charge, https for the log.
        out = ned.ok("charge", "--mode", "fast", "--quantity", "2")
        energy, charge_fee, service_fee, _ = bill_amounts(out)
        assert (energy, charge_fee, service_fee) == (2, money(Decimal(2), PRICE), Decimal("1.60"))
        assert json.loads(ned.ok("log", "--json"))[0]["quantity"] == 2.0

        # The CA from the environment works as well; a CA that did not sign it does not.
        env_ca = Client(
            tmp_path / "env", station.url, {"CHARGE_STATION_CAFILE": str(TLS / "ca.pem")}
        )
        assert "logged in" in env_ca.ok(
            "login", "ned", "--server", station.url, stdin="pw-123456\n"
        )
        other = tmp_path / "other-ca.pem"
        other.write_text(TLS.joinpath("server.pem").read_text())  # a certificate, not its CA
        done = stranger.run(
            "login", "ned", "--server", station.url, "--cafile", str(other), stdin="pw-123456\n"
        )
        assert done.returncode == 4 and "certificate verification failed" in done.stderr
    finally:
        stop(station)
