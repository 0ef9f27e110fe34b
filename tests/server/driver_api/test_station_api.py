"""What a front end asks before and while it charges (`GET /station`, `GET /user/request`), and
CORS for a front end served elsewhere (`[server] cors_origins`), on the live station's app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from controller.values import Mode
from tests.kits.live_app import LiveApp, live_app, read_until

FRONT = "http://192.168.1.20:3000"


@pytest_asyncio.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveApp]:
    async with live_app(tmp_path, cors_origins=(FRONT,)) as app:
        yield app


@pytest.mark.asyncio
async def test_station_tells_the_limits_and_piles_without_a_token(live: LiveApp) -> None:
    code, body = await live.call("GET", "/station")
    assert (code, body["code"], body["maxQuantityKwh"]) == (200, 200, 120.0)
    assert body["piles"] == [
        {"stationId": 1, "name": "A", "mode": "fast", "powerKw": 30.0},
        {"stationId": 2, "name": "C", "mode": "common", "powerKw": 7.0},
    ]


@pytest.mark.asyncio
async def test_user_request_is_the_callers_state_as_the_socket_tells_it(live: LiveApp) -> None:
    _, alice = await live.user("alice")
    bob_id, bob = await live.user("bob")
    code, body = await live.call("GET", "/user/request", token=alice)
    assert (code, body) == (200, {"code": 200, "request": None})  # nothing asked yet
    ws = await live.socket("/user/charge", token=alice, mode="fast", quantity=10)
    await read_until(ws, "charging")  # the only fast pile was free
    live.door.request(bob_id, Mode.FAST, 20_000)  # bob is behind alice at pile A
    await ws.write_message(json.dumps({"operation": "status"}))
    status = await read_until(ws, "status")
    code, body = await live.call("GET", "/user/request", token=alice)
    assert code == 200
    assert body["request"] == {k: v for k, v in status.items() if k not in ("code", "type")}
    assert (body["request"]["queueNo"], body["request"]["area"]) == ("F1", "charging")
    # Each caller sees their own request, by the token as parameter or as bearer header.
    response = await live.fetch("GET", "/user/request", headers={"Authorization": f"Bearer {bob}"})
    mine = json.loads(response.body)["request"]
    assert (mine["queueNo"], mine["area"], mine["ahead"], mine["quantity"]) == (
        "F2", "queue", 1, 20.0
    )  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize(("token", "error"), [(None, "missing_token"), ("forged", "bad_token")])
async def test_user_request_without_a_valid_token_is_401(
    live: LiveApp, token: str | None, error: str
) -> None:
    query = {} if token is None else {"token": token}
    code, body = await live.call("GET", "/user/request", **query)
    assert (code, body["code"], body["error"]) == (401, -1, error)


# -- CORS -----------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_an_allowed_origin_is_named_on_answers_and_errors(live: LiveApp) -> None:
    _, alice = await live.user("alice")
    for path, query, status in (
        ("/station", {}, 200),
        ("/user/lognew", {"token": alice}, 200),
        ("/user/request", {"token": "forged"}, 401),  # an error answer too
        ("/user/lognew", {"token": alice, "num": "x"}, 400),
        ("/no/such/path", {}, 404),
        ("/admin/piles", {"token": alice}, 403),
    ):
        response = await live.fetch("GET", path, query, headers={"Origin": FRONT})
        assert response.code == status, path
        assert response.headers["Access-Control-Allow-Origin"] == FRONT, path
        assert "Origin" in varies(response.headers), path
        other = await live.fetch("GET", path, query, headers={"Origin": "http://evil.example"})
        assert other.code == status, path
        assert "Access-Control-Allow-Origin" not in other.headers, path
        assert "Origin" in varies(other.headers), path  # caches keep the two apart
    plain = await live.fetch("GET", "/station")  # same origin: no Origin header
    assert "Access-Control-Allow-Origin" not in plain.headers
    assert "Origin" in varies(plain.headers)


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/login", "/register", "/user/lognew", "/admin/piles/off"])
async def test_a_preflight_from_an_allowed_origin_is_204(live: LiveApp, path: str) -> None:
    # A browser sends no credentials with a preflight: the operator API must answer it too.
    response = await live.fetch("OPTIONS", path, headers={"Origin": FRONT, **PREFLIGHT})
    assert (response.code, response.body) == (204, b""), path
    headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == FRONT
    assert {m.strip() for m in headers["Access-Control-Allow-Methods"].split(",")} >= {
        "GET", "POST"
    }  # fmt: skip
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed >= {"authorization", "content-type"}
    assert int(headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in varies(headers)


@pytest.mark.asyncio
@pytest.mark.parametrize("origin", ["http://evil.example", FRONT + ".evil.example", None])
async def test_a_preflight_from_another_origin_is_403(live: LiveApp, origin: str | None) -> None:
    headers = dict(PREFLIGHT) if origin is None else {"Origin": origin, **PREFLIGHT}
    for path in ("/login", "/admin/piles/off"):
        response = await live.fetch("OPTIONS", path, headers=headers)
        body = json.loads(response.body)
        assert (response.code, body["code"], body["error"]) == (403, -1, "origin_not_allowed")
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Methods" not in response.headers


@pytest.mark.asyncio
async def test_without_cors_origins_no_origin_is_allowed(tmp_path: Path) -> None:
    async with live_app(tmp_path) as live:
        response = await live.fetch("GET", "/station", headers={"Origin": FRONT})
        assert response.code == 200 and "Access-Control-Allow-Origin" not in response.headers
        response = await live.fetch("OPTIONS", "/login", headers={"Origin": FRONT, **PREFLIGHT})
        assert response.code == 403


@pytest.mark.asyncio
async def test_the_origin_is_matched_without_regard_to_case(live: LiveApp) -> None:
    response = await live.fetch("GET", "/station", headers={"Origin": FRONT.upper()})
    assert response.headers["Access-Control-Allow-Origin"] == FRONT.upper()


def varies(headers: Any) -> list[str]:
    """The header names a Vary header lists (gzip adds Accept-Encoding to Origin)."""
    return [name.strip() for name in headers.get("Vary", "").split(",")]
