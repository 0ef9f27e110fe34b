"""WebSocket /admin/live, the operators' live feed, on a real Tornado server with real WebSocket
clients, the live control loop on simulated piles, a real SQLite file and an injected clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from tornado.websocket import WebSocketClientConnection

import server.operator_api.admin_live
from controller.values import Mode
from tests.kits.live_app import LiveApp, live_app, read


@pytest_asyncio.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveApp]:
    async with live_app(tmp_path) as app:
        yield app


async def operator_socket(live: LiveApp) -> WebSocketClientConnection:
    _, token = await live.user("olga", "operator")
    return await live.socket("/admin/live", token=token)


async def next_snapshot(
    ws: WebSocketClientConnection, events: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The next snapshot; the events before it are added to `events`."""
    while True:
        message = await read(ws)
        if message["type"] == "snapshot":
            return message
        assert message["type"] == "event", message
        if events is not None:
            events.append(message)


@pytest.mark.asyncio
async def test_an_operator_gets_a_snapshot_on_open_and_after_each_change(live: LiveApp) -> None:
    ws = await operator_socket(live)
    first = await next_snapshot(ws)
    assert [(p["stationId"], p["name"], p["state"], p["queue"]) for p in first["piles"]] == [
        (1, "A", "working", []),
        (2, "C", "working", []),
    ]
    assert first["waiting"] == [] and first["priority"] == {"fast": [], "common": []}
    assert first["time"] == "2026-11-23 06:00:00"
    assert {"powerNowW", "answering", "sessions", "quantity"} <= set(first["piles"][0])

    # Drivers ask through the door, as the WebSocket hub does: A (2 places) takes two, one waits.
    names = ("alice", "bob", "carol")
    ids = [(await live.user(name))[0] for name in names]
    for user_id in ids:
        live.door.request(user_id, Mode.FAST, 10_000)
    snapshot = await next_snapshot(ws)
    while len(snapshot["waiting"]) < 1:  # the three requests may straddle two snapshots
        snapshot = await next_snapshot(ws)
    a, c = snapshot["piles"]
    assert [(car["username"], car["queueNo"], car["area"]) for car in a["queue"]] == [
        ("alice", "F1", "charging"),
        ("bob", "F2", "queue"),
    ]
    assert c["queue"] == []
    (waiting,) = snapshot["waiting"]
    assert (waiting["username"], waiting["queueNo"], waiting["ahead"]) == ("carol", "F3", 0)
    assert snapshot["seq"] == live.door.seq

    # The loop switches A on, then reads it: its power shows at the next round of progress.
    await live.loop.tick()
    live.loop.clock.advance(30)  # type: ignore[attr-defined]
    await live.loop.tick()
    live.door.progress()
    snapshot = await next_snapshot(ws)
    assert (snapshot["piles"][0]["powerNowW"], snapshot["piles"][0]["answering"]) == (30_000, True)


@pytest.mark.asyncio
async def test_events_are_numbered_in_order_and_name_the_driver(live: LiveApp) -> None:
    ws = await operator_socket(live)
    await next_snapshot(ws)
    alice_id, _ = await live.user("alice")
    bob_id, _ = await live.user("bob")
    live.door.request(alice_id, Mode.FAST, 10_000)
    live.door.request(bob_id, Mode.COMMON, 5_000)
    await live.loop.tick()
    live.loop.clock.advance(600)  # type: ignore[attr-defined]
    await live.loop.tick()
    await live.door.cancel(alice_id)  # 10 minutes at 30 kW: billed 5 kWh
    live.door.switch_off(2)  # bob's pile: a fault, bob goes to the priority line
    events: list[dict[str, Any]] = []
    while not any(e["kind"] == "displaced" for e in events):
        await next_snapshot(ws, events)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seqs[-1] <= live.door.seq
    kinds = [(e["kind"], e.get("username"), e.get("stationId")) for e in events]
    assert ("call", "alice", 1) in kinds and ("call", "bob", 2) in kinds
    assert ("done", "alice", None) in kinds
    assert ("pile", None, 2) in kinds and ("displaced", "bob", 2) in kinds
    (bill,) = [e for e in events if e["kind"] == "bill" and e["username"] == "alice"]
    assert (bill["stationId"], bill["queueNo"], bill["reason"]) == (1, "F1", "cancelled")
    assert bill["quantity"] == 5.0 and bill["cost"] == 6.0  # 5 kWh * (0.4 + 0.8)
    (pile,) = [e for e in events if e["kind"] == "pile"]
    assert pile["state"] == "off"
    assert [e["kind"] for e in events].index("bill") < [e["kind"] for e in events].index("done")


