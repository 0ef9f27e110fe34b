"""The drivers against the pile simulator over real Modbus: TCP and an RTU bus on a pty pair."""

from __future__ import annotations

import contextlib

import pytest

from drivers.contracts import DeviceState
from drivers.devices.sdm import MeterModel
from drivers.errors import (
    BadReading,
    DeviceRefused,
    LinkTimeout,
    NotSupported,
    RetryableError,
)
from drivers.evse_wb import EvseWbPile
from drivers.reference import ReferencePile
from drivers.sdm import SdmMeter
from tests.drivers.sim_bench import Bench


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", ["tcp", "rtu"])
async def test_reference_pile_session_stops_exactly_at_its_limit(
    bench: Bench, transport: str
) -> None:
    sim = bench.sim("1:reference:7")
    link = await (bench.tcp(sim) if transport == "tcp" else bench.rtu(sim))
    pile = ReferencePile(link, 1, "A", 7000, clock=bench.clock)
    assert await pile.identify() == 7000
    status = await pile.read_status()
    assert (status.state, status.meter_wh, status.power_w) == (DeviceState.NO_VEHICLE, 0, 0)

    await pile.set_watchdog(7200)  # this test polls rarely: a watchdog longer than the session
    await pile.enable(7000, limit_wh=1000)
    bench.clock.advance(60)
    status = await pile.read_status()
    # 7 kW for 60 s: 7000 * 60 / 3600 = 116.67 Wh, shown as whole Wh (floor).
    assert status.state is DeviceState.CHARGING and status.power_w == 7000
    assert status.meter_wh == 116 and status.setpoint_w == 7000
    # 1000 Wh takes 1000 / 7000 h = 514.3 s; poll long after: it stopped exactly at 1000 Wh.
    bench.clock.advance(3600)
    status = await pile.read_status()
    assert status.meter_wh == 1000 and status.state is DeviceState.FINISHED
    assert status.power_w == 0
    assert await pile.read_energy_wh() == 1000


@pytest.mark.asyncio
async def test_watchdog_stops_a_pile_whose_controller_went_silent(bench: Bench) -> None:
    sim = bench.sim("1:reference:36")
    pile = ReferencePile(await bench.tcp(sim), 1, "A", 36_000, clock=bench.clock)
    await pile.set_watchdog(5)
    await pile.enable(36_000)
    bench.clock.advance(4)
    await pile.heartbeat()  # fed at 4 s: the deadline moves to 9 s
    bench.clock.advance(3)
    assert (await pile.read_status()).state is DeviceState.CHARGING
    bench.clock.advance(60)  # silent: the pile stopped by itself at 9 s
    status = await pile.read_status()
    assert status.state is not DeviceState.CHARGING and status.power_w == 0
    # 36 kW for 9 s = 36000 * 9 / 3600 = 90 Wh, not a Wh more.
    assert status.meter_wh == 90


@pytest.mark.asyncio
async def test_evse_wb_with_its_meter_and_a_reference_pile_share_one_serial_bus(
    bench: Bench,
) -> None:
    sim = bench.sim("1:evse-wb:11:meter=2:sdm630", "3:reference:7")
    link = await bench.rtu(sim)
    evse = EvseWbPile(link, 1, "W", 11_040, phases=3)
    meter = SdmMeter(link, 2, "W meter", 11_040, model=MeterModel.SDM630, clock=bench.clock)
    ref = ReferencePile(link, 3, "R", 7000, clock=bench.clock)

    assert (await evse.read_status()).state is DeviceState.NO_VEHICLE
    assert await meter.read_energy_wh() == 0
    await evse.enable(11_000)  # 11000 W / (230 V * 3) = 15.9 A: 15 A, 15 * 690 = 10350 W
    await ref.set_watchdog(7200)  # polled rarely here: a watchdog longer than the test
    await ref.enable(7000)
    status = await evse.read_status()
    assert status.state is DeviceState.CHARGING and status.setpoint_w == 10_350
    bench.clock.advance(3600)
    assert await meter.read_energy_wh() == 10_350  # one hour at 10350 W
    assert await meter.read_power_w() == 10_350
    assert (await ref.read_status()).meter_wh == 7000  # the other unit on the bus, its own data
    await evse.stop()
    bench.clock.advance(600)
    assert (await evse.read_status()).state is DeviceState.CONNECTED
    assert await meter.read_energy_wh() == 10_350

    with pytest.raises(NotSupported):
        await evse.enable(11_000, limit_wh=5000)
    with pytest.raises(NotSupported):
        await evse.heartbeat()


@pytest.mark.asyncio
async def test_sdm120_single_phase(bench: Bench) -> None:
    sim = bench.sim("1:evse-wb:7:phases=1:meter=2:sdm120")
    link = await bench.tcp(sim)
    evse = EvseWbPile(link, 1, "W", 7000, phases=1)
    meter = SdmMeter(link, 2, "W meter", 7000, model=MeterModel.SDM120, clock=bench.clock)
    await evse.enable(7000)  # 7000 W / 230 V = 30.4 A: 30 A, 30 * 230 = 6900 W
    bench.clock.advance(1800)
    assert await meter.read_energy_wh() == 3450  # 6900 W for half an hour
    assert await meter.read_power_w() == 6900


