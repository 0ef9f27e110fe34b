"""The operator API (/admin/…) on a real Tornado server (port 0) with a real HTTP client, the live
control loop on simulated piles, a real SQLite file and an injected clock."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.websocket import websocket_connect

from controller.billing import Bill, EndReason
from controller.clock import local_epoch_seconds, station_moment
from controller.config import Config, StationSettings, parse_tariff
from controller.live import ControlLoop
from controller.station import Area, Request
from controller.storage import AsyncStorage
from controller.units import Units
from controller.values import Mode, PileState
from server.accounts import audit_log
from server.accounts.accounts import Accounts, load_secret
from server.http.app import make_app
from server.http.handler import AppContext
from server.operator_api.admin_reports import CSV_COLUMNS
from tests.controller.harness import pile
from tests.firmware_sim.fakes import FakeClock
from tests.kits.in_process import in_process

TZ = timezone(timedelta(hours=8))  # the station's zone: days start at 16:00 UTC
SIX = 6 * 3600  # the station starts at 06:00: valley price, 0.4 + 0.8 service per kWh
START = datetime(2026, 11, 23, 6, 0, tzinfo=TZ)  # a Monday
PILES = (pile(1, "A", Mode.FAST, 30), pile(2, "B", Mode.FAST, 30), pile(3, "C", Mode.COMMON, 7))

ROUTES = [
    ("GET", "/admin/piles"),
    ("POST", "/admin/piles/off"),
    ("POST", "/admin/piles/on"),
    ("POST", "/admin/piles/stop"),
    ("GET", "/admin/queues"),
    ("POST", "/admin/requests/remove"),
    ("GET", "/admin/reports"),
    ("POST", "/admin/codes"),
    ("GET", "/admin/bills.csv"),
    ("GET", "/admin/audit"),
]


class Station:
    def __init__(self, port: int, loop: ControlLoop, accounts: Accounts, clock: FakeClock) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/user/charge"
        self.loop = loop
        self.st = loop.station
        self.units = loop.units
        self.accounts = accounts
        self.storage: AsyncStorage = accounts._storage
        self.clock = clock
        self.http = AsyncHTTPClient()
        self.operator = ""
        self.operator_id = 0

    async def user(self, name: str, role: str = "driver") -> tuple[int, str]:
        user_id = await self.accounts.create_user(name, "pass-word-1", role)
        return user_id, self.accounts.token_for(user_id, name, role)

    async def fetch(self, method: str, path: str, token: str | None, **query: Any) -> HTTPResponse:
        if token is not None:
            query = {"token": token, **query}
        url = self.base + path + ("?" + urlencode(query) if query else "")
        body = "" if method == "POST" else None
        return await self.http.fetch(url, method=method, body=body, raise_error=False)

    async def call(self, method: str, path: str, **query: Any) -> tuple[int, Any]:
        """As the operator."""
        response = await self.fetch(method, path, self.operator, **query)
        return response.code, json.loads(response.body)

    def request(
        self, user_id: int, mode: Mode, kwh: int, capacity_kwh: int | None = None
    ) -> Request:
        """A car arrives, as /user/charge makes it (the car is the user's id)."""
        capacity = None if capacity_kwh is None else self.units.energy_from_kwh(capacity_kwh)
        energy = self.units.energy_from_kwh(kwh)
        return self.st.request(self.loop.now_tick(), user_id, mode, energy, capacity)

    async def run(self, seconds: float, every_s: float = 30) -> None:
        await self.loop.tick()  # the piles whose sessions the rules just started are switched on
        end = self.clock.now_s + seconds
        while self.clock.now_s < end:
            self.clock.advance(min(every_s, end - self.clock.now_s))
            await self.loop.tick()


async def eventually(check: Callable[[], Any]) -> Any:
    """Bills are stored off the loop: wait (briefly) until `check` is true."""
    for _ in range(200):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.005)
    raise AssertionError("never became true")


