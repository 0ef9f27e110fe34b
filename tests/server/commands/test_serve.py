"""`charge-station serve` as a real process: register, charge over the WebSocket, read the
history, then SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import websocket_connect

from tests.kits.serve_process import CONFIG, SCRIPT, start


@pytest.mark.asyncio
async def test_serve_register_charge_history_and_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text(CONFIG)
    proc = subprocess.Popen(
        [str(SCRIPT), "serve", "--config", str(config), "--state", str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("station listening on http://"), line
        base = line.split("http://")[1].strip()
        http = AsyncHTTPClient()
        form = urlencode({"username": "dora", "password": "dora-pass", "code": "bench-only-code"})
        response = await http.fetch(f"http://{base}/register?{form}", method="POST", body="")
        token = json.loads(response.body)["token"]
        ws = await websocket_connect(f"ws://{base}/user/charge?token={token}&mode=F&quantity=2")
        types = []
        while (text := await ws.read_message()) is not None:
            types.append(json.loads(text)["type"])
        assert types[0] == "queued" and types[-2:] == ["bill", "done"]
        log = json.loads((await http.fetch(f"http://{base}/user/log?token={token}")).body)
        assert [entry["quantity"] for entry in log] == [2.0]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "bench configuration" in err  # said at start-up (PROTOCOL.md)
    assert "dora-pass" not in err and token not in err


@pytest.mark.asyncio
async def test_requests_carry_on_after_sigterm_and_a_restart(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    # Slow time and a big amount: the car is still charging, another one waiting, at the stop.
    config.write_text(CONFIG.replace("scale = 600", "scale = 1"))
    state = tmp_path / "state"
    proc, base = start(config, state)
    tokens = []
    try:
        http = AsyncHTTPClient()
        for name in ("ann", "ben"):
            form = urlencode({"username": name, "password": "pass-word", "code": "bench-only-code"})
            response = await http.fetch(f"http://{base}/register?{form}", method="POST", body="")
            tokens.append(json.loads(response.body)["token"])
        for token in tokens:
            ws = await websocket_connect(
                f"ws://{base}/user/charge?token={token}&mode=F&quantity=50"
            )
            assert json.loads(await ws.read_message())["type"] == "queued"  # type: ignore[arg-type]
            ws.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err

    proc, base = start(config, state)
    try:
        states = []
        for token in tokens:
            ws = await websocket_connect(f"ws://{base}/user/charge?token={token}&mode=T&quantity=1")
            states.append(json.loads(await ws.read_message()))  # type: ignore[arg-type]
            ws.close()
        assert [(s["type"], s["queueNo"], s["quantity"]) for s in states] == [
            ("resumed", "F1", 50.0),
            ("resumed", "F2", 50.0),
        ]
        assert states[0]["area"] == "charging" and states[1]["area"] == "queue"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "2 requests restored" in err


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    config = tmp_path / "station.toml"
    config.write_text(CONFIG.replace("port = 0", f"port = {port}"))
    try:
        done = subprocess.run(
            [str(SCRIPT), "serve", "--config", str(config), "--state", str(tmp_path / "state")],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    finally:
        taken.close()
    assert done.returncode == 2
    assert "cannot start" in done.stderr and str(port) in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.asyncio
async def test_a_request_answered_queued_survives_a_kill_at_once(tmp_path: Path) -> None:
    """`queued` is a promise: it goes out only once the request is on disk, so a station killed
    (kill -9, a power cut) the moment after still has the car, with its number, when it is back."""
    config = tmp_path / "station.toml"
    config.write_text(CONFIG.replace("scale = 600", "scale = 1"))
    state = tmp_path / "state"
    proc, base = start(config, state)
    http = AsyncHTTPClient()
    tokens = []
    try:
        for name in ("cat", "dan", "eve"):
            form = urlencode({"username": name, "password": "pass-word", "code": "bench-only-code"})
            response = await http.fetch(f"http://{base}/register?{form}", method="POST", body="")
            tokens.append(json.loads(response.body)["token"])
        sockets = [
            await websocket_connect(f"ws://{base}/user/charge?token={t}&mode=T&quantity=20")
            for t in tokens
        ]
        answers = [json.loads(await ws.read_message()) for ws in sockets]  # type: ignore[arg-type]
    finally:
        proc.kill()  # no safe stop: the moment after the last `queued`
        proc.communicate(timeout=10)
    assert [a["queueNo"] for a in answers] == ["T1", "T2", "T3"]

    proc, base = start(config, state)
    try:
        resumed = []
        for token in tokens:
            ws = await websocket_connect(f"ws://{base}/user/charge?token={token}&mode=F&quantity=1")
            resumed.append(json.loads(await ws.read_message()))  # type: ignore[arg-type]
            ws.close()
        assert [(r["type"], r["queueNo"]) for r in resumed] == [
            ("resumed", "T1"),
            ("resumed", "T2"),
            ("resumed", "T3"),
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_a_database_newer_than_the_release_is_a_clear_error(tmp_path: Path) -> None:
    import sqlite3

    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / "station.sqlite3")
    db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_utc_us INTEGER)")
    db.execute("INSERT INTO schema_version VALUES (99, 0)")  # written by a future release
    db.commit()
    db.close()
    config = tmp_path / "station.toml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [str(SCRIPT), "serve", "--config", str(config), "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "schema version 99" in done.stderr and "Traceback" not in done.stderr
