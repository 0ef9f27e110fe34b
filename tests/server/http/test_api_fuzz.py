"""Property tests (fixed seed): arbitrary JSON values and strings in every HTTP parameter, every
WebSocket operation field and every opening parameter (/user/charge's and /admin/live's). The
station answers each with a JSON body (a stable `error` key when it refuses), never a 5xx; a
socket is never dropped; and no traceback reaches the log."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado.websocket import websocket_connect

from tests.kits.station_kit import Station, read, running_station

# Examples are few, so that the three tests run in seconds; the seed is fixed (derandomize).
FUZZ = settings(
    derandomize=True,
    max_examples=30,
    deadline=None,
    database=None,
    # The station is made once per test and shared by its examples on purpose: bad input
    # must leave it working for whatever comes next.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Lone surrogates ("Cs") too: JSON's "\ud800" makes them, and no UTF-8 encoder takes them.
TEXT = (
    st.text(max_size=40)
    | st.text(st.characters(categories=["Cs", "Lo", "Nd", "Po"]))
    | st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
)
NUMBERS = (
    st.integers()
    | st.integers(min_value=2**1024, max_value=10**400)  # past the largest float
    | st.floats(allow_nan=False)
    | st.sampled_from([0, -1, 1, 10, 300, 301, 1e308, 9999])
)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
DAYS = st.sampled_from(["9999-12-31", "9999-12-15", "0001-01-01", "2026-11-23"]) | st.dates().map(
    str
)
# Values near what each parameter takes, so that the examples reach past its first check.
PLAUSIBLE = {
    "username": st.sampled_from(["alice", "olga", "a" * 65, ""]),
    "password": st.sampled_from(["Pass-word-Secret-77", "x" * 300, "12345"]),
    "code": st.sampled_from(["bench", ""]),
    "num": st.sampled_from(["1", "100", "0", "10" * 3000]) | st.integers().map(str),
    "stationId": st.sampled_from(["1", "2", "-1", "99" * 3000]) | st.integers(),
    "period": st.sampled_from(["day", "week", "month"]),
    "date": DAYS,
    "from": DAYS,
    "to": DAYS,
    "hours": st.sampled_from(["1", "8760", "8761", "0", "1e999", "nan", "-inf"]),
    "token": st.sampled_from(["", "a.b.c", "Bearer x"]),
}


# Every endpoint with the parameters it reads.
ENDPOINTS = [
    ("POST", "/login", ["username", "password"]),
    ("POST", "/register", ["username", "password", "code"]),
    ("GET", "/user/log", ["num"]),
    ("GET", "/user/lognew", ["num"]),
    ("GET", "/user/request", []),
    ("GET", "/station", []),
    ("GET", "/admin/piles", []),
    ("POST", "/admin/piles/off", ["stationId"]),
    ("POST", "/admin/piles/on", ["stationId"]),
    ("POST", "/admin/piles/stop", ["stationId"]),
    ("GET", "/admin/queues", []),
    ("POST", "/admin/requests/remove", ["username"]),
    ("GET", "/admin/reports", ["period", "date"]),
    ("POST", "/admin/codes", ["hours"]),
    ("GET", "/admin/bills.csv", ["from", "to"]),
    ("GET", "/admin/audit", ["num"]),
]


@pytest_asyncio.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    # A throttle that never refuses: every example's login and registration gets checked.
    async with running_station(tmp_path, max_failures=10**9) as s:
        yield s


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.exc_info or "uncaught" in r.getMessage().lower() or r.levelno >= logging.ERROR
    ]


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def encoded(fields: dict[str, str]) -> str:
    # Lone surrogates go out as the bytes Python would make of them: not UTF-8 at all.
    return "&".join(
        f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in fields.items()
    )


@st.composite
def parameters(draw: st.DrawFn, names: list[str]) -> dict[str, Any]:
    return {
        # Plausible half the time, so that the examples reach past each parameter's first check.
        name: draw(st.one_of(PLAUSIBLE[name], PLAUSIBLE[name], JSON_VALUES, TEXT))
        for name in [*names, "token"]
        if draw(st.integers(0, 9))  # each parameter present nine times in ten
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(("method", "path", "names"), ENDPOINTS)
@FUZZ
@given(data=st.data(), real_token=st.sampled_from([True, True, True, False]))
async def test_no_http_parameter_value_gets_a_5xx(
    station: Station,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    names: list[str],
    data: st.DataObject,
    real_token: bool,
) -> None:
    values = data.draw(parameters(names))
    if not hasattr(station, "tokens"):
        station.tokens = {  # type: ignore[attr-defined]
            "driver": (await station.user("alice"))[1],
            "operator": (await station.user("olga", "operator"))[1],
        }
    if real_token:  # mostly past the token check, so that the parameters are read
        role = "operator" if path.startswith("/admin") else "driver"
        values["token"] = station.tokens[role]  # type: ignore[attr-defined]
    texts = {k: as_text(v) for k, v in values.items()}
    # The same values every way the endpoint reads them: query string, form and JSON body.
    requests: list[tuple[str, str | None, dict[str, str]]] = [(encoded(texts), None, {})]
    if method == "POST":
        requests.append(("", encoded(texts), {}))
        requests.append(("", json.dumps(values), {"Content-Type": "application/json"}))
    for query, body, headers in requests:
        target = path + ("?" + query if query else "")
        status, answer = await station.call(method, target, body=body, headers=headers)
        assert status < 500, (status, answer)
        if isinstance(answer, dict | list):
            if status >= 400:
                assert isinstance(answer, dict) and answer["code"] == -1 and answer["msg"]
                assert isinstance(answer["error"], str) and answer["error"]
        else:
            assert status == 200 and path == "/admin/bills.csv", (status, answer)
    assert tracebacks(caplog) == []


# "revise" half the time: it is the operation that reads the other fields.
OPERATIONS = st.one_of(
    st.just("revise"),
    st.just("revise"),
    st.just("status"),
    JSON_VALUES.filter(lambda v: v != "cancel"),
)


@st.composite
def messages(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(TEXT)  # not JSON, mostly
    if kind == 1:
        return json.dumps(draw(JSON_VALUES))
    message = {"operation": draw(OPERATIONS)}
    for field in ("mode", "quantity"):
        if draw(st.booleans()):
            plausible = st.sampled_from(["fast", "slow", "T", 20, "20", "1e999"])
            message[field] = draw(st.one_of(NUMBERS, JSON_VALUES, plausible))
    message |= draw(st.dictionaries(TEXT, JSON_VALUES, max_size=2))
    return json.dumps(message)


@pytest.mark.asyncio
@settings(FUZZ, max_examples=150)  # one endpoint, many fields: more examples, still a second
@given(message=messages())
async def test_no_websocket_message_drops_the_socket(
    station: Station, caplog: pytest.LogCaptureFixture, message: str
) -> None:
    if not station.sockets:  # a car at the pile, and this driver's request waiting
        first = await station.open(token=(await station.user("first"))[1], mode="F", quantity=10)
        assert (await read(first))["type"] == "queued"
        ws = await station.open(token=(await station.user("alice"))[1], mode="F", quantity=10)
        assert (await read(ws))["type"] == "queued"
    ws = station.sockets[1]
    try:
        await ws.write_message(message)
    except UnicodeEncodeError:  # the client cannot send a lone surrogate as text
        await ws.write_message(message.encode("utf-8", "surrogatepass"), binary=True)
    await ws.write_message('{"operation": "status"}')  # then the answer to this, at the end
    while (answer := await read(ws))["type"] != "status":
        assert answer["type"] in ("error", "revised", "position"), answer
        if answer["type"] == "error":
            assert answer["code"] == -1 and isinstance(answer["error"], str)
    assert answer["area"] == "waiting"
    assert tracebacks(caplog) == []


@pytest.mark.asyncio
@FUZZ
@given(
    mode=JSON_VALUES | st.sampled_from(["fast", "F", "slow", "turbo"]),
    quantity=JSON_VALUES | st.sampled_from(["10", "0.0001", "300", "301", "1" + "0" * 400]),
    capacity=st.none() | JSON_VALUES | st.sampled_from(["75", "1000", "1001"]),
    bad_token=st.none() | TEXT,
)
async def test_no_opening_drops_the_socket_without_an_answer(
    station: Station,
    caplog: pytest.LogCaptureFixture,
    mode: Any,
    quantity: Any,
    capacity: Any,
    bad_token: str | None,
) -> None:
    if not hasattr(station, "driver"):
        station.driver = (await station.user("opener"))[1]  # type: ignore[attr-defined]
    token = station.driver if bad_token is None else bad_token  # type: ignore[attr-defined]
    query = {"token": token, "mode": as_text(mode), "quantity": as_text(quantity)}
    if capacity is not None:
        query["capacity"] = as_text(capacity)
    ws = await station.open(**{k: v.encode("utf-8", "surrogatepass") for k, v in query.items()})
    first = await read(ws)
    if first["type"] == "queued":  # a good opening: leave again, as the protocol says
        await ws.write_message('{"operation": "cancel"}')
        while (await read(ws))["type"] != "done":
            pass
        assert await ws.read_message() is None and ws.close_code == 1000
    else:
        assert (first["code"], first["type"]) == (-1, "error") and first["error"]
        assert await ws.read_message() is None and 4400 <= (ws.close_code or 0) < 4500
    station.sockets.remove(ws)
    assert station.loop.station.requests == {}
    assert tracebacks(caplog) == []


@pytest.mark.asyncio
@FUZZ
@given(token=st.none() | TEXT | st.sampled_from(["", "a.b.c", "eyJ.eyJ.x"]))
async def test_no_dashboard_opening_drops_the_socket_without_an_answer(
    station: Station, caplog: pytest.LogCaptureFixture, token: str | None
) -> None:
    if not hasattr(station, "operator"):
        station.operator = (await station.user("olga", "operator"))[1]  # type: ignore[attr-defined]
    real = station.operator if token is None else token  # type: ignore[attr-defined]
    url = station.base.replace("http", "ws") + "/admin/live?token="
    ws = await websocket_connect(url + quote(real.encode("utf-8", "surrogatepass")))
    try:
        first = await read(ws)
        if token is None:  # the operator's feed: it speaks first, and stays open
            assert first.get("code") != -1, first
        else:
            assert (first["code"], first["type"]) == (-1, "error") and first["error"]
            assert await ws.read_message() is None and ws.close_code == 4401
    finally:
        ws.close()
    assert tracebacks(caplog) == []