@pytest_asyncio.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    clock = FakeClock()
    clock.advance(local_epoch_seconds(START))  # 06:00 on the station's clock

    def wall() -> datetime:  # the wall clock moves with the station's clock
        return station_moment(Fraction(clock.now_s), TZ)

    def accounts(storage: AsyncStorage) -> Accounts:
        return Accounts(
            storage, load_secret(tmp_path), clock=lambda: wall().timestamp(), scrypt_n=2**4
        )

    cfg = Config(StationSettings(waiting_area_size=4, pile_queue_len=2), parse_tariff({}), PILES)
    async with in_process(cfg, tmp_path, clock, TZ, accounts) as service:
        s = Station(service.port, service.loop, service.accounts, clock)
        s.operator_id, s.operator = await s.user("olga", "operator")
        yield s


# -- who may call ---------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_drivers_get_403_and_callers_without_a_valid_token_401(station: Station) -> None:
    alice_id, alice = await station.user("alice")
    station.request(alice_id, Mode.FAST, 10)
    for method, path in ROUTES:
        query = {"stationId": 1, "username": "alice", "period": "day"}
        response = await station.fetch(method, path, alice, **query)
        body = json.loads(response.body)
        assert (response.code, body["code"], body["error"]) == (403, -1, "not_operator"), path
        for token, error in ((None, "missing_token"), ("forged", "bad_token")):
            response = await station.fetch(method, path, token, **query)
            assert (response.code, json.loads(response.body)["error"]) == (401, error), path
    # Nothing was done on their behalf.
    assert [p.state for p in station.st.piles] == [PileState.WORKING] * 3
    assert alice_id in station.st.requests
    audit = await station.storage.run(lambda s: audit_log.recent_audit(s, 10))
    assert [e.action for e in audit] == ["create_user"] * 2


# -- piles ----------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_piles_show_state_totals_since_start_up_and_the_queue(station: Station) -> None:
    alice_id, _ = await station.user("alice")
    bob_id, _ = await station.user("bob")
    station.request(alice_id, Mode.FAST, 10, capacity_kwh=60)  # A (first listed)
    station.request(bob_id, Mode.FAST, 20)  # B: it finishes there soonest
    await station.run(300)
    code, body = await station.call("GET", "/admin/piles")
    assert code == 200 and body["code"] == 200
    a, b, c = body["piles"]
    assert (a["stationId"], a["name"], a["mode"], a["powerKw"], a["state"]) == (
        1, "A", "fast", 30, "working"
    )  # fmt: skip
    assert (c["mode"], c["powerKw"], c["queue"]) == ("common", 7, [])
    (car,) = a["queue"]
    assert (car["username"], car["queueNo"], car["area"], car["stationId"]) == (
        "alice", "F1", "charging", 1
    )  # fmt: skip
    # 30 kW for 5 minutes: 2.5 kWh delivered of the 10 asked for; 60 kWh battery.
    assert (car["quantity"], car["charged"], car["remaining"], car["capacity"]) == (
        10.0, 2.5, 7.5, 60.0
    )  # fmt: skip
    assert (car["waitedSeconds"], car["queuedAt"]) == (300, "2026-11-23 06:00:00")
    assert b["queue"][0]["username"] == "bob" and b["queue"][0]["capacity"] is None

    await station.run(900)  # alice's 10 kWh at 30 kW: done after 20 minutes
    code, body = await station.call("GET", "/admin/piles")
    a, b, _ = body["piles"]
    assert a["queue"] == [] and b["queue"][0]["username"] == "bob"
    # One session: 10 kWh in 20 min = 1/3 h; valley 10 * 0.4 = 4.00, service 10 * 0.8 = 8.00.
    assert {k: a[k] for k in ("sessions", "timeOfUse", "quantity")} == {
        "sessions": 1, "timeOfUse": 0.3333, "quantity": 10.0
    }  # fmt: skip
    assert (a["costOfCharge"], a["costOfService"], a["cost"]) == (4.0, 8.0, 12.0)
    assert (b["sessions"], b["quantity"], b["cost"]) == (0, 0.0, 0.0)  # bob is still charging


