"""Nothing lost, nothing slowed: the central system down through two sessions with a `kill -9`
of the station between them (a real `charge-station serve` process), and a central system that
answers each call only after 5 s while drivers use the station."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.e2e.harness import BENCH_CODE, StationProcess, register, stored_bills, until
from tests.kits.ocpp_csms import Csms
from tests.kits.ocpp_station import CP_ID, live_station, outbox_rows, station_config

STEP_S = 15.0

pytestmark = pytest.mark.asyncio


def station_toml(csms_url: str) -> str:
    return f"""
[tariff]
service_fee = 0.5
[tariff.prices]
all_day = 1.0
[tariff.periods]
all_day = ["00:00-24:00"]

[[piles]]
id = 1
name = "A"
mode = "fast"
power_kw = 30
link = "sim"

[clock]
scale = 120

[server]
port = 0
poll_s = 2

[accounts]
bench_registration_code = "{BENCH_CODE}"

[ocpp]
url = "{csms_url}"
charge_point_id = "{CP_ID}"
meter_values_s = 20
reconnect_max_s = 0.2
"""


def saved_at_us(state: Path) -> int:
    db = sqlite3.connect(f"file:{state / 'station.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        row = db.execute("SELECT saved_utc_us FROM station_state WHERE id = 1").fetchone()
    finally:
        db.close()
    return 0 if row is None else int(row[0])


async def one_session(base: str, name: str) -> None:
    car = await register(base, name)
    try:
        await car.open(base, "fast", 1.0)
        await car.wait_type("done", STEP_S)
    finally:
        await car.close()


async def stops_stored(state: Path, count: int) -> None:
    def enough() -> bool:
        return [a for _, a, _ in outbox_rows(state)].count("StopTransaction") >= count

    await until(enough, STEP_S, f"{count} StopTransaction in the outbox")


async def test_down_through_two_sessions_and_a_kill_9_then_each_message_once_in_order(
    tmp_path: Path,
) -> None:
    csms = Csms()  # down: its port refuses connections until it starts
    config = tmp_path / "station.toml"
    config.write_text(station_toml(csms.url))
    state = tmp_path / "state"
    station = StationProcess(config, state)
    try:
        base = station.start()
        await one_session(base, "ann")
        await stops_stored(state, 1)
        # The station's state is saved after the session's messages are stored: wait for the
        # save that follows, so the restart carries on after this session, not inside it.
        stored_us = int(time.time() * 1e6)
        await until(lambda: saved_at_us(state) > stored_us, STEP_S, "the state saved")
        station.kill()  # kill -9: no clean-up of any kind

        base = station.start()
        await one_session(base, "bea")
        await stops_stored(state, 2)
        waiting = outbox_rows(state)
        actions = [a for _, a, _ in waiting]
        # Two whole transactions, in the order they happened, each start before its meter
        # values and they before its stop.
        first_stop = actions.index("StopTransaction")
        assert actions[0] == actions[first_stop + 1] == "StartTransaction"
        assert set(actions[1:first_stop]) == {"MeterValues"}
        assert actions[-1] == "StopTransaction"

        await csms.start()
        await csms.wait(lambda: len(csms.of("StopTransaction")) == 2, STEP_S, "both stops")
        await until(lambda: not outbox_rows(state), STEP_S, "the outbox emptied")
        got = csms.transaction_calls()
        # Every stored message delivered once, in the stored order, with the central system's
        # transactionId in place of the station's number.
        assert [r.action for r in got] == actions
        ids = sorted(csms.started)  # the central system's ids, in the order it gave them
        local_to_csms = {1: ids[0], 2: ids[1]}
        for (_, action, payload), received in zip(waiting, got, strict=True):
            expected: dict[str, Any] = dict(payload)
            if action != "StartTransaction":
                expected["transaction_id"] = local_to_csms[payload["transaction_id"]]
            assert received.payload == expected, action
        stamps = [
            r.payload.get("timestamp") or r.payload["meter_value"][0]["timestamp"] for r in got
        ]
        assert stamps == sorted(stamps)  # sent with the times they were made, oldest first
        # Each transaction's meterStop - meterStart is its bill's Wh (bills exact from the db).
        bills = stored_bills(state / "station.sqlite3")
        starts, stops = csms.of("StartTransaction"), csms.of("StopTransaction")
        assert [s["transaction_id"] for s in stops] == ids
        assert [s["meter_stop"] - t["meter_start"] for s, t in zip(stops, starts, strict=True)] == [
            b.energy_wh for b in bills
        ]
        assert [b.energy_wh for b in bills] == [1000, 1000]  # 1 kWh each, as asked
        assert station.terminate() == 0
    finally:
        station.close()
        await csms.stop()


async def test_a_central_system_answering_in_5_s_changes_nothing_for_drivers(
    tmp_path: Path,
) -> None:
    """The same driver calls against a station without uplink and one whose central system
    takes 5 s per answer: the driver API answers as fast, and the charge takes as long."""
    http = AsyncHTTPClient()

    async def measure(base: str, name: str, live: Any) -> tuple[float, float, float]:
        """(slowest GET /station, the request's first reply, request to bill) in seconds."""
        station_s = []
        for _ in range(10):
            t0 = time.monotonic()
            response = await http.fetch(f"http://{base}/station")
            station_s.append(time.monotonic() - t0)
            assert response.code == 200
        car = await live.car(name)
        t0 = time.monotonic()
        await car.open(base, "fast", 1.0)
        first_s = time.monotonic() - t0
        await car.wait_type("done", STEP_S)
        return max(station_s), first_s, time.monotonic() - t0

    async with live_station(station_config(None), tmp_path / "plain") as plain:
        without = await measure(plain.base, "cal", plain)

    csms = Csms(answer_delay_s=5.0)
    await csms.start()
    try:
        async with live_station(station_config(csms.url), tmp_path / "slow") as slow:
            await csms.wait(lambda: csms.received, STEP_S, "the boot sent")
            with_slow = await measure(slow.base, "dee", slow)
            uplink = slow.service.uplink
            assert uplink is not None
            # The uplink was waiting for the central system all along: the boot not answered
            # yet, and the session's transaction messages kept in the outbox meanwhile.
            assert not uplink.connected
            assert uplink.outbox.durable >= 2  # at least its start and its stop
    finally:
        await csms.stop()
    # A driver call that waited on the central system would take 5 s or more; each one here
    # stays within 0.2 s of the station without uplink.
    for plain_s, slow_s in zip(without, with_slow, strict=True):
        assert slow_s < plain_s + 0.2, (without, with_slow)
    # 1 kWh at 30 kW: 120 station s, 1 real s at scale 120; the bill came as soon without.
    assert with_slow[2] < 3.0
