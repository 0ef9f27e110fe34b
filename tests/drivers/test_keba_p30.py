"""The KEBA KeContact P30 driver against its simulated twin over real Modbus TCP (unit 255): the
status from four one-value reads, its own meter in 0.1 Wh, and the fail-safe fed as a watchdog."""

from __future__ import annotations

import pytest

from drivers.contracts import DeviceState
from drivers.errors import BadReading, NotSupported
from drivers.keba_p30 import KebaP30Pile
from tests.drivers.sim_bench import Bench

UNIT = 255


async def keba(bench: Bench, spec: str, power_w: int, **kwargs: int) -> KebaP30Pile:
    sim = bench.sim(spec)
    # No pause on a loopback twin: the device's own 0.5 s would only slow the test down.
    link = await bench.tcp(sim)
    return KebaP30Pile(link, UNIT, "K", power_w, clock=bench.clock, pause_s=0.0, **kwargs)


@pytest.mark.asyncio
async def test_a_session_counted_by_its_own_meter(bench: Bench) -> None:
    pile = await keba(bench, "255:keba-p30:11:meter_wh=2000", 11_000)
    sim = bench.sims[0]
    status = await pile.read_status()
    assert (status.state, status.meter_wh, status.setpoint_w) == (DeviceState.NO_VEHICLE, 2000, 0)

    # 11000 W / 690 V = 15.942 A: 15942 mA to 5004, enable 1 to 5014.
    await pile.enable(11_000)
    assert sim.device(UNIT).snapshot()["current_ma"] == 15_942
    status = await pile.read_status()
    # 15942 mA x 690 V = 10999.98 W; the twin draws whole watts, 10999 W: 10,999,000 mW on 1020.
    assert (status.state, status.power_w, status.setpoint_w) == (
        DeviceState.CHARGING,
        10_999,
        10_999,
    )
    bench.clock.advance(1)  # 10999 J: 30.55 tenths of a Wh -> 30 on 1036 -> 3 whole Wh
    assert (await pile.read_status()).meter_wh == 2003
    bench.clock.advance(3599)  # an hour in all at 10999 W: 10999 Wh
    assert (await pile.read_status()).meter_wh == 2000 + 10_999

    await pile.stop()  # 5014 = 0: suspended (state 5), the vehicle still plugged in
    status = await pile.read_status()
    assert (status.state, status.power_w, status.setpoint_w) == (DeviceState.CONNECTED, 0, 0)
    assert status.meter_wh == sim.model(UNIT).meter_wh == 12_999

    await pile.enable(3_000)  # 3000 / 690 = 4.3 A: below 6 A, so it stays stopped
    assert (await pile.read_status()).setpoint_w == 0
    with pytest.raises(NotSupported):
        await pile.enable(11_000, limit_wh=5000)


@pytest.mark.asyncio
async def test_the_fail_safe_is_fed_every_half_timeout(bench: Bench) -> None:
    pile = await keba(bench, "255:keba-p30:11", 11_000, phases=3)
    device = bench.sims[0].device(UNIT)
    await pile.set_watchdog(20)  # 5018 = 20 s
    assert device.snapshot()["failsafe_s"] == 20
    await pile.enable(6_900)  # 6900 / 690 = 10 A
    bench.clock.advance(9)
    await pile.heartbeat()  # 9 s < 20 / 2: nothing written
    assert device.fed_tick == 0
    bench.clock.advance(2)
    await pile.heartbeat()  # 11 s: written, the deadline moves to 31 s
    assert device.fed_tick == 11_000
    bench.clock.advance(15)
    assert (await pile.read_status()).state is DeviceState.CHARGING  # 26 s
    bench.clock.advance(60)  # silent: it fell back at 31 s
    status = await pile.read_status()
    # Interrupted: its setpoint reads 0, so the station enables it again (a dropped command).
    assert (status.state, status.power_w, status.setpoint_w) == (DeviceState.CONNECTED, 0, 0)
    # 6900 W for 31 s = 213900 J = 59.42 Wh: 594 tenths, 59 whole Wh.
    assert status.meter_wh == 59


@pytest.mark.asyncio
async def test_a_new_driver_feeds_the_timeout_already_in_force(bench: Bench) -> None:
    """After a restart of the station the driver does not know the timeout: it reads 1602."""
    first = await keba(bench, "255:keba-p30:11:watchdog=30", 11_000)
    device = bench.sims[0].device(UNIT)
    await first.enable(11_000)
    bench.clock.advance(25)
    second = KebaP30Pile(first.link, UNIT, "K", 11_000, clock=bench.clock, pause_s=0.0)
    await second.heartbeat()
    assert (second.failsafe_s, device.fed_tick) == (30, 25_000)
    bench.clock.advance(20)
    assert (await second.read_status()).state is DeviceState.CHARGING  # 45 s < 25 + 30


@pytest.mark.asyncio
async def test_errors_garbage_and_the_vehicle_leaving(bench: Bench) -> None:
    pile = await keba(bench, "255:keba-p30:7.4:phases=1", 7_400, phases=1)
    sim = bench.sims[0]
    await pile.enable(7_400)  # 7400 / 230 = 32.17 A: 32173 mA, 7399.79 W
    assert (await pile.read_status()).power_w == 7_399
    sim.inject(UNIT, "meter_garbage")
    with pytest.raises(BadReading) as bad:
        await pile.read_status()
    assert bad.value.kind == "garbage"  # 1036 shows 0xFFFFFFFF
    sim.clear(UNIT)
    sim.inject(UNIT, "pile_fault", code=9)
    status = await pile.read_status()
    assert (status.state, status.fault_code) == (DeviceState.FAULT, 4)  # state 4: error
    sim.clear(UNIT)
    sim.plug(UNIT, False)
    assert (await pile.read_status()).state is DeviceState.NO_VEHICLE  # 1004 bit 2 clear