@pytest.mark.asyncio
async def test_switching_off_bills_and_moves_the_car_then_on_again(station: Station) -> None:
    alice_id, alice = await station.user("alice")
    bob_id, _ = await station.user("bob")
    station.request(alice_id, Mode.FAST, 20)  # A
    station.request(bob_id, Mode.FAST, 20)  # B
    await station.run(600)  # 10 minutes at 30 kW each: 5 kWh

    code, body = await station.call("POST", "/admin/piles/off", stationId=1)
    assert code == 200 and body["state"] == "off"
    # alice's bill: 5 kWh, valley 5 * 0.4 = 2.00, service 5 * 0.8 = 4.00, 10 min = 1/6 h.
    billed = body["bill"]
    assert (billed["username"], billed["queueNo"], billed["reason"]) == ("alice", "F1", "fault")
    assert (billed["quantity"], billed["timeOfUse"], billed["cost"]) == (5.0, 0.1667, 6.0)
    a, b = station.st.piles[:2]
    req = station.st.requests[alice_id]
    # A is off and empty; alice still wants 15 kWh, called from the priority line to B's queue.
    assert (a.state, a.queue) == (PileState.OFF, [])
    assert (req.pile, req.area, b.queue.index(req)) == (b, Area.QUEUE, 1)
    assert req.wanted == station.units.energy_from_kwh(15)
    # The bill reached alice as any bill: stored by the hub, in her /user/log.
    (log_bill,) = await eventually(lambda: _log(station, alice))
    assert (log_bill["quantity"], log_bill["cost"], log_bill["stationId"]) == (5.0, 6.0, 1)

    code, body = await station.call("POST", "/admin/piles/off", stationId=1)
    assert (code, body["error"]) == (409, "pile_not_working")
    code, body = await station.call("POST", "/admin/piles/on", stationId=1)
    assert (code, body["state"]) == (200, "working")
    assert (req.pile, a.charging()) == (a, req)  # the recovery regroups: alice charges at A again
    code, body = await station.call("POST", "/admin/piles/on", stationId=1)
    assert (code, body["error"]) == (409, "pile_working")

    station.st.fault(station.loop.now_tick(), 3)  # C reports a fault: only fixing it helps
    code, body = await station.call("POST", "/admin/piles/on", stationId=3)
    assert (code, body["error"]) == (409, "pile_faulted") and "faulted" in body["msg"]

    code, body = await station.call("GET", "/admin/piles")
    assert [p["state"] for p in body["piles"]] == ["working", "working", "fault"]
    assert (body["piles"][0]["sessions"], body["piles"][0]["quantity"]) == (1, 5.0)
    entries = await station.storage.run(lambda s: audit_log.recent_audit(s, 2))
    assert [(e.action, e.user_id) for e in entries] == [
        ("pile_on", station.operator_id), ("pile_off", station.operator_id)
    ]  # fmt: skip
    assert entries[1].detail == {"stationId": 1, "name": "A", "billedQueueNo": "F1"}


async def _log(station: Station, token: str) -> list[dict[str, Any]]:
    response = await station.fetch("GET", "/user/log", token)
    return json.loads(response.body)


@pytest.mark.asyncio
async def test_switching_off_sends_the_connected_user_a_fault_message(station: Station) -> None:
    _, alice = await station.user("alice")
    query = urlencode({"token": alice, "mode": "fast", "quantity": 20})
    ws = await websocket_connect(f"{station.ws_url}?{query}")
    try:
        assert json.loads(await ws.read_message())["type"] == "queued"  # type: ignore[arg-type]
        await station.run(600)
        code, _ = await station.call("POST", "/admin/piles/off", stationId=1)
        assert code == 200
        while (message := json.loads(await ws.read_message()))["type"] != "fault":  # type: ignore[arg-type]
            pass
        assert message["bill"]["quantity"] == 5.0 and message["bill"]["cost"] == 6.0
    finally:
        ws.close()


