"""A token counts only for a user who exists, is not removed and still has the token's
generation, and with the role the database gives the user (an operator's does not queue a
car); a new password, a revocation and a removal end a user's tokens, through the API's
accounts and through the command line while the station runs."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
import pytest_asyncio
from tornado.httpclient import AsyncHTTPClient

from controller.billing import Bill, EndReason
from controller.units import Units
from server.accounts.accounts import AccountError
from tests.kits.serve_process import SCRIPT, start_serve
from tests.kits.station_kit import KEY, PASSWORD, START, Station, read, running_station


@pytest_asyncio.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    async with running_station(tmp_path) as s:
        yield s


@pytest.mark.asyncio
async def test_a_signed_token_for_a_user_who_does_not_exist_reads_nothing(
    station: Station,
) -> None:
    forged = station.accounts.token_for(999, "ghost", "driver")  # signed with the real key
    status, body = await station.call("GET", "/user/log", {"token": forged})
    assert (status, body["error"]) == (401, "bad_token")
    operator = station.accounts.token_for(998, "ghost-op", "operator")
    status, body = await station.call("GET", "/admin/piles", {"token": operator})
    assert (status, body["error"]) == (401, "bad_token")


@pytest.mark.asyncio
async def test_the_role_is_the_databases_not_the_tokens(station: Station) -> None:
    driver_id, _ = await station.user("dora")
    promoted = station.accounts.token_for(driver_id, "dora", "operator")
    status, body = await station.call("GET", "/admin/piles", {"token": promoted})
    assert (status, body["error"]) == (403, "not_operator")
    status, _ = await station.call("GET", "/user/log", {"token": promoted})
    assert status == 200  # still dora's token, as a driver


@pytest.mark.asyncio
async def test_a_revocation_ends_every_token_and_a_new_login_works(station: Station) -> None:
    alice_id, _ = await station.user("alice")
    code, body = await station.call("POST", "/login", {"username": "alice", "password": PASSWORD})
    tokens = [body["token"], station.accounts.token_for(alice_id, "alice", "driver")]
    await station.accounts.end_tokens("alice")
    for token in tokens:
        status, body = await station.call("GET", "/user/lognew", {"token": token})
        assert (status, body["error"]) == (401, "token_revoked")
    ws = await station.open(token=tokens[0], mode="fast", quantity=5)
    assert (await read(ws))["error"] == "token_revoked"
    assert await ws.read_message() is None and ws.close_code == 4401
    code, body = await station.call("POST", "/login", {"username": "alice", "password": PASSWORD})
    status, _ = await station.call("GET", "/user/lognew", {"token": body["token"]})
    assert (code, status) == (200, 200)


@pytest.mark.asyncio
async def test_a_token_from_before_generations_counts_as_generation_0(station: Station) -> None:
    user_id, _ = await station.user("old")
    now_s = int(START.timestamp() + station.clock.now_s)
    claims = {"sub": str(user_id), "name": "old", "role": "driver", "iat": now_s}
    legacy = jwt.encode({**claims, "exp": now_s + 60}, KEY, algorithm="HS256")
    assert (await station.call("GET", "/user/log", {"token": legacy}))[0] == 200
    await station.accounts.end_tokens("old")
    assert (await station.call("GET", "/user/log", {"token": legacy}))[0] == 401


@pytest.mark.asyncio
async def test_a_new_password_ends_the_old_tokens_and_the_old_password(station: Station) -> None:
    _, token = await station.user("alice")
    await station.accounts.set_password("alice", "brand-new-pw-9")
    status, body = await station.call("GET", "/user/log", {"token": token})
    assert (status, body["error"]) == (401, "token_revoked")
    status, body = await station.call("POST", "/login", {"username": "alice", "password": PASSWORD})
    assert (status, body["error"]) == (401, "bad_credentials")
    status, body = await station.call(
        "POST", "/login", {"username": "alice", "password": "brand-new-pw-9"}
    )
    assert status == 200 and (await station.call("GET", "/user/log", body))[0] == 200
    with pytest.raises(AccountError) as short:
        await station.accounts.set_password("alice", "short")
    assert short.value.error == "bad_password"


@pytest.mark.asyncio
async def test_a_removed_user_cannot_log_in_and_their_bills_stay(station: Station) -> None:
    user_id, token = await station.user("alice")
    _, operator = await station.user("olga", "operator")
    units = Units.for_powers([30_000])
    energy = units.energy_from_wh(2000)
    bill = Bill(1, user_id, "F1", 1, "A", 0, 0, energy, 0, 0, EndReason.COMPLETED)
    await station.storage.run(
        lambda s: s.add_bill(bill, units, user_id, START, START + timedelta(hours=1))
    )
    await station.accounts.remove_user("alice")
    status, body = await station.call("GET", "/user/log", {"token": token})
    assert (status, body["error"]) == (401, "bad_token")
    status, body = await station.call("POST", "/login", {"username": "alice", "password": PASSWORD})
    assert (status, body["error"]) == (401, "bad_credentials")
    # The bill is a financial record: still there, still named.
    status, csv_text = await station.call(
        "GET", "/admin/bills.csv", {"token": operator, "from": "2026-11-23"}
    )
    assert status == 200 and ",alice," in csv_text
    with pytest.raises(AccountError) as taken:
        await station.accounts.create_user("alice", PASSWORD, "driver")
    assert taken.value.error == "username_taken"  # nobody inherits the bills
    with pytest.raises(AccountError) as again:
        await station.accounts.remove_user("alice")
    assert (again.value.error, again.value.status) == ("unknown_user", 404)


@pytest.mark.asyncio
async def test_an_older_view_of_a_user_never_undoes_an_ending(
    station: Station, tmp_path: Path
) -> None:
    """A login's row read before a revocation may be put after it: the newer generation wins,
    and a change by another process counts once the directory reads the table again."""
    directory = station.accounts.users
    alice_id, token = await station.user("alice")
    bob_id, bob = await station.user("bob")
    before = directory.get(alice_id)
    assert before is not None
    await station.accounts.end_tokens("alice")
    directory.put(before)
    assert (await station.call("GET", "/user/log", {"token": token}))[1]["error"] == "token_revoked"
    await station.accounts.remove_user("alice")
    directory.put(before)
    await directory.load()
    assert (await station.call("GET", "/user/log", {"token": token}))[1]["error"] == "bad_token"
    # Another process ends bob's tokens: nothing changes until the table is read again.
    other = sqlite3.connect(tmp_path / "station.sqlite3")
    other.execute(
        "UPDATE users SET token_generation = token_generation + 1 WHERE id = ?", (bob_id,)
    )
    other.commit()
    other.close()
    assert (await station.call("GET", "/user/log", {"token": bob}))[0] == 200
    assert await directory.refresh() and not await directory.refresh()
    assert (await station.call("GET", "/user/log", {"token": bob}))[1]["error"] == "token_revoked"


@pytest.mark.asyncio
async def test_an_operator_token_does_not_open_a_charging_request(station: Station) -> None:
    _, operator = await station.user("olga", "operator")
    ws = await station.open(token=operator, mode="fast", quantity=10)
    message = await read(ws)
    assert (message["code"], message["error"]) == (-1, "not_a_driver")
    assert await ws.read_message() is None and ws.close_code == 4403
    assert station.loop.station.requests == {}


CONFIG = """
[server]
port = 0
host = "127.0.0.1"

