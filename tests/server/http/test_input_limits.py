"""Bad input over HTTP gets a clear 4xx with a stable `error` key, never a 500 or a reset:
dates at the end of the calendar, deeply nested JSON, bodies, URLs and headers over the limits,
passwords longer than any account's, strings no UTF-8 encoder takes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import server.accounts.accounts
from server.http.limits import MAX_BODY_BYTES, MAX_URL_BYTES
from tests.kits.station_kit import PASSWORD, Station, running_station, status_and_json

JSON = {"Content-Type": "application/json"}


def get(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


@pytest_asyncio.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    async with running_station(tmp_path) as s:
        yield s


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords login hashed (none may be, for input refused before)."""
    seen: list[str] = []
    check = server.accounts.accounts.check_password

    def spy(password: str, stored: str) -> bool:
        seen.append(password)
        return check(password, stored)

    monkeypatch.setattr(server.accounts.accounts, "check_password", spy)
    return seen


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "query", "error"),
    [
        ("/admin/reports", {"period": "day", "date": "9999-12-31"}, "bad_date"),
        ("/admin/reports", {"period": "month", "date": "9999-12-15"}, "bad_date"),
        ("/admin/reports", {"period": "week", "date": "0001-01-01"}, "bad_date"),
        ("/admin/bills.csv", {"from": "9999-12-31"}, "bad_from"),
        ("/admin/bills.csv", {"from": "2026-11-01", "to": "9999-12-31"}, "bad_to"),
    ],
)
async def test_dates_at_the_end_of_the_calendar_are_bad_input(
    station: Station, path: str, query: dict[str, str], error: str
) -> None:
    _, operator = await station.user("olga", "operator")
    status, body = await station.call("GET", path, {"token": operator, **query})
    assert (status, body["code"], body["error"]) == (400, -1, error)
    assert "9998-12-31" in body["msg"]  # the message names the range
    # The last accepted day still works, to the end of its month.
    status, body = await station.call(
        "GET", "/admin/reports", {"token": operator, "period": "month", "date": "9998-12-31"}
    )
    assert (status, body["from"], body["to"]) == (200, "9998-12-01", "9998-12-31")


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/login", "/register", "/admin/codes", "/admin/piles/off"])
async def test_json_nested_1500_deep_is_refused(station: Station, path: str) -> None:
    _, operator = await station.user("olga", "operator")
    deep = '{"username": ' + "[" * 1500 + "]" * 1500 + "}"  # 3 KB
    status, body = await station.call("POST", path, {"token": operator}, body=deep, headers=JSON)
    assert (status, body["error"]) == (400, "too_deep")
    # Past Python's own limit of recursion, and just over the station's of 32 levels.
    for depth in (5000, 33):
        nested = "[" * depth + "]" * depth
        status, body = await station.call("POST", path, body=nested, headers=JSON)
        assert (status, body["error"]) == (400, "too_deep")
    status, body = await station.call("POST", "/login", body="[" * 32 + "]" * 32, headers=JSON)
    assert (status, body["error"]) == (400, "bad_json")  # 32 levels parse, but are no object


@pytest.mark.asyncio
async def test_a_password_longer_than_any_accounts_is_not_hashed(
    station: Station, hashed: list[str]
) -> None:
    await station.user("alice")
    for password in ("x" * 257, "x" * 10_000):
        status, body = await station.call(
            "POST", "/login", body=json.dumps({"username": "alice", "password": password}),
            headers=JSON,
        )  # fmt: skip
        assert (status, body["error"]) == (400, "bad_password")
    status, body = await station.call("POST", "/login", {"username": "a" * 65, "password": "x"})
    assert (status, body["error"]) == (400, "bad_username")
    assert hashed == []
    status, _ = await station.call("POST", "/login", {"username": "alice", "password": PASSWORD})
    assert status == 200 and hashed == [PASSWORD]


@pytest.mark.asyncio
async def test_a_form_body_over_the_limit_is_413_and_not_read_into_a_login(
    station: Station, hashed: list[str]
) -> None:
    await station.user("alice")
    form = "username=alice&password=" + "p" * (MAX_BODY_BYTES + 10)
    status, body = await station.call("POST", "/login", body=form)
    assert (status, body["error"]) == (413, "body_too_large")
    assert str(MAX_BODY_BYTES) in body["msg"]
    # Sent in chunks, with no length to check up front.
    answer = await station.raw(
        b"POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        + f"{len(form):x}\r\n{form}\r\n0\r\n\r\n".encode()
    )
    status, body = status_and_json(answer)
    assert (status, body["error"]) == (413, "body_too_large")
    assert hashed == []


@pytest.mark.asyncio
async def test_a_95_mb_body_is_refused_before_it_is_read(
    station: Station, hashed: list[str]
) -> None:
    await station.user("alice")
    head = (
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 99614720\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
    )
    answer = await station.raw(head + b"username=alice&password=" + b"p" * 100_000)
    # Tornado refuses it at the head (max_body_size) and closes: no handler, no hashing.
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    assert hashed == []


@pytest.mark.asyncio
async def test_a_url_over_the_limit_is_414_and_headers_431_not_a_reset(station: Station) -> None:
    _, token = await station.user("alice")
    for size in (MAX_URL_BYTES + 1, 66_000, 200_000):  # 66 KB: Tornado's default reset it
        target = f"/user/log?token={token}&x=" + "a" * size
        answer = await station.raw(get(target))
        status, body = status_and_json(answer)
        assert (status, body["error"]) == (414, "url_too_long"), size
    status, body = await station.call(
        "GET", "/user/log", {"token": token}, headers={f"X-Pad-{i}": "v" * 1000 for i in range(20)}
    )
    assert (status, body["error"]) == (431, "headers_too_large")
    # The same on the WebSocket's path: an HTTP answer, before any upgrade.
    answer = await station.raw(get("/user/charge?x=" + "a" * 70_000))
    assert status_and_json(answer)[0] == 414
    status, body = await station.call("GET", "/user/log", {"token": token})
    assert status == 200  # the station serves on


@pytest.mark.asyncio
async def test_strings_that_utf8_cannot_encode_are_bad_input(
    station: Station, hashed: list[str]
) -> None:
    # "\ud800" is valid JSON and a lone surrogate in Python: SQLite and scrypt cannot take it.
    for field in ("username", "password", "code"):
        fields = {"username": "alice", "password": PASSWORD, "code": "c0de"}
        text = json.dumps(fields).replace(json.dumps(fields[field]), '"\\ud800x"')
        for path in ("/login", "/register"):
            if field == "code" and path == "/login":
                continue
            status, body = await station.call("POST", path, body=text, headers=JSON)
            assert (status, body["error"]) == (400, f"bad_{field}"), (path, field)
    _, operator = await station.user("olga", "operator")
    status, body = await station.call(
        "POST", "/admin/requests/remove", {"token": operator},
        body='{"username": "\\udfff"}', headers=JSON,
    )  # fmt: skip
    assert (status, body["error"]) == (400, "bad_username")
    assert hashed == []