# -- queues ---------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_queues_show_the_waiting_area_and_the_priority_lines(station: Station) -> None:
    ids = [(await station.user(name))[0] for name in ("t1", "t2", "t3", "f1")]
    for user_id in ids[:3]:
        station.request(user_id, Mode.COMMON, 14)  # C: one charging, one queued, one waiting
    await station.run(120)
    station.request(ids[3], Mode.FAST, 10)  # straight to A
    code, body = await station.call("GET", "/admin/queues")
    assert code == 200 and body["priority"] == {"fast": [], "common": []}
    (waiting,) = body["waiting"]
    assert (waiting["username"], waiting["queueNo"], waiting["mode"]) == ("t3", "T3", "common")
    assert (waiting["area"], waiting["quantity"], waiting["remaining"]) == ("waiting", 14.0, 14.0)
    assert (waiting["waitedSeconds"], waiting["queuedAt"]) == (120, "2026-11-23 06:00:00")

    await station.call("POST", "/admin/piles/off", stationId=3)  # C's two cars: priority line
    code, body = await station.call("GET", "/admin/queues")
    first, second = body["priority"]["common"]
    # t1 charged 7 kW for 2 minutes: 7 * 2 / 60 = 0.2333 kWh; 13.7667 kWh remain.
    assert (first["username"], first["area"], first["remaining"]) == ("t1", "priority", 13.77)
    assert (second["username"], second["remaining"], second["ahead"]) == ("t2", 14.0, 1)
    # No common pile works, and the priority line goes first: t3 keeps waiting.
    assert [c["username"] for c in body["waiting"]] == ["t3"]
    assert body["priority"]["fast"] == []


# -- reports and exports --------------------------------------------------------------------------
UNITS = Units.for_powers([30_000, 7000])


async def add_bill(
    s: Station, user_id: int | None, pile_id: int, energy: int, price: int, end: datetime, h: float
) -> int:
    """A bill of `energy` (station units) at `price` units per kWh (10,000 units a yuan: 0.4
    yuan is 4000), service 0.8 yuan per kWh, that lasted `h` hours and ended at `end`."""
    name = "ABC"[pile_id - 1]
    made = Bill(
        0, str(user_id), "F1", pile_id, name, 0, 0, energy, energy * price, energy * 8000,
        EndReason.COMPLETED,
    )  # fmt: skip
    return await s.storage.run(
        lambda s: s.add_bill(made, UNITS, user_id, end - timedelta(hours=h), end)
    )


def kwh(value: float) -> int:
    return round(value * 1000) * UNITS.energy_per_wh


async def report_bills(s: Station) -> dict[str, int]:
    alice_id, _ = await s.user("alice")
    eve_id, _ = await s.user("@eve")
    half_kwh = UNITS.energy_from_wh(625) // 2  # 0.3125 kWh
    day = datetime(2026, 11, 23, tzinfo=TZ)
    return {
        "a1": await add_bill(s, alice_id, 1, kwh(10), 4000, day + timedelta(hours=7), 1 / 3),
        "a2": await add_bill(s, eve_id, 1, kwh(12.345), 7000, day + timedelta(hours=12), 0.5),
        "c1": await add_bill(s, alice_id, 3, half_kwh, 4000, day + timedelta(hours=20), 0.5),
        "c2": await add_bill(
            s, None, 3, half_kwh, 4000, day + timedelta(hours=23, minutes=59), 0.5
        ),
        # The next day (midnight belongs to it) and the day before: not in the day's report.
        "next": await add_bill(s, alice_id, 1, kwh(1), 4000, day + timedelta(days=1), 0.1),
        "before": await add_bill(s, alice_id, 2, kwh(2), 4000, day - timedelta(seconds=1), 0.1),
    }


