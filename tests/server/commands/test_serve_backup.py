"""`charge-station backup` against a running `charge-station serve`: the copy has the bills the
station wrote, and `restore` refuses while the station has the database open."""

from __future__ import annotations

import json
import signal
import subprocess
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import websocket_connect

from controller.storage_schema import SCHEMA_VERSION
from server.accounts import store as accounts_store
from server.assembly.database import open_storage
from tests.kits.serve_process import CONFIG, SCRIPT, start


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False
    )


async def charge(base: str, name: str, kwh: int) -> None:
    """Register `name` and charge kwh to the end (the bill is stored before `done` is sent)."""
    http = AsyncHTTPClient()
    form = urlencode({"username": name, "password": "pass-word", "code": "bench-only-code"})
    response = await http.fetch(f"http://{base}/register?{form}", method="POST", body="")
    token = json.loads(response.body)["token"]
    ws = await websocket_connect(f"ws://{base}/user/charge?token={token}&mode=F&quantity={kwh}")
    types = []
    while (text := await ws.read_message()) is not None:
        types.append(json.loads(text)["type"])
    assert types[-2:] == ["bill", "done"], types


@pytest.mark.asyncio
async def test_backup_of_a_running_station_has_its_bills(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text(CONFIG)
    state = tmp_path / "state"
    proc, base = start(config, state)
    try:
        await charge(base, "ann", 2)
        await charge(base, "ben", 3)

        dest = tmp_path / "backups" / "station-backup.sqlite3"
        dest.parent.mkdir()
        done = run("backup", str(dest), "--state", str(state))
        assert done.returncode == 0, done.stderr
        assert f"wrote {dest}" in done.stdout
        assert f"schema version {SCHEMA_VERSION}, 2 bills" in done.stdout

        refused = run("restore", str(dest), "--state", str(state))
        assert refused.returncode == 2
        assert "in use" in refused.stderr and "Traceback" not in refused.stderr
        assert proc.poll() is None  # the station runs on
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    with open_storage(dest) as copy:
        users = accounts_store.usernames(copy, range(1, 10))
        bills = [b for uid in users for b in copy.bills_of(uid, 10)]
    assert sorted(users.values()) == ["ann", "ben"]
    assert sorted(b.energy_wh for b in bills) == [Fraction(2000), Fraction(3000)]
    # Stopped, the station's database can be restored from the copy.
    restored = run("restore", str(dest), "--state", str(state))
    assert restored.returncode == 0, restored.stderr
    assert "kept as" in restored.stdout
    # The station saved its queue at the stop; a restore leaves it out and says so.
    assert "left out" in restored.stdout
