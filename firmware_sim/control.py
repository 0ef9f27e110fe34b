"""The simulator's control channel: a small HTTP/1.1 JSON API on loopback (asyncio, no framework).

    GET  /state                                   every unit: profile, state, meter, power, faults
    POST /fault   {"unit": 1, "kind": KIND, ...}  inject a fault (parameters as in faults.py)
    POST /clear   {"unit": 1, "kind": KIND}       clear one kind; without "kind": all of them
    POST /vehicle {"unit": 1, "plugged": true}    the vehicle plugs in or leaves

A POST answers 200 with the unit's state afterwards. A bad request answers 400 with
{"error": "..."} naming what was wrong; an unknown path 404, a wrong method 405.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Protocol

from firmware_sim.faults import FaultError
from firmware_sim.stream_server import StreamServer

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_HEADERS = 100


class HttpError(Exception):
    def __init__(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Controls(Protocol):
    """What the channel asks of the simulator (firmware_sim.simulator.Simulator has it)."""

    def state(self, *, step: bool = True) -> dict[str, object]: ...

    def inject(self, unit: int, kind: str, **params: object) -> None: ...

    def clear(self, unit: int, kind: str | None = None) -> None: ...

    def plug(self, unit: int, plugged: bool) -> None: ...


class ControlServer(StreamServer):
    quiet_errors = (*StreamServer.quiet_errors, asyncio.LimitOverrunError)

    def __init__(self, sim: Controls) -> None:
        super().__init__()
        self.sim = sim
        self._routes: dict[str, dict[str, Callable[[Any], dict[str, object]]]] = {
            "/state": {"GET": self._state},
            "/fault": {"POST": self._fault},
            "/clear": {"POST": self._clear},
            "/vehicle": {"POST": self._vehicle},
        }

    # -- HTTP -----------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await self._one(reader, writer):
            pass

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; whether the connection stays open for another."""
        line = await reader.readline()
        if not line:
            return False
        keep_alive = False  # unless the whole request was read: unread bytes would be misread
        try:
            method, path, version = _request_line(line)
            headers = await _headers(reader)
            body = await _body(reader, headers)
            connection = headers.get("connection", "").lower()
            if version == "HTTP/1.0":
                keep_alive = connection == "keep-alive"
            else:
                keep_alive = connection != "close"
            status, payload, extra = HTTPStatus.OK, self._route(method, path, body), {}
        except HttpError as exc:
            status, payload, extra = exc.status, {"error": exc.message}, exc.headers
        data = json.dumps(payload).encode() + b"\n"
        head = [f"HTTP/1.1 {status.value} {status.phrase}", "Content-Type: application/json"]
        head += [
            f"Content-Length: {len(data)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
        ]
        head += [f"{name}: {value}" for name, value in extra.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()
        return keep_alive

    def _route(self, method: str, path: str, body: bytes) -> dict[str, object]:
        path = path.split("?", 1)[0]
        handlers = self._routes.get(path)
        if handlers is None:
            raise HttpError(
                HTTPStatus.NOT_FOUND,
                f"no such path {path!r} (GET /state; POST /fault, /clear, /vehicle)",
            )
        handler = handlers.get(method)
        if handler is None:
            allowed = ", ".join(handlers)
            raise HttpError(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"{path} takes {allowed}, not {method}",
                {"Allow": allowed},
            )
        request = _json_object(body) if method == "POST" else None
        try:
            return handler(request)
        except FaultError as exc:
            raise HttpError(HTTPStatus.BAD_REQUEST, str(exc)) from None

    # -- operations -----------------------------------------------------------------------
    def _state(self, _: None) -> dict[str, object]:
        return self.sim.state()

    def _unit_state(self, unit: int, *, step: bool = True) -> dict[str, object]:
        units: Any = self.sim.state(step=step)["units"]
        return next(u for u in units if u["unit"] == unit)

    def _fault(self, request: dict[str, Any]) -> dict[str, object]:
        unit = _required(request, "unit")
        kind = _required(request, "kind")
        params = {k: v for k, v in request.items() if k not in ("unit", "kind")}
        self.sim.inject(unit, kind, **params)
        return self._unit_state(unit, step=False)  # as the fault found it

    def _clear(self, request: dict[str, Any]) -> dict[str, object]:
        unit = _required(request, "unit")
        _only(request, {"unit", "kind"})
        self.sim.clear(unit, request.get("kind"))
        return self._unit_state(unit)

    def _vehicle(self, request: dict[str, Any]) -> dict[str, object]:
        unit = _required(request, "unit")
        plugged = _required(request, "plugged")
        _only(request, {"unit", "plugged"})
        if not isinstance(plugged, bool):
            raise FaultError(f"plugged must be true or false, got {plugged!r}")
        self.sim.plug(unit, plugged)
        return self._unit_state(unit)


def _request_line(line: bytes) -> tuple[str, str, str]:
    parts = line.decode("latin-1").strip().split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(HTTPStatus.BAD_REQUEST, "malformed request line (METHOD PATH HTTP/1.1)")
    return parts[0], parts[1], parts[2]


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"malformed header line {line[:60]!r}")
        headers[name.strip().lower()] = value.strip()
    raise HttpError(HTTPStatus.BAD_REQUEST, f"more than {MAX_HEADERS} header lines")


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise HttpError(
            HTTPStatus.BAD_REQUEST, "chunked bodies are not supported: send Content-Length"
        )
    text = headers.get("content-length", "0")
    if not text.isdigit():
        raise HttpError(HTTPStatus.BAD_REQUEST, f"Content-Length must be a number, got {text!r}")
    length = int(text)
    if length > MAX_BODY:
        raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
    return await reader.readexactly(length)


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise HttpError(
            HTTPStatus.BAD_REQUEST, 'the body must be a JSON object, as {"unit": 1, ...}'
        )
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise HttpError(
            HTTPStatus.BAD_REQUEST, f"the body must be a JSON object, got {type(value).__name__}"
        )
    return value


def _required(request: dict[str, Any], name: str) -> Any:
    if name not in request:
        raise FaultError(f"{name!r} is missing")
    return request[name]


def _only(request: dict[str, Any], known: set[str]) -> None:
    for name in request:
        if name not in known:
            raise FaultError(f"unknown field {name!r} (expected: {', '.join(sorted(known))})")