@pytest.mark.asyncio
async def test_a_day_report_sums_the_stored_bills_exactly(station: Station) -> None:
    await report_bills(station)
    code, body = await station.call("GET", "/admin/reports", period="day", date="2026-11-23")
    assert code == 200
    assert (body["period"], body["from"], body["to"]) == ("day", "2026-11-23", "2026-11-23")
    a, b, c = body["piles"]
    # A: 10 kWh valley (4.00 + 8.00) and 12.345 kWh flat (8.6415 + 9.876), 1/3 h + 1/2 h.
    # Sums: 22.345 kWh -> 22.35; 12.6415 -> 12.64; 17.876 -> 17.88; 5/6 h -> 0.8333.
    assert a == {
        "stationId": 1, "name": "A", "sessions": 2, "timeOfUse": 0.8333, "quantity": 22.35,
        "costOfCharge": 12.64, "costOfService": 17.88, "cost": 30.52,
    }  # fmt: skip
    assert (b["name"], b["sessions"], b["cost"]) == ("B", 0, 0.0)  # listed with zeros
    # C: two bills of 0.3125 kWh valley: 0.125 + 0.25 yuan each. Rounded each would show
    # 0.13 + 0.13; the exact sum 0.25 is what is shown. 0.625 kWh -> 0.63.
    assert (c["sessions"], c["timeOfUse"], c["quantity"]) == (2, 1.0, 0.63)
    assert (c["costOfCharge"], c["costOfService"], c["cost"]) == (0.25, 0.5, 0.75)
    # All piles: 22.97 kWh; 12.8915 -> 12.89; 18.376 -> 18.38; 31.27; 11/6 h.
    assert body["total"] == {
        "sessions": 4, "timeOfUse": 1.8333, "quantity": 22.97,
        "costOfCharge": 12.89, "costOfService": 18.38, "cost": 31.27,
    }  # fmt: skip
    # Today (the station's date) is the default.
    assert (await station.call("GET", "/admin/reports", period="day"))[1] == body


@pytest.mark.asyncio
async def test_week_and_month_reports(station: Station) -> None:
    await report_bills(station)
    code, week = await station.call("GET", "/admin/reports", period="week", date="2026-11-26")
    assert (code, week["from"], week["to"]) == (200, "2026-11-23", "2026-11-29")  # Mon to Sun
    assert [p["sessions"] for p in week["piles"]] == [3, 0, 2]  # with the next day's
    code, month = await station.call("GET", "/admin/reports", period="month", date="2026-11-23")
    assert (month["from"], month["to"]) == ("2026-11-01", "2026-11-30")
    assert [p["sessions"] for p in month["piles"]] == [3, 1, 2]  # and the day before's


