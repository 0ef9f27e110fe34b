"""The station's bills, as the composition root builds it: each is stored by the ledger, with
no driver connected at all, and its start, end and price come from one clock, the station's,
also when it runs faster than real time (`[clock] scale`, the demo's 60x)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest

from controller.billing import EndReason
from controller.clock import StationClock, local_epoch_seconds
from controller.config import Config, StationSettings, parse_tariff
from controller.values import Mode
from tests.controller.harness import pile
from tests.kits.in_process import in_process

TZ = timezone(timedelta(hours=8))
SCALE = 60
START = datetime(2026, 12, 8, 20, 55, tzinfo=TZ)  # five minutes before peak ends (RULES §6)
PEAK, FLAT, SERVICE = Fraction(1), Fraction(7, 10), Fraction(8, 10)  # yuan/kWh, RULES §6


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
    cfg = Config(StationSettings(), parse_tariff({}), (pile(1, "A", Mode.FAST, 30),))
    async with in_process(cfg, tmp_path, clock, TZ) as station:
        user_id = await station.accounts.create_user("eve", "eve-pass-1", "driver")
        station.door.request(user_id, Mode.FAST, 5000)
        await station.loop.tick()  # the session starts at 20:55 station time
        real.now_s += 10  # 10 real seconds are 600 station seconds: 30 kW for 10 min is 5 kWh
        await station.loop.tick()
        assert await station.ledger.drain()
        (bill,) = await station.storage.run(lambda s: s.bills_of(user_id, 10))

    # 20:55 -> 21:05 on the station's clock, not 10 real seconds ending at the wall's 20:55:10.
    assert bill.start == START
    assert bill.end == START + timedelta(minutes=10)
    # 2.5 kWh before 21:00 at peak, 2.5 kWh after it at flat (RULES §6): the same instants the
    # bill shows.
    assert bill.energy_wh == 5000
    assert bill.charge_fee_yuan == Fraction(5, 2) * PEAK + Fraction(5, 2) * FLAT
    assert bill.service_fee_yuan == 5 * SERVICE


@pytest.mark.asyncio
async def test_with_no_driver_connected_every_bill_is_stored(tmp_path: Path) -> None:
    real = Monotonic()
    clock = StationClock(1, source=real, start_s=local_epoch_seconds(START))
    piles = (pile(1, "A", Mode.FAST, 30), pile(2, "B", Mode.COMMON, 7))
    cfg = Config(StationSettings(), parse_tariff({}), piles)
    async with in_process(cfg, tmp_path, clock, TZ) as station:
        assert station.hub.sockets == {}  # nobody listens for these bills
        ann = await station.accounts.create_user("ann", "ann-pass-1", "driver")
        bob = await station.accounts.create_user("bob", "bob-pass-1", "driver")
        station.door.request(ann, Mode.FAST, 3000)
        station.door.request(bob, Mode.COMMON, 1400)
        await station.loop.tick()  # both sessions start
        for _ in range(13):  # 30 kW: 3 kWh in 6 min; 7 kW: 1.4 kWh in 12 min
            real.now_s += 60
            await station.loop.tick()
        real.now_s += 1
        await station.loop.tick()
        assert station.door.request_count() == 0
        assert await station.ledger.drain()
        bills = {
            user: await station.storage.run(lambda s, user=user: s.bills_of(user, 10))
            for user in (ann, bob)
        }
    (ann_bill,) = bills[ann]
    (bob_bill,) = bills[bob]
    assert (ann_bill.energy_wh, ann_bill.reason) == (3000, EndReason.COMPLETED)
    assert (bob_bill.energy_wh, bob_bill.reason) == (1400, EndReason.COMPLETED)
    # 3 kWh from 20:55: 30 kW x 5 min = 2.5 kWh at peak until 21:00, 0.5 after it at flat.
    assert ann_bill.charge_fee_yuan == Fraction(5, 2) * PEAK + Fraction(1, 2) * FLAT
    # 1.4 kWh at 7 kW from 20:55: the meter counts whole Wh, and the loop's reading at 21:00
    # shows 7000 W x 300 s / 3600 = 583.3, so 583 Wh at peak and the other 817 Wh at flat.
    peak_wh = 7000 * 300 // 3600
    assert peak_wh == 583
    assert bob_bill.charge_fee_yuan == (
        Fraction(peak_wh, 1000) * PEAK + Fraction(1400 - peak_wh, 1000) * FLAT
    )