@pytest.mark.asyncio
async def test_a_driver_token_is_refused_with_4403(live: LiveApp) -> None:
    _, alice = await live.user("alice")
    ws = await live.socket("/admin/live", token=alice)
    message = await read(ws)
    assert (message["code"], message["type"], message["error"]) == (-1, "error", "not_operator")
    assert await asyncio.wait_for(ws.read_message(), 2) is None
    assert ws.close_code == 4403


@pytest.mark.asyncio
@pytest.mark.parametrize("query", [{"token": "forged"}, {"token": ""}, {}])
async def test_a_bad_or_missing_token_is_refused_with_4401(
    live: LiveApp, query: dict[str, str]
) -> None:
    ws = await live.socket("/admin/live", **query)
    message = await read(ws)
    assert (message["code"], message["type"]) == (-1, "error")
    assert message["error"] in ("bad_token", "missing_token")
    assert await asyncio.wait_for(ws.read_message(), 2) is None
    assert ws.close_code == 4401


@pytest.mark.asyncio
async def test_a_burst_of_events_is_a_few_snapshots(
    live: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    gap_s = 0.3
    monkeypatch.setattr(server.operator_api.admin_live, "SNAPSHOT_GAP_S", gap_s)
    ws = await operator_socket(live)
    await next_snapshot(ws)
    ids = [(await live.user(f"driver{i}"))[0] for i in range(6)]
    started = time.monotonic()
    for user_id in ids:  # 6 requests, each its own turn of the event loop, within ~0.1 s
        live.door.request(user_id, Mode.COMMON, 1_000)
        await asyncio.sleep(0.01)
    live.door.progress()
    events: list[dict[str, Any]] = []
    snapshots = [await next_snapshot(ws, events)]
    while len(snapshots[-1]["waiting"]) < 4:  # C takes 2 cars, the waiting area holds 4
        snapshots.append(await next_snapshot(ws, events))
    elapsed_s = time.monotonic() - started
    # Every change is in the feed: each call is an event.
    assert len([e for e in events if e["kind"] == "call"]) == 2
    # ... but the snapshots are at most one per gap (and the first no sooner than the gap).
    assert len(snapshots) <= 1 + int(elapsed_s / gap_s)
    assert len(snapshots) <= 2
    assert snapshots[-1]["seq"] == live.door.seq
    with pytest.raises(asyncio.TimeoutError):  # nothing changed since: no further snapshot
        await asyncio.wait_for(ws.read_message(), 2 * gap_s)


@pytest.mark.asyncio
async def test_every_operator_gets_the_same_snapshot(live: LiveApp) -> None:
    first = await operator_socket(live)
    _, token = await live.user("oscar", "operator")
    second = await live.socket("/admin/live", token=token)
    await next_snapshot(first)
    await next_snapshot(second)
    alice_id, _ = await live.user("alice")
    live.door.request(alice_id, Mode.FAST, 10_000)
    one, two = await next_snapshot(first), await next_snapshot(second)
    while one["seq"] != two["seq"]:
        one = await next_snapshot(first) if one["seq"] < two["seq"] else one
        two = await next_snapshot(second) if two["seq"] < one["seq"] else two
    assert one == two and one["piles"][0]["queue"][0]["username"] == "alice"
    second.close()  # one operator leaves; the other is still told
    live.door.switch_off(2)
    snapshot = await next_snapshot(first)
    while snapshot["piles"][1]["state"] != "off":
        snapshot = await next_snapshot(first)