@pytest.mark.asyncio
async def test_bills_as_csv(station: Station) -> None:
    ids = await report_bills(station)
    response = await station.fetch(
        "GET", "/admin/bills.csv", station.operator, **{"from": "2026-11-23", "to": "2026-11-23"}
    )
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.body.decode("utf-8"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [int(r["id"]) for r in rows] == [ids["c2"], ids["c1"], ids["a2"], ids["a1"]]
    a2 = rows[2]
    # A spreadsheet would run "@eve" as a formula: it is written as text.
    assert (a2["username"], a2["stationId"], a2["pileName"], a2["queueNo"]) == (
        "'@eve", "1", "A", "F1"
    )  # fmt: skip
    assert (a2["quantity"], a2["timeOfUse"]) == ("12.35", "0.5000")
    assert (a2["costOfCharge"], a2["costOfService"], a2["cost"]) == ("8.64", "9.88", "18.52")
    assert (a2["startTime"], a2["endTime"], a2["time"]) == (
        "2026-11-23 11:30:00", "2026-11-23 12:00:00", "2026-11-23 12:00:00"
    )  # fmt: skip
    assert rows[0]["username"] == "" and rows[3]["username"] == "alice"
    # `to` defaults to `from`: one day.
    response = await station.fetch(
        "GET", "/admin/bills.csv", station.operator, **{"from": "2026-11-24"}
    )
    (only,) = csv.DictReader(io.StringIO(response.body.decode("utf-8")))
    assert int(only["id"]) == ids["next"]


# -- codes, removals, stops and the audit log -----------------------------------------------------
@pytest.mark.asyncio
async def test_a_registration_code_is_issued_and_works(station: Station) -> None:
    code, body = await station.call("POST", "/admin/codes", hours=48)
    assert code == 200 and body["expires"] == "2026-11-25 06:00:00"
    first = body["registrationCode"]
    token = await station.accounts.register("dan", "dan-pass-1", first)
    assert station.accounts.verify(token).role == "driver"
    code, body = await station.call("POST", "/admin/codes")
    assert body["expires"] == "2026-11-30 06:00:00"  # a week by default
    mine = [
        e
        for e in await station.storage.run(lambda s: audit_log.recent_audit(s, 10))
        if (e.action, e.user_id) == ("issue_code", station.operator_id)
    ]
    assert [e.detail["expires"] for e in mine] == [
        "2026-11-29T22:00:00+00:00", "2026-11-24T22:00:00+00:00"
    ]  # fmt: skip
    # The code is a credential until spent: never in the audit log.
    codes = (first, body["registrationCode"])
    assert not any(c in json.dumps(e.detail) for e in mine for c in codes)


@pytest.mark.asyncio
async def test_removing_a_request_and_stopping_a_session_are_billed_and_audited(
    station: Station,
) -> None:
    users = {name: (await station.user(name))[0] for name in ("alice", "bob", "carol")}
    station.request(users["alice"], Mode.FAST, 20)  # A
    station.request(users["bob"], Mode.FAST, 20)  # B
    station.request(users["carol"], Mode.COMMON, 10)  # C
    await station.run(600)  # 5 kWh each at A and B

    code, body = await station.call("POST", "/admin/piles/stop", stationId=1)
    assert code == 200 and body["bill"]["username"] == "alice"
    assert (body["bill"]["quantity"], body["bill"]["cost"]) == (5.0, 6.0)  # 5 * (0.4 + 0.8)
    assert users["alice"] not in station.st.requests  # the car left
    assert station.st.piles[0].queue == [] and station.st.piles[0].meter is None
    code, body = await station.call("POST", "/admin/piles/stop", stationId=1)
    assert (code, body["error"]) == (409, "no_session")

    code, body = await station.call("POST", "/admin/requests/remove", username="bob")
    assert (code, body["queueNo"], body["bill"]["quantity"]) == (200, "F2", 5.0)
    assert users["bob"] not in station.st.requests
    code, body = await station.call("POST", "/admin/requests/remove", username="bob")
    assert (code, body["error"]) == (404, "not_in_station")

    for name in ("alice", "bob"):  # each stored bill is the user's, as any bill
        (stored,) = await eventually(
            lambda n=name: station.storage.run(lambda s: s.bills_of(users[n], 5))
        )
        assert stored.reason is EndReason.CANCELLED and stored.energy_wh == 5000

    code, body = await station.call("GET", "/admin/audit", num=2)
    assert code == 200
    remove, stop = body["audit"]
    assert (remove["action"], remove["username"], remove["userId"]) == (
        "remove_request", "olga", station.operator_id
    )  # fmt: skip
    assert remove["detail"] == {"username": "bob", "queueNo": "F2", "area": "charging"}
    assert remove["time"] == "2026-11-23 06:10:00"
    assert (stop["action"], stop["detail"]["username"], stop["detail"]["stationId"]) == (
        "stop_session", "alice", 1
    )  # fmt: skip
    entries = await station.storage.run(lambda s: audit_log.recent_audit(s, 2))
    assert [(e.action, e.user_id) for e in entries] == [
        ("remove_request", station.operator_id), ("stop_session", station.operator_id)
    ]  # fmt: skip


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path", "query", "status", "error"),
    [
        ("POST", "/admin/piles/off", {}, 400, "missing_stationId"),
        ("POST", "/admin/piles/off", {"stationId": "A"}, 400, "bad_stationId"),
        ("POST", "/admin/piles/on", {"stationId": "1.5"}, 400, "bad_stationId"),
        ("POST", "/admin/piles/stop", {"stationId": "99"}, 404, "unknown_pile"),
        ("POST", "/admin/piles/off", {"stationId": "-1"}, 404, "unknown_pile"),
        ("POST", "/admin/requests/remove", {}, 400, "missing_username"),
        ("POST", "/admin/requests/remove", {"username": "nobody"}, 404, "not_in_station"),
        ("GET", "/admin/reports", {}, 400, "missing_period"),
        ("GET", "/admin/reports", {"period": "year"}, 400, "bad_period"),
        ("GET", "/admin/reports", {"period": "day", "date": "2026-13-01"}, 400, "bad_date"),
        ("GET", "/admin/reports", {"period": "day", "date": "2026-2-30"}, 400, "bad_date"),
        ("GET", "/admin/reports", {"period": "week", "date": "today"}, 400, "bad_date"),
        ("GET", "/admin/bills.csv", {"from": "23/11/2026"}, 400, "bad_from"),
        ("GET", "/admin/bills.csv", {"from": "2026-11-23", "to": "x"}, 400, "bad_to"),
        ("GET", "/admin/bills.csv", {"from": "2026-11-23", "to": "2026-11-22"}, 400, "bad_range"),
        ("GET", "/admin/audit", {"num": "0"}, 400, "bad_num"),
        ("GET", "/admin/audit", {"num": "many"}, 400, "bad_num"),
        ("POST", "/admin/codes", {"hours": "0"}, 400, "bad_hours"),
        ("POST", "/admin/codes", {"hours": "inf"}, 400, "bad_hours"),
        ("POST", "/admin/codes", {"hours": "soon"}, 400, "bad_hours"),
        ("GET", "/admin/piles/off", {"stationId": "1"}, 405, "method_not_allowed"),
        ("GET", "/admin/nope", {}, 404, "not_found"),
    ],
)
async def test_bad_input_is_a_json_error(
    station: Station, method: str, path: str, query: dict[str, str], status: int, error: str
) -> None:
    code, body = await station.call(method, path, **query)
    assert (code, body["code"], body["error"]) == (status, -1, error)
    assert body["msg"]


