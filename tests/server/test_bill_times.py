"""A bill's start, end and price come from one clock, the station's, also when it runs faster
than real time (`[clock] scale`, the demo's 60x)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest

from controller.clock import StationClock, local_epoch_seconds
from controller.config import Config, StationSettings, parse_tariff
from controller.door import Door
from controller.live import ControlLoop, PileLink
from controller.storage import DATABASE_FILENAME, AsyncStorage
from controller.values import Mode
from drivers.sim_pile import SimPile
from server.accounts import Accounts, load_secret
from server.hub import Hub
from tests.controller.harness import pile

TZ = timezone(timedelta(hours=8))
SCALE = 60
START = datetime(2026, 12, 8, 20, 55, tzinfo=TZ)  # five minutes before peak ends (RULES §6)


class Monotonic:
    """Real seconds, moved by the test."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.mark.asyncio
async def test_a_bill_under_a_60x_clock_is_dated_and_priced_by_the_station_clock(
    tmp_path: Path,
) -> None:
    real = Monotonic()
    clock = StationClock(SCALE, source=real, start_s=local_epoch_seconds(START))
    real_start = real.now_s

    def wall() -> datetime:  # the real date and time: it runs 60 times slower than the station
        return START + timedelta(seconds=real.now_s - real_start)

    storage = await AsyncStorage.open(tmp_path / DATABASE_FILENAME)
    accounts = Accounts(storage, load_secret(tmp_path), scrypt_n=2**4)
    user_id = await accounts.create_user("eve", "eve-pass-1", "driver")
    hub = Hub(storage, TZ, wall)
    cfg = Config(StationSettings(), parse_tariff({}), (pile(1, "A", Mode.FAST, 30),))
    loop = ControlLoop(cfg, {1: PileLink(SimPile("A", 30_000, clock))}, clock)
    door = Door(loop)
    hub.attach(door)
    door.request(str(user_id), Mode.FAST, 5000)
    await loop.tick()  # the session starts at 20:55 station time
    real.now_s += 10  # 10 real seconds are 600 station seconds: 30 kW for 10 min is 5 kWh
    await loop.tick()
    assert await hub.drain()
    (bill,) = await storage.run(lambda s: s.bills_of(user_id, 10))

    # 20:55 -> 21:05 on the station's clock, not 10 real seconds ending at the wall's 20:55:10.
    assert bill.start == START
    assert bill.end == START + timedelta(minutes=10)
    # 2.5 kWh before 21:00 at peak 1.0 yuan, 2.5 kWh after it at flat 0.7 (RULES §6):
    # the same instants the bill shows.
    assert bill.energy_wh == 5000
    assert bill.charge_fee_yuan == Fraction(5, 2) * 1 + Fraction(5, 2) * Fraction(7, 10)
    assert bill.service_fee_yuan == 5 * Fraction(8, 10)
    await storage.close()
