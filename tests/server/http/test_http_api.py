"""The documented HTTP endpoints on a real Tornado server (port 0) with a real SQLite file."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from controller.billing import Bill, EndReason
from controller.storage import AsyncStorage
from controller.units import Units
from server.accounts.accounts import Accounts, load_secret
from server.assembly.database import open_async_storage
from server.http.app import make_app
from server.http.handler import AppContext

BENCH_CODE = "bench-code-1234"
UNITS = Units.for_powers([30_000, 7000])


class Api:
    def __init__(self, port: int, storage: AsyncStorage, accounts: Accounts) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.storage = storage
        self.accounts = accounts
        self.http = AsyncHTTPClient()

    async def call(
        self, method: str, path: str, query: dict[str, Any] | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        url = self.base + path + ("?" + urlencode(query) if query else "")
        if method == "POST" and "body" not in kwargs:
            kwargs["body"] = ""
        response: HTTPResponse = await self.http.fetch(
            url, method=method, raise_error=False, **kwargs
        )
        return response.code, json.loads(response.body)

    async def register(self, username: str, password: str = "secret-pw") -> str:
        code, body = await self.call(
            "POST", "/register", {"username": username, "password": password, "code": BENCH_CODE}
        )
        assert code == 200, body
        return body["token"]


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    storage = await open_async_storage(tmp_path / "station.db")
    accounts = Accounts(storage, load_secret(tmp_path), bench_code=BENCH_CODE)
    app = make_app(AppContext(accounts, storage, UTC))
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield Api(port, storage, accounts)
    server.stop()
    await server.close_all_connections()
    await storage.close()


@pytest.mark.asyncio
async def test_register_then_login(api: Api) -> None:
    token = await api.register("alice", "s3cret-pw")
    assert api.accounts.verify(token).username == "alice"
    code, body = await api.call("POST", "/login", {"username": "alice", "password": "s3cret-pw"})
    assert code == 200 and body["code"] == 200
    assert api.accounts.verify(body["token"]).username == "alice"
    # The same names are accepted as a JSON body and as a form body.
    code, body = await api.call(
        "POST",
        "/login",
        body=json.dumps({"username": "alice", "password": "s3cret-pw"}),
        headers={"Content-Type": "application/json"},
    )
    assert code == 200
    code, body = await api.call(
        "POST", "/login", body=urlencode({"username": "alice", "password": "s3cret-pw"})
    )
    assert code == 200


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ({"username": "alice", "password": "wrong-pw"}, 401, "bad_credentials"),
        ({"username": "nobody", "password": "s3cret-pw"}, 401, "bad_credentials"),
        ({"password": "s3cret-pw"}, 400, "missing_username"),
        ({"username": "alice"}, 400, "missing_password"),
    ],
)
async def test_login_failures_are_json_errors(
    api: Api, query: dict[str, str], status: int, error: str
) -> None:
    await api.register("alice", "s3cret-pw")
    code, body = await api.call("POST", "/login", query)
    assert (code, body["code"], body["error"]) == (status, -1, error)
    assert body["msg"]


@pytest.mark.asyncio
async def test_register_refusals(api: Api) -> None:
    await api.register("alice")
    code, body = await api.call(
        "POST", "/register", {"username": "alice", "password": "other-pw", "code": BENCH_CODE}
    )
    assert (code, body["error"]) == (409, "username_taken")
    code, body = await api.call(
        "POST", "/register", {"username": "bob", "password": "other-pw", "code": "guess"}
    )
    assert (code, body["error"]) == (403, "bad_code")
    code, body = await api.call(
        "POST", "/login", body="{not json", headers={"Content-Type": "application/json"}
    )
    assert (code, body["error"]) == (400, "bad_json")


def bill(bill_id: int, wh: int, start: datetime, hours: float) -> tuple[Bill, datetime, datetime]:
    energy = UNITS.energy_from_wh(wh)
    # Priced flat (0.7 yuan/kWh = 7000 price units) with the service fee (0.8 = 8000).
    b = Bill(
        bill_id,
        "car",
        "F1",
        1,
        "A",
        0,
        0,
        energy,
        energy * 7000,
        energy * 8000,
        EndReason.COMPLETED,
    )
    return b, start, start + timedelta(hours=hours)


@pytest.mark.asyncio
async def test_history_shows_only_the_users_own_bills_newest_first(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    alice_id = api.accounts.verify(alice).user_id
    bob_id = api.accounts.verify(bob).user_id
    t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    first = await api.storage.run(
        lambda s: s.add_bill(
            *bill(1, 12_345, t0, 0.5)[:1], UNITS, alice_id, t0, t0 + timedelta(minutes=30)
        )
    )
    await api.storage.run(
        lambda s: s.add_bill(bill(2, 1000, t0, 1)[0], UNITS, bob_id, t0, t0 + timedelta(hours=1))
    )
    second = await api.storage.run(
        lambda s: s.add_bill(
            bill(3, 30_000, t0, 1)[0],
            UNITS,
            alice_id,
            t0 + timedelta(hours=2),
            t0 + timedelta(hours=3),
        )
    )

    code, log = await api.call("GET", "/user/log", {"token": alice, "num": 10})
    assert code == 200 and isinstance(log, list)
    assert [entry["id"] for entry in log] == [second, first]  # newest first, no bill of bob's
    older = log[1]
    # 12.345 kWh: 12.345 * 0.7 = 8.6415 -> 8.64; 12.345 * 0.8 = 9.876 -> 9.88; total 18.52.
    assert older["quantity"] == 12.35  # 12.345 half up
    assert (older["costOfCharge"], older["costOfService"], older["cost"]) == (8.64, 9.88, 18.52)
    assert older["timeOfUse"] == 0.5
    assert older["startTime"] == "2026-11-23 08:00:00" and older["endTime"] == "2026-11-23 08:30:00"
    assert older["time"] == older["endTime"] and older["stationId"] == 1

    code, body = await api.call(
        "GET", "/user/lognew", {"num": 1}, headers={"Authorization": f"Bearer {alice}"}
    )
    assert code == 200 and body["code"] == 200
    (entry,) = body["log"]
    assert entry["id"] == str(second) and entry["timeOfUse"] == "1:00:00"
    assert entry["quantity"] == 30.0 and entry["cost"] == 45.0  # 30 * 0.7 + 30 * 0.8


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ({"num": "abc"}, 400, "bad_num"),
        ({"num": "0"}, 400, "bad_num"),
        ({"num": "-3"}, 400, "bad_num"),
        ({"num": "1.5"}, 400, "bad_num"),
    ],
)
async def test_bad_num(api: Api, query: dict[str, str], status: int, error: str) -> None:
    token = await api.register("alice")
    code, body = await api.call("GET", "/user/log", {"token": token, **query})
    assert (code, body["code"], body["error"]) == (status, -1, error)


@pytest.mark.asyncio
async def test_num_is_clamped_and_defaults_to_ten(api: Api) -> None:
    token = await api.register("alice")
    user_id = api.accounts.verify(token).user_id
    t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    for i in range(12):
        start = t0 + timedelta(hours=i)
        made = bill(i, 1000, start, 0.1)[0]
        end = start + timedelta(minutes=6)
        await api.storage.run(
            lambda s, made=made, start=start, end=end: s.add_bill(made, UNITS, user_id, start, end)
        )
    assert len((await api.call("GET", "/user/log", {"token": token}))[1]) == 10
    assert len((await api.call("GET", "/user/log", {"token": token, "num": 10**9}))[1]) == 12


@pytest.mark.asyncio
@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
async def test_bad_tokens(api: Api, token: str) -> None:
    code, body = await api.call("GET", "/user/lognew", {"token": token})
    assert code == 401 and body["code"] == -1 and body["error"] in ("missing_token", "bad_token")


@pytest.mark.asyncio
async def test_unknown_path_and_method(api: Api) -> None:
    assert (await api.call("GET", "/nope"))[0] == 404
    code, body = await api.call("GET", "/login")
    assert (code, body["error"]) == (405, "method_not_allowed")


@pytest.mark.asyncio
async def test_no_log_line_holds_a_password_or_a_token(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "Very-Secret-Pass-42"
    token = await api.register("carol", password)
    await api.call("POST", "/login", {"username": "carol", "password": password})
    await api.call("POST", "/login", {"username": "carol", "password": password + "x"})
    await api.call("GET", "/user/log", {"token": token})
    await api.call("GET", "/user/log", {"token": token + "tampered"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/user/log" in text  # the access log did run
    assert password not in text and token not in text