[accounts]
bench_registration_code = "bench-only-code"

[[piles]]
id = 1
name = "A"
mode = "fast"
power_kw = 30
"""


def cli(state: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "user", *args, "--state", str(state)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def until_refused(url: str, token: str) -> tuple[str, float]:
    """Poll until the station refuses the token: its error key and how long it took."""
    http = AsyncHTTPClient()
    started = time.monotonic()
    while time.monotonic() - started < 10:
        response = await http.fetch(f"{url}/user/log?token={token}", raise_error=False)
        if response.code == 401:
            return json.loads(response.body)["error"], time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError("the token still works")


@pytest.mark.asyncio
async def test_the_commands_end_tokens_in_a_running_station(tmp_path: Path) -> None:
    config, state = tmp_path / "station.toml", tmp_path / "state"
    config.write_text(CONFIG)
    proc, url = start_serve(config, state, stderr=subprocess.DEVNULL)
    http = AsyncHTTPClient()

    async def post(path: str, **params: str) -> dict[str, str]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        response = await http.fetch(f"{url}{path}?{query}", method="POST", body="")
        return json.loads(response.body)

    try:
        token = (
            await post("/register", username="ann", password=PASSWORD, code="bench-only-code")
        )["token"]
        done = cli(state, "revoke", "ann")
        assert done.returncode == 0 and "every token has ended" in done.stdout, done.stderr
        error, took_s = await until_refused(url, token)
        assert error == "token_revoked" and took_s < 3

        token = (await post("/login", username="ann", password=PASSWORD))["token"]
        done = cli(state, "passwd", "ann", stdin="another-pass-1\n")
        assert done.returncode == 0 and "another-pass-1" not in done.stdout + done.stderr
        assert (await until_refused(url, token))[0] == "token_revoked"
        token = (await post("/login", username="ann", password="another-pass-1"))["token"]

        done = cli(state, "remove", "ann")
        assert done.returncode == 0 and "removed" in done.stdout, done.stderr
        assert (await until_refused(url, token))[0] == "bad_token"
        unknown = cli(state, "remove", "ann")
        assert unknown.returncode == 2 and "no such user" in unknown.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)