@pytest.mark.asyncio
async def test_a_json_body_may_name_the_pile_by_number(station: Station) -> None:
    response = await station.http.fetch(
        station.base + "/admin/piles/off",
        method="POST",
        body=json.dumps({"stationId": 2}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {station.operator}"},
        raise_error=False,
    )
    assert response.code == 200 and station.st.piles[1].state is PileState.OFF


@pytest.mark.asyncio
async def test_without_the_live_station_only_its_views_are_unavailable(
    station: Station, tmp_path: Path
) -> None:
    app = make_app(AppContext(station.accounts, station.storage, TZ))
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    try:
        base = f"http://127.0.0.1:{port}"
        query = urlencode({"token": station.operator, "period": "day", "date": "2026-11-23"})
        piles = await station.http.fetch(f"{base}/admin/piles?{query}", raise_error=False)
        assert (piles.code, json.loads(piles.body)["error"]) == (503, "station_not_ready")
        reports = await station.http.fetch(f"{base}/admin/reports?{query}", raise_error=False)
        assert reports.code == 200 and json.loads(reports.body)["piles"] == []
    finally:
        server.stop()
        await server.close_all_connections()


# -- the operators' live feed ---------------------------------------------------------------------
async def next_event(feed: Any, kind: str) -> dict[str, Any]:
    """The next `event` message of that kind, past the snapshots."""
    while True:
        text = await asyncio.wait_for(feed.read_message(), 5)
        assert text is not None, "the feed closed"
        message: dict[str, Any] = json.loads(text)
        if message["type"] == "event" and message["kind"] == kind:
            return message


@pytest.mark.asyncio
async def test_the_live_feed_names_a_new_car_by_its_user_from_its_first_event(
    station: Station,
) -> None:
    _, alice = await station.user("alice")
    live = station.base.replace("http://", "ws://") + "/admin/live?token=" + station.operator
    feed = await websocket_connect(live)
    driver = None
    try:
        snapshot = json.loads(await feed.read_message())  # type: ignore[arg-type]
        assert snapshot["type"] == "snapshot" and snapshot["waiting"] == []
        query = urlencode({"token": alice, "mode": "fast", "quantity": 10})
        driver = await websocket_connect(f"{station.ws_url}?{query}")  # called to A at once
        called = await next_event(feed, "call")
        # The feed had never seen this car: its user is read before the event goes out.
        assert (called["username"], called["queueNo"], called["stationId"]) == ("alice", "F1", 1)
        assert "car" not in called
        await station.run(1200)  # 10 kWh at 30 kW: 20 minutes
        bill = await next_event(feed, "bill")
        # Valley: 10 kWh x 0.4 = 4.00 yuan, service 10 kWh x 0.8 = 8.00, total 12.00.
        assert (bill["username"], bill["quantity"], bill["cost"]) == ("alice", 10.0, 12.0)
    finally:
        feed.close()
        if driver is not None:
            driver.close()
