"""Piles built from their configuration, driven by the running control loop on a scaled clock."""

from __future__ import annotations

import asyncio

import pytest

from controller.clock import StationClock
from controller.config import parse_config
from controller.events import Event, SessionEnded
from controller.live import ControlLoop
from controller.values import Mode
from drivers.abb_terra_ac import AbbTerraAcPile
from drivers.evse_wb import EvseWbPile
from drivers.keba_p30 import KebaP30Pile
from drivers.link import LinkPool
from drivers.reference import ReferencePile
from drivers.sdm import SdmMeter
from firmware_sim.in_process import SimPile
from firmware_sim.simulator import Simulator
from server.assembly.hardware import build_devices

SCALE = 1200  # 20 station minutes a real second


@pytest.mark.asyncio
async def test_configured_modbus_piles_charge_under_the_running_loop() -> None:
    clock = StationClock(SCALE, start_s=6 * 3600)
    sim = Simulator(["1:reference:30", "2:evse-wb:11:meter=3:sdm630"], clock=clock)
    host, port = await sim.start_tcp("127.0.0.1", 0)
    link = f"tcp://{host}:{port}?timeout=0.5"
    config = parse_config(
        {
            "piles": [
                {"id": 1, "name": "R", "mode": "fast", "power_kw": 30, "link": link, "unit": 1},
                {
                    "id": 2,
                    "name": "W",
                    "mode": "common",
                    "power_kw": 11,
                    "link": link,
                    "unit": 2,
                    "profile": "evse-wb",
                    "meter_unit": 3,
                },
                {"id": 3, "name": "S", "mode": "common", "power_kw": 7},
            ]
        }
    )
    pool = LinkPool()
    links = build_devices(config, clock, pool)
    assert isinstance(links[1].pile, ReferencePile) and links[1].meter is None
    assert isinstance(links[2].pile, EvseWbPile) and links[2].meter is not None
    assert isinstance(links[3].pile, SimPile)
    assert links[1].pile.link is links[2].pile.link  # one owner for the shared link

    events: list[Event] = []
    loop = ControlLoop(config, links, clock)
    loop.events.subscribe(lambda seq, event: events.append(event))
    stop = asyncio.Event()
    runner = asyncio.create_task(loop.run(stop, poll_s=2, scale=SCALE))
    energy = loop.units.energy_from_wh
    loop.station.request(loop.now_tick(), "V1", Mode.FAST, energy(5000))  # R: 10 min
    loop.station.request(loop.now_tick(), "V2", Mode.COMMON, energy(3000))  # W (sooner than S)
    try:
        async with asyncio.timeout(20):
            while loop.station.requests:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await runner
        await pool.close()
        await sim.stop()
    bills = {e.bill.car: e.bill for e in events if isinstance(e, SessionEnded)}
    v1, v2 = bills["V1"], bills["V2"]
    assert (v1.pile_name, loop.units.wh_floor(v1.energy)) == ("R", 5000)  # stopped itself at it
    # The EVSE has no energy limit: the loop stops it once its meter shows 3000 Wh; the bill is
    # what the meter counted by then, at most a poll's worth more (10.35 kW * 2 s = 6 Wh).
    assert v2.pile_name == "W"
    assert 3000 <= loop.units.wh_floor(v2.energy) <= 3000 + 50


def test_each_device_gets_its_kinds_timing_unless_its_pile_sets_its_own() -> None:
    tcp = "tcp://127.0.0.1:1"  # never connected: building sends nothing
    rtu = "rtu:///dev/ttyUSB0?baudrate=9600&pause=0.05"
    base = {"mode": "common", "power_kw": 11}
    config = parse_config(
        {
            "piles": [
                {**base, "id": 1, "name": "K", "link": tcp, "profile": "keba-p30"},
                {
                    **base,
                    "id": 2,
                    "name": "W",
                    "link": rtu,
                    "profile": "evse-wb",
                    "meter_unit": 2,
                    "pause_s": 0.2,
                    "timeout_s": 0.3,
                },
                {**base, "id": 3, "name": "A", "link": rtu, "unit": 3, "profile": "abb-terra-ac"},
            ]
        }
    )
    links = build_devices(config, lambda: 0.0, LinkPool())
    keba, evse, abb = links[1].pile, links[2].pile, links[3].pile
    assert isinstance(keba, KebaP30Pile) and isinstance(abb, AbbTerraAcPile)
    # The KEBA's own pause (0.5 s between requests, hardware notes 4b) and unit 255.
    assert (keba.unit, keba.pause_s, keba.timeout_s) == (255, 0.5, None)
    meter = links[2].meter
    assert isinstance(evse, EvseWbPile) and isinstance(meter, SdmMeter)
    assert (evse.pause_s, evse.timeout_s) == (meter.pause_s, meter.timeout_s) == (0.2, 0.3)
    # No pause of its own: the link's `pause` (0.05 s before every transaction) is its floor.
    assert (abb.pause_s, abb.timeout_s, abb.link.spec.pause_s) == (0.0, None, 0.05)
    assert links[3].meter is None  # it counts its own sessions
    assert abb.link is evse.link
