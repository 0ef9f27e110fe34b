"""After every error path the API has, with tokens, passwords and codes in the requests, no log
line holds any of them: not the station's own, not Tornado's (whose lines print the request
target), not a traceback's."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from urllib.parse import urlencode

import pytest
from tornado.websocket import websocket_connect

from controller.storage import Storage
from server.http import log_redaction
from tests.kits.station_kit import PASSWORD, read, running_station

JSON = {"Content-Type": "application/json"}


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as the station's handlers write it: the message, then the traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


@pytest.mark.asyncio
async def test_no_token_password_or_code_in_the_log_after_every_error_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the service sets it up (configure_logging): peewee's DEBUG lines carry SQL parameters.
    caplog.set_level(logging.WARNING, logger="peewee")
    caplog.set_level(logging.DEBUG)  # after: this one sets the capturing handler's level too
    async with running_station(tmp_path) as st:
        alice_id, _ = await st.user("alice")
        _, operator = await st.user("olga", "operator")
        code = await st.accounts.issue_code()
        revoked = (await st.call("POST", "/login", {"username": "alice", "password": PASSWORD}))[1][
            "token"
        ]
        await st.accounts.end_tokens("alice")
        driver = st.accounts.token_for(alice_id, "alice", "driver")  # the generation after it
        secrets = [driver, operator, revoked, PASSWORD, code]

        # HTTP: bad credentials and tokens, each documented refusal, the size limits.
        calls = [
            ("POST", "/login", {"username": "alice", "password": PASSWORD + "x"}),
            ("POST", "/login", {"username": PASSWORD, "password": PASSWORD}),  # name field
            ("POST", "/login", {"username": "alice", "password": PASSWORD * 20}),
            ("POST", "/register", {"username": "bob", "password": PASSWORD, "code": code + "x"}),
            ("POST", "/register", {"username": "alice", "password": PASSWORD, "code": code}),
            ("GET", "/user/log", {"token": driver + "x"}),
            ("GET", "/user/log", {"token": revoked}),
            ("GET", "/user/log", {"token": driver, "num": "x" * 5000}),
            ("GET", "/admin/piles", {"token": driver}),
            ("GET", "/admin/reports", {"token": operator, "period": "day", "date": "9999-12-31"}),
            ("GET", "/admin/bills.csv", {"token": operator, "from": "9999-12-31"}),
            ("POST", "/admin/piles/off", {"token": operator, "stationId": "x"}),
            ("POST", "/admin/codes", {"token": operator, "hours": "1e999"}),
            ("GET", "/nowhere", {"token": driver, "password": PASSWORD}),
            ("GET", "/login", {"username": "alice", "password": PASSWORD}),
            ("GET", "/user/log", {"token": driver, "pad": "a" * 70_000}),
        ]
        for method, path, query in calls:
            status, _ = await st.call(method, path, query)
            assert 400 <= status < 500, (path, status)
        deep = "[" * 1500 + "]" * 1500
        for path in ("/login", "/admin/codes"):
            status, _ = await st.call("POST", f"{path}?token={operator}", body=deep, headers=JSON)
            assert status == 400
        body = f"username=alice&password={PASSWORD}&pad=" + "p" * 20_000
        assert (await st.call("POST", f"/login?token={driver}", body=body))[0] == 413
        await st.raw(
            f"POST /login?token={driver}&password={PASSWORD} HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 99614720\r\n\r\n".encode()
        )

        # WebSocket: bad openings and bad messages, on a socket opened with the token.
        for query in (
            {"token": revoked},
            {"token": operator, "mode": "fast", "quantity": "10"},
            {"token": driver, "mode": "turbo", "quantity": "10"},
            {"token": driver.encode() + b"\xff", "mode": "fast", "quantity": "10"},
        ):
            ws = await st.open(**query)
            assert (await read(ws))["code"] == -1
        for token in (revoked, driver, driver.encode() + b"\xff"):  # the operators' live feed
            live = await websocket_connect(
                st.base.replace("http", "ws") + "/admin/live?" + urlencode({"token": token})
            )
            assert (await read(live))["code"] == -1
            live.close()
        ws = await st.open(token=driver, mode="fast", quantity="10")
        assert (await read(ws))["type"] == "queued"
        for message in ('{"operation": ["revise"]}', "[" * 2000 + "]" * 2000, PASSWORD):
            await ws.write_message(message)
            while (await read(ws))["type"] != "error":  # the car is called and starts meanwhile
                pass

        assert not [r for r in caplog.records if r.exc_info], "a refusal made a traceback"

        # A handler that fails for real, over HTTP and on the socket: the traceback is logged,
        # with the path, without the request's query string.
        def broken(*args: object) -> None:
            raise RuntimeError("the database went away")

        monkeypatch.setattr(Storage, "bills_of", broken)  # in the storage's worker thread
        status, _ = await st.call("GET", "/user/log", {"token": driver, "password": PASSWORD})
        assert status == 500

        def broken_rules(*args: object) -> None:
            raise RuntimeError("the rules went away")

        monkeypatch.setattr(st.loop.station, "change", broken_rules)
        await ws.write_message(json.dumps({"operation": "revise", "quantity": 5}))
        while await asyncio.wait_for(ws.read_message(), 5) is not None:
            pass  # dropped: a failure of the station's own, not of the input

    text = everything_logged(caplog)
    assert "uncaught exception in GET /user/log" in text
    assert "uncaught exception in GET /user/charge" in text
    assert "RuntimeError: the database went away" in text  # the tracebacks are there
    assert "RuntimeError: the rules went away" in text
    assert "failed login for user alice" in text  # and so are the refusals
    for secret in secrets:
        assert secret not in text, secret
    # Not even a part of a token (Tornado quotes the first 40 bytes of bad UTF-8).
    assert "eyJ" not in text


def test_redaction_rewrites_what_tornado_prints() -> None:
    line = (
        "Uncaught exception GET /user/log?num=1&token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig "
        "(127.0.0.1)\nHTTPServerRequest(protocol='http', host='h', method='GET', "
        "uri='/login?username=a&password=hunter22', version='HTTP/1.1', remote_ip='1.2.3.4')"
    )
    cleaned = log_redaction.redact(line)
    assert "hunter22" not in cleaned and "eyJ" not in cleaned
    assert "GET /user/log?[redacted]" in cleaned and "uri='/login?[redacted]'" in cleaned
    assert (
        log_redaction.redact("Authorization: Bearer abc.def") == "Authorization: Bearer [redacted]"
    )
    assert "s3cr3t" not in log_redaction.redact("form password=s3cr3t&x=1")
