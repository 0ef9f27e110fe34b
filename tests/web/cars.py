"""Drivers that are not the browser: a car on the WebSocket in a thread of its own, so that a
browser test can have other cars ahead of its driver."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any
from urllib.parse import urlencode

from tornado.websocket import websocket_connect


class ApiCar:
    """Opens /user/charge with a mode and an amount and reads every message until the station
    closes the socket."""

    def __init__(self, base_url: str, token: str, mode: str, quantity_kwh: float) -> None:
        query = urlencode({"token": token, "mode": mode, "quantity": str(quantity_kwh)})
        self.url = base_url.replace("http://", "ws://") + f"/user/charge?{query}"
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        ws = await websocket_connect(self.url)
        while (text := await ws.read_message()) is not None:
            with self._lock:
                self.messages.append(json.loads(text))

    def types(self) -> list[str]:
        with self._lock:
            return [m["type"] for m in self.messages]

    def wait_for(self, kind: str, timeout_s: float = 20.0) -> dict[str, Any]:
        """The first message of this type, once it has come."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for message in self.messages:
                    if message.get("type") == kind:
                        return message
            time.sleep(0.02)
        raise AssertionError(f"no {kind!r} message within {timeout_s} s: {self.types()}")

    def join(self, timeout_s: float = 30.0) -> None:
        self._thread.join(timeout_s)