@pytest.mark.asyncio
async def test_pile_faults_reach_the_driver_with_their_code(bench: Bench) -> None:
    sim = bench.sim("1:reference:7", "2:evse-wb:11:meter=3:sdm630")
    link = await bench.tcp(sim)
    ref = ReferencePile(link, 1, "R", 7000, clock=bench.clock)
    evse = EvseWbPile(link, 2, "W", 11_040)
    await ref.set_watchdog(7200)
    await ref.enable(7000)
    await evse.enable(11_000)
    sim.inject(1, "pile_fault", code=7)
    sim.inject(2, "pile_fault", code=3)
    status = await ref.read_status()
    assert (status.state, status.fault_code, status.power_w) == (DeviceState.FAULT, 7, 0)
    evse_status = await evse.read_status()
    assert evse_status.state is DeviceState.FAULT and evse_status.fault_code == 5  # HR 1002 = 5
    sim.clear(1)
    assert (await ref.read_status()).state is not DeviceState.FAULT


@pytest.mark.asyncio
async def test_silence_exceptions_and_late_replies(bench: Bench) -> None:
    sim = bench.sim("1:reference:7", "2:reference:7")
    link = await bench.tcp(sim, timeout_s=0.2)
    one = ReferencePile(link, 1, "one", 7000, clock=bench.clock)
    two = ReferencePile(link, 2, "two", 7000, clock=bench.clock)

    sim.inject(1, "silent")
    with pytest.raises(LinkTimeout):
        await one.read_status()
    assert (await two.read_status()).state is DeviceState.NO_VEHICLE  # the other unit still answers
    sim.clear(1, "silent")

    sim.inject(1, "exception", code=4)
    with pytest.raises(DeviceRefused) as refused:
        await one.read_status()
    assert refused.value.exception_code == 4
    sim.clear(1)

    await two.set_watchdog(7200)
    await two.enable(7000)
    sim.inject(1, "delay", ms=400)
    with pytest.raises(LinkTimeout):
        await one.read_status()
    sim.clear(1)
    bench.clock.advance(3600)
    # The late reply of unit 1 (no vehicle, 0 Wh) is never taken for unit 2's answer.
    status = await two.read_status()
    assert status.meter_wh == 7000 and status.state is DeviceState.CHARGING


@pytest.mark.asyncio
async def test_bad_meter_readings_are_never_passed_on_as_energy(bench: Bench) -> None:
    sim = bench.sim("1:reference:7", "2:evse-wb:11:meter=3:sdm630")
    link = await bench.tcp(sim)
    ref = ReferencePile(link, 1, "R", 7000, clock=bench.clock)
    evse = EvseWbPile(link, 2, "W", 11_040)
    meter = SdmMeter(link, 3, "W meter", 11_040, clock=bench.clock)
    await ref.set_watchdog(7200)
    await ref.enable(7000)
    await evse.enable(11_000)
    bench.clock.advance(3600)
    assert await ref.read_energy_wh() == 7000
    assert await meter.read_energy_wh() == 10_350

    for unit, driver in ((1, ref), (3, meter)):
        sim.inject(unit, "meter_backwards", wh=500)
        with pytest.raises(BadReading) as bad:
            await driver.read_energy_wh()
        assert bad.value.kind == "backwards"
        sim.clear(unit)

        sim.inject(unit, "meter_garbage")
        with pytest.raises(BadReading) as bad:
            await driver.read_energy_wh()
        assert bad.value.kind == "garbage"
        sim.clear(unit)

    # Frozen: the counter stops although the pile draws power; no energy is invented.
    sim.inject(1, "meter_frozen")
    bench.clock.advance(600)
    assert await ref.read_energy_wh() == 7000
    assert (await ref.read_status()).power_w == 7000
    sim.clear(1)
    # 4200 s at 7 kW in all: 4200 * 7000 / 3600 = 8166.7 Wh.
    assert await ref.read_energy_wh() == 8166

    # A reset (a pile reboot) restarts the counter from 0: reported, never billed as a drop.
    sim.inject(1, "meter_reset")
    with pytest.raises(BadReading) as bad:
        await ref.read_energy_wh()
    assert bad.value.kind == "reset"
    ref.guard.rebase(0, bench.clock())  # the controller bridges a reset (RULES §6, issue of faults)
    bench.clock.advance(360)
    assert await ref.read_energy_wh() == 700  # counts on from its new zero: 7 kW for 360 s


@pytest.mark.asyncio
async def test_serial_bus_device_timeout_and_a_late_reply_never_taken_for_the_next(
    bench: Bench,
) -> None:
    sim = bench.sim("1:reference:7", "3:reference:22")
    link = await bench.rtu(sim, timeout_s=1.0)
    slow = ReferencePile(link, 1, "slow", 7000, clock=bench.clock, timeout_s=0.15)
    other = ReferencePile(link, 3, "other", 22_000, clock=bench.clock)
    await other.set_watchdog(0)
    await other.enable(22_000)
    sim.inject(1, "delay", ms=400)
    with pytest.raises(LinkTimeout, match=r"within 0\.15 s"):  # the device's own timeout
        await slow.read_status()
    bench.clock.advance(360)
    # Unit 1's reply comes 0.4 s late, after the bus's quiet time, just before unit 3's own:
    # it is refused (the exchange fails as retryable), never taken for unit 3's answer; the
    # next exchange is clean again.
    with contextlib.suppress(RetryableError):
        status = await other.read_status()
        assert status.meter_wh == 2200  # had it been accepted, it is unit 3's own answer
    status = await other.read_status()
    assert status.meter_wh == 2200 and status.power_w == 22_000  # 22 kW for 360 s
    sim.clear(1)
    assert (await slow.read_status()).state is DeviceState.NO_VEHICLE
