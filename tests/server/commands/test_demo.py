"""`charge-station demo` (what `make run` starts): its URL and registration code work as printed."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import websocket_connect

SCRIPT = Path(sys.executable).parent / "charge-station"


@pytest.mark.asyncio
async def test_the_demo_prints_a_working_url_and_code(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(SCRIPT), "demo", "--port", "0", "--scale", "600", "--state", str(tmp_path / "s")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        base = re.search(r"http://(\S+)", lines[0]).group(1)  # type: ignore[union-attr]
        code = lines[2].rsplit(" ", 1)[1].strip()
        assert "Registration code" in lines[2]
        # The piles are a pile-sim process reached over Modbus TCP; its control channel shows
        # its own meters.
        piles_url = re.search(r"(http://\S+/state)", lines[3]).group(1)  # type: ignore[union-attr]
        form = urlencode({"username": "newcomer", "password": "new-pass-1", "code": code})
        response = await AsyncHTTPClient().fetch(
            f"http://{base}/register?{form}", method="POST", body=""
        )
        token = json.loads(response.body)["token"]
        ws = await websocket_connect(f"ws://{base}/user/charge?token={token}&mode=fast&quantity=1")
        types = []
        while (text := await ws.read_message()) is not None:
            types.append(json.loads(text)["type"])
        assert types[0] == "queued" and types[-2:] == ["bill", "done"]
        state = json.loads((await AsyncHTTPClient().fetch(piles_url)).body)
        meters = {u["unit"]: u["meter_wh"] for u in state["units"]}
        # 1 kWh asked in fast mode: pile A (unit 1) delivered it, to the Wh, and no other pile.
        assert meters == {1: 1000, 2: 0, 3: 0, 4: 0, 5: 0}
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
