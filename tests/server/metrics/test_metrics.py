"""/metrics scraped during a live run: the real Service in process, one pile on pile-sim over
real Modbus TCP and one simulated in process, the OCPP uplink on; every metric the station
promises present, and moving as the run does (counters equal to the bills' totals)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient

from firmware_sim.launch import PileSimProcess
from tests.e2e.harness import ref_pile, until
from tests.kits.ocpp_csms import Csms
from tests.kits.ocpp_station import SCALE, LiveStation, live_station, station_config

STEP_S = 15.0
WATCHDOG_S = 240  # 2 real s at SCALE: well above a busy machine's gaps between heartbeats
PREFIX = "charge_station_"

pytestmark = pytest.mark.asyncio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[PileSimProcess]:
    args = ["--scale", str(SCALE), "--tcp", "127.0.0.1:0", "--port-per-pile"]
    process = PileSimProcess.start([*args, "--pile", ref_pile(1, 30, watchdog_s=WATCHDOG_S)])
    yield process
    process.stop()


async def scrape(station: LiveStation, token: str | None = None) -> Samples:
    port = station.service.metrics_port
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/metrics", headers=headers)
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(PREFIX + name, frozenset(labels.items()))]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == PREFIX + name and want <= ls)


def shown_fen(yuan: Fraction) -> int:
    """A fee as a bill shows it (0.01 yuan, half up), in fen."""
    exact = Decimal(yuan.numerator) / Decimal(yuan.denominator)
    return int(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)


async def test_every_metric_is_there_and_moves_with_the_run(
    tmp_path: Path, sim: PileSimProcess
) -> None:
    csms = Csms()
    await csms.start()
    piles = [
        {
            "id": 1,
            "name": "A",
            "mode": "fast",
            "power_kw": 30,
            "link": f"{sim.tcp_link(1)}?timeout=0.2",
        },
        {"id": 2, "name": "B", "mode": "fast", "power_kw": 30},
        {"id": 3, "name": "C", "mode": "common", "power_kw": 7},
    ]
    piles[0]["watchdog_s"] = WATCHDOG_S
    config = station_config(
        csms.url,
        piles=piles,
        station={"pile_queue_len": 1},
        metrics={"port": 0},
    )
    http = AsyncHTTPClient()
    try:
        async with live_station(config, tmp_path / "state") as station:
            base = station.base
            await csms.wait(lambda: csms.statuses(3), STEP_S, "the boot")
            before = await scrape(station)
            for _ in range(3):
                await http.fetch(f"http://{base}/station")
            # One place per pile: two fast cars charge at A and B, the third waits.
            cars = [await station.car(name) for name in ("al", "bo", "cy")]
            for car, kwh in zip(cars, (2.0, 2.0, 1.0), strict=True):
                await car.open(base, "fast", kwh)
            await cars[1].wait_type("charging", STEP_S)
            await until(
                lambda: (station.service.door.pile(1).power_now_w or 0) > 0,  # type: ignore[union-attr]
                STEP_S,
                "A charging",
            )
            during = await scrape(station)
            assert value(during, "waiting_cars") == 1
            assert (
                value(during, "pile_queue_cars", pile="A")
                == value(during, "pile_queue_cars", pile="B")
                == 1
            )
            assert value(during, "pile_power_watts", pile="A") == 30_000
            assert value(during, "pile_state", pile="A", state="working") == 1
            assert value(during, "websocket_clients", kind="driver") == 3
            assert value(during, "ocpp_connected") == 1
            # Three GET /station, counted by their route.
            assert (
                total(during, "http_requests_total", route="/station", status="200")
                - total(before, "http_requests_total", route="/station", status="200")
                == 3
            )
            assert value(during, "tick_seconds_count") > value(before, "tick_seconds_count")
            assert total(during, "modbus_request_seconds_count", pile="A") > 0

            # The central system goes down, and A stops answering on Modbus: its reads time out
            # (0.2 s each, 12 loop periods of 1/60 s), and after 3 misses A is faulted
            # (RULES §4): its car billed and into the priority line, B being full.
            await csms.stop()
            sim.fault(1, "silent")
            await until(
                lambda: station.service.door.pile(1).state.value == "fault",  # type: ignore[union-attr]
                STEP_S,
                "A faulted",
            )
            faulted = await scrape(station)
            assert value(faulted, "pile_state", pile="A", state="fault") == 1
            assert value(faulted, "pile_faults_total", pile="A") == 1
            assert value(faulted, "priority_cars", mode="fast") == 1
            assert value(faulted, "modbus_errors_total", pile="A", error="LinkTimeout") >= 3
            assert value(faulted, "ticks_missed_total") > value(during, "ticks_missed_total")
            assert value(faulted, "ocpp_connected") == 0
            await until(lambda: station.service.uplink.outbox.durable, STEP_S, "A's stop kept")  # type: ignore[union-attr]
            assert value(await scrape(station), "ocpp_queued_messages") >= 1

            # A answers again and recovers; the central system is back; every car finishes.
            sim.clear(1)
            await csms.start()
            for car in cars:
                await car.wait_type("done", STEP_S)
            await until(lambda: len(station.bills()) >= 4, STEP_S, "every bill stored")
            await until(
                lambda: station.service.uplink.outbox.durable == 0,  # type: ignore[union-attr]
                STEP_S,
                "the outbox sent",
            )
            after = await scrape(station)
            bills = station.bills()
    finally:
        await csms.stop()

    # Counters equal to the bills' totals, computed from the bills as stored (exact):
    assert total(after, "bills_total") == len(bills)
    # A's fault: its session billed at the fault, and what A delivered while silent (until its
    # watchdog stopped it) billed when it answered again (RULES §4): one or two fault bills.
    fault_bills = len([b for b in bills if b.reason == "fault"])
    assert total(after, "bills_total", reason="fault") == fault_bills
    assert fault_bills in (1, 2)
    late = fault_bills - 1  # a bill of late energy is no session of its own
    names = {1: "A", 2: "B", 3: "C"}
    for pile_id, name in names.items():
        mine = [b for b in bills if b.pile_id == pile_id]
        assert value(after, "pile_energy_wh_total", pile=name) == sum(b.energy_wh for b in mine)
        sessions = len(mine) - (late if name == "A" else 0)
        assert value(after, "pile_sessions_total", pile=name) == sessions
    # Revenue in fen as each bill shows its fees: charge 1.00 and service 0.50 yuan per kWh.
    charge_fen = sum(shown_fen(b.charge_fee_yuan) for b in bills)
    service_fen = sum(shown_fen(b.service_fee_yuan) for b in bills)
    assert total(after, "revenue_fen_total", kind="charge") == charge_fen
    assert total(after, "revenue_fen_total", kind="service") == service_fen
    # 5 kWh asked in all, and every Wh billed: exactly 5 x 1.00 yuan of charging fees and
    # 5 x 0.50 of service; as shown, each bill rounded to the fen, within half a fen a bill.
    assert sum(b.energy_wh for b in bills) == 5000
    assert sum(b.charge_fee_yuan for b in bills) == 5
    assert sum(b.service_fee_yuan for b in bills) == Fraction(5, 2)
    assert abs(charge_fen - 500) <= len(bills) / 2 and abs(service_fen - 250) <= len(bills) / 2
    assert value(after, "pile_state", pile="A", state="working") == 1
    assert value(after, "waiting_cars") == 0
    assert value(after, "websocket_clients", kind="driver") == 0
    assert value(after, "ocpp_connected") == 1
    assert value(after, "ocpp_stored_messages") == 0  # every transaction message delivered
    assert value(after, "ocpp_delivered_messages_total") > 0
    # Modbus requests by pile: only A is on Modbus.
    assert total(after, "modbus_request_seconds_count") == total(
        after, "modbus_request_seconds_count", pile="A"
    )


async def test_metrics_off_loopback_need_the_token(tmp_path: Path) -> None:
    token = "s3cret-token-for-prometheus"
    config = station_config(None, metrics={"port": 0, "token": token})
    async with live_station(config, tmp_path / "state") as station:
        port = station.service.metrics_port
        response = await AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{port}/metrics", raise_error=False
        )
        assert response.code == 401
        wrong = await AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{port}/metrics",
            headers={"Authorization": "Bearer not-the-token"},
            raise_error=False,
        )
        assert wrong.code == 401
        samples = await scrape(station, token)
        assert value(samples, "pile_state", pile="A", state="working") == 1
