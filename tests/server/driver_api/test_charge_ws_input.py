"""WebSocket messages that used to kill the handler: each gets an `error` message, the socket
stays open and the request is unchanged. The 4 KiB limit counts bytes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.kits.station_kit import Station, read, running_station


@pytest_asyncio.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    async with running_station(tmp_path) as s:
        yield s


async def waiting_socket(station: Station) -> Any:
    """A driver's socket whose request waits (the only pile is taken by another car)."""
    first = await station.open(token=(await station.user("first"))[1], mode="fast", quantity=10)
    assert (await read(first))["type"] == "queued"
    ws = await station.open(token=(await station.user("alice"))[1], mode="fast", quantity=10)
    queued = await read(ws)
    assert (queued["type"], queued["area"]) == ("queued", "waiting")
    return ws


def request_state(station: Station) -> list[tuple[str, str, str, int]]:
    st = station.loop.station
    return sorted((r.car, r.queue_no, r.mode.value, r.asked) for r in st.requests.values())


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("message", "error"),
    [
        ('{"operation": ["revise"]}', "unknown_operation"),
        ('{"operation": {}}', "unknown_operation"),
        ('{"operation": {"revise": 1}, "quantity": 5}', "unknown_operation"),
        ('{"operation":"revise","quantity":1' + "0" * 400 + "}", "bad_quantity"),
        ('{"operation":"revise","quantity":-1' + "0" * 400 + "}", "bad_quantity"),
        ('{"operation":"revise","quantity":1e400}', "bad_quantity"),
        ('{"operation":"revise","quantity":NaN}', "bad_json"),  # not JSON (RFC 8259)
        ("[" * 2000 + "]" * 2000, "too_deep"),
        ('{"operation": "status", "x": ' + "[" * 40 + "]" * 40 + "}", "too_deep"),
        # 1,400 characters but 4,200 bytes of UTF-8: over the limit, which counts bytes.
        ('{"operation":"status","note":"' + "充" * 1400 + '"}', "message_too_large"),
    ],
)
async def test_a_bad_message_is_an_error_and_the_socket_and_request_stay(
    station: Station, message: str, error: str
) -> None:
    ws = await waiting_socket(station)
    before = request_state(station)
    await ws.write_message(message)
    answer = await read(ws)
    assert (answer["code"], answer["type"], answer["error"]) == (-1, "error", error)
    assert request_state(station) == before
    # The socket is open and the handler alive: it answers the next operation.
    await ws.write_message(json.dumps({"operation": "status"}))
    status = await read(ws)
    assert (status["type"], status["area"], status["quantity"]) == ("status", "waiting", 10.0)


@pytest.mark.asyncio
async def test_a_message_under_the_limit_in_bytes_is_taken(station: Station) -> None:
    ws = await waiting_socket(station)
    message = '{"operation":"status","note":"' + "充" * 1300 + '"}'  # 3,932 bytes
    assert len(message.encode()) <= 4096
    await ws.write_message(message)
    assert (await read(ws))["type"] == "status"
