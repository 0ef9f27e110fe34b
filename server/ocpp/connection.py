"""The uplink's WebSocket client on Tornado, as the ocpp library wants a connection: `send(str)`
and `recv() -> str`, and ConnectionClosed when the peer has gone."""

from __future__ import annotations

import base64
import logging

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
CONNECT_TIMEOUT_S = 10.0
PING_INTERVAL_S = 30.0  # WebSocket pings: a half-open connection is found within two of them
MAX_MESSAGE_BYTES = 1024 * 1024


class ConnectionClosed(Exception):
    """The connection is gone (closed by either side, or never made)."""


class Connection:
    def __init__(self, ws: WebSocketClientConnection) -> None:
        self._ws = ws

    async def send(self, message: str) -> None:
        try:
            await self._ws.write_message(message)
        except WebSocketClosedError:
            raise ConnectionClosed("the central system closed the connection") from None

    async def recv(self) -> str:
        message = await self._ws.read_message()
        if message is None:
            code = self._ws.close_code
            raise ConnectionClosed(f"the central system closed the connection (code {code})")
        return message if isinstance(message, str) else message.decode("utf-8", "replace")

    def close(self) -> None:
        self._ws.close()


def endpoint(url: str, charge_point_id: str) -> str:
    """OCPP-J: the charge point's identity is the last segment of the URL."""
    return f"{url.rstrip('/')}/{charge_point_id}"


async def connect(
    url: str,
    charge_point_id: str,
    password: str | None = None,
    cafile: str | None = None,
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> Connection:
    """Open the connection, with HTTP Basic (security profile 1/2) when there is a password;
    ConnectionClosed with the reason if it cannot be made or the ocpp1.6 subprotocol is not
    agreed. The password is never logged."""
    headers = {}
    if password is not None:
        pair = f"{charge_point_id}:{password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    request = HTTPRequest(
        endpoint(url, charge_point_id),
        headers=headers,
        connect_timeout=timeout_s,
        request_timeout=timeout_s,
        ca_certs=cafile,
    )
    try:
        ws = await websocket_connect(
            request,
            subprotocols=[SUBPROTOCOL],
            ping_interval=PING_INTERVAL_S,
            ping_timeout=PING_INTERVAL_S,
            max_message_size=MAX_MESSAGE_BYTES,
        )
    except HTTPClientError as exc:  # refused by the server: 401 for a wrong password, 404, ...
        if exc.code == 599:  # Tornado's code for a timeout or a connection that failed
            raise ConnectionClosed(str(exc)) from None
        raise ConnectionClosed(f"refused: HTTP {exc.code}") from None
    except (OSError, TimeoutError) as exc:  # nobody there, DNS, TLS
        raise ConnectionClosed(str(exc) or type(exc).__name__) from None
    if ws.selected_subprotocol != SUBPROTOCOL:
        ws.close()
        raise ConnectionClosed(f"the central system did not agree to {SUBPROTOCOL}")
    return Connection(ws)
