"""The live station in process with its OCPP uplink on, for the uplink's and the metrics'
tests: the real Service (storage, control loop, door, hub, HTTP API) on simulated piles at a
bench speed-up, and drivers on its WebSocket API."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from server.assembly.config import ServiceConfig, parse_config
from server.assembly.service import Service
from tests.e2e.harness import Car, StoredBill, stored_bills

# Station time runs SCALE times faster: a 30 kW pile delivers 1 kWh in 120 station seconds,
# one real second.
SCALE = 120
POLL_S = 2  # station seconds: 1/60 real s
METER_VALUES_S = 20  # station seconds: MeterValues every 1/6 real s of a transaction
CP_ID = "cs-test-1"
BENCH_CODE = "ocpp-bench-code"
# One price all day, so fees do not depend on when the test runs: 1.00 + 0.50 yuan per kWh.
PILES = [
    {"id": 1, "name": "A", "mode": "fast", "power_kw": 30},
    {"id": 2, "name": "B", "mode": "fast", "power_kw": 30},
    {"id": 3, "name": "C", "mode": "common", "power_kw": 7},
]


def station_config(
    csms_url: str | None, *, piles: list[dict[str, Any]] | None = None, **sections: Any
) -> ServiceConfig:
    data: dict[str, Any] = {
        "station": {"waiting_area_size": 6, "pile_queue_len": 2},
        "tariff": {
            "service_fee": 0.5,
            "prices": {"all_day": 1.0},
            "periods": {"all_day": ["00:00-24:00"]},
        },
        "piles": piles or PILES,
        "clock": {"scale": SCALE},
        "server": {"port": 0, "poll_s": POLL_S},
        "accounts": {"bench_registration_code": BENCH_CODE},
    }
    if csms_url is not None:
        data["ocpp"] = {
            "url": csms_url,
            "charge_point_id": CP_ID,
            "heartbeat_s": 60,
            "meter_values_s": METER_VALUES_S,
            "reconnect_max_s": 0.2,
        }
    for name, table in sections.items():
        data[name] = {**data.get(name, {}), **table}
    return parse_config(data)


class LiveStation:
    def __init__(self, service: Service, state: Path) -> None:
        self.service = service
        self.state = state
        self.base = f"127.0.0.1:{service.port}"
        self.cars: list[Car] = []

    async def car(self, name: str) -> Car:
        accounts = self.service.accounts
        user_id = await accounts.create_user(name, "pass-word-1", "driver")
        car = Car(name, accounts.token_for(user_id, name, "driver"), user_id)
        self.cars.append(car)
        return car

    def bills(self) -> list[StoredBill]:
        return stored_bills(self.state / "station.sqlite3")

    def bill_wh(self, car: Car) -> list[Fraction]:
        return [b.energy_wh for b in self.bills() if b.user_id == car.user_id]

    async def close(self) -> None:
        for car in self.cars:
            await car.close()
        await self.service.stop()


@contextlib.asynccontextmanager
async def live_station(config: ServiceConfig, state: Path) -> AsyncIterator[LiveStation]:
    service = await Service.start(config, state, port=0)
    station = LiveStation(service, state)
    try:
        yield station
    finally:
        await station.close()


def outbox_rows(state: Path) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, action, payload) of the uplink's outbox as stored (a read-only connection)."""
    import sqlite3

    db = sqlite3.connect(f"file:{state / 'station.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT id, action, payload FROM uplink_outbox ORDER BY id").fetchall()
    finally:
        db.close()
    return [(r[0], r[1], json.loads(r[2])) for r in rows]
