"""The live control loop over the pile contracts: in-process simulated piles (`sim`) and the
pile simulator over real Modbus TCP, on an injected clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import pytest
import pytest_asyncio

from controller.billing import Bill, EndReason
from controller.config import Config, StationSettings, parse_tariff
from controller.events import Event, SessionEnded
from controller.live import ControlLoop, PileDevices
from controller.values import PileState as RulesState
from drivers.link import ModbusLink, parse_link
from drivers.reference import ReferencePile
from firmware_sim.in_process import SimPile
from firmware_sim.simulator import Simulator
from tests.controller.harness import FAST, pile
from tests.firmware_sim.fakes import FakeClock

SIX = 6 * 3600  # the clock reads seconds since midnight: 06:00, valley price (RULES §6)
VALLEY, SERVICE = Fraction(4, 10), Fraction(8, 10)


class Station:
    """A control loop on a fake clock, with the bills it published."""

    def __init__(
        self,
        links: dict[int, PileDevices],
        clock: FakeClock,
        *powers_kw: int,
        settings: StationSettings | None = None,
        watchdog_s: int = 10,
    ) -> None:
        cfg = Config(
            settings or StationSettings(),
            parse_tariff({}),
            tuple(
                pile(i, f"P{i}", FAST, kw)._replace(watchdog_s=watchdog_s)
                for i, kw in enumerate(powers_kw, start=1)
            ),
        )
        self.events: list[Event] = []
        self.clock = clock
        self.loop = ControlLoop(cfg, links, clock)
        self.loop.events.subscribe(lambda seq, event: self.events.append(event))
        self.st = self.loop.station

    @property
    def bills(self) -> list[Bill]:
        return [e.bill for e in self.events if isinstance(e, SessionEnded)]

    def request(self, car: str, kwh: int) -> None:
        self.st.request(self.loop.now_tick(), car, FAST, self.loop.units.energy_from_wh(kwh * 1000))

    async def run(self, seconds: float, every_s: float = 60) -> None:
        """Tick every `every_s` of simulated time for `seconds`."""
        end = self.clock.now_s + seconds
        while self.clock.now_s < end:
            self.clock.advance(min(every_s, end - self.clock.now_s))
            await self.loop.tick()


@pytest.mark.asyncio
async def test_a_session_on_an_in_process_simulated_pile_is_billed_from_its_meter() -> None:
    clock = FakeClock()
    clock.advance(SIX)
    s = Station({1: PileDevices(SimPile("P1", 30_000, clock))}, clock, 30)
    s.request("V1", 10)
    await s.loop.tick()  # reads the meter, then enables the pile for 10 kWh
    await s.run(600)  # 30 kW for 10 min = 5 kWh so far
    energy, _, _ = s.st.session_so_far(s.st.pile_by_id[1], s.loop.now_tick())
    assert s.loop.units.kwh(energy) == 5
    await s.run(1800)  # the pile stopped itself at 10 kWh, after 20 min
    (bill,) = s.bills
    assert bill.reason is EndReason.COMPLETED and s.loop.units.kwh(bill.energy) == 10
    # All in the valley period: 10 kWh * (0.4 + 0.8) = 12 yuan.
    assert s.loop.units.yuan(bill.total_fee) == 10 * (VALLEY + SERVICE)
    assert s.st.requests == {}


class Rig:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.clock.advance(SIX)
        self.sims: list[Simulator] = []
        self.links: list[ModbusLink] = []


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig()
    yield r
    for link in r.links:
        await link.close()
    for sim in r.sims:
        await sim.stop()


async def modbus_station(
    rig: Rig, specs: tuple[str, ...] = ("1:reference:30", "2:reference:30"), **station: Any
) -> tuple[Station, Simulator]:
    """Two reference piles (30 kW) served by the simulator over TCP, driven by the loop."""
    sim = Simulator(list(specs), clock=rig.clock)
    rig.sims.append(sim)
    host, port = await sim.start_tcp("127.0.0.1", 0)
    link = ModbusLink(parse_link(f"tcp://{host}:{port}?timeout=0.2"))
    rig.links.append(link)
    links = {
        unit: PileDevices(ReferencePile(link, unit, f"P{unit}", 30_000, clock=rig.clock))
        for unit in (1, 2)
    }
    return Station(links, rig.clock, 30, 30, **station), sim


@pytest.mark.asyncio
async def test_modbus_piles_bill_what_their_meters_counted(rig: Rig) -> None:
    s, sim = await modbus_station(rig)
    s.request("V1", 10)  # P1: 20 min at 30 kW
    s.request("V2", 5)  # P2: 10 min
    await s.loop.tick()
    await s.run(1800, every_s=5)  # the loop feeds the watchdog (10 s) on every tick
    assert sorted((b.car, s.loop.units.kwh(b.energy)) for b in s.bills) == [("V1", 10), ("V2", 5)]
    # The bills are the simulator's own meters, to the Wh.
    assert sim.model(1).meter_wh == 10_000 and sim.model(2).meter_wh == 5000


@pytest.mark.asyncio
async def test_a_fault_the_pile_reports_stops_and_bills_and_the_car_moves_on(rig: Rig) -> None:
    s, sim = await modbus_station(rig)
    s.request("V1", 10)
    await s.loop.tick()
    await s.run(300, every_s=5)  # 5 min at 30 kW: 2.5 kWh
    sim.inject(1, "pile_fault", code=9)
    await s.run(5, every_s=5)
    assert s.st.pile_by_id[1].state is RulesState.FAULT
    (bill,) = s.bills
    assert bill.reason is EndReason.FAULT and s.loop.units.kwh(bill.energy) == Fraction(5, 2)
    # V1 still wants 7.5 kWh and went on to P2 (RULES §4).
    assert s.st.requests["V1"].pile is s.st.pile_by_id[2]
    await s.run(1800, every_s=5)
    assert [s.loop.units.kwh(b.energy) for b in s.bills] == [Fraction(5, 2), Fraction(15, 2)]
    sim.clear(1)
    await s.run(5, every_s=5)
    assert s.st.pile_by_id[1].state is RulesState.WORKING  # recovered by itself


@pytest.mark.asyncio
async def test_a_pile_that_stops_answering_is_faulted_after_the_miss_limit(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    s, sim = await modbus_station(rig)
    s.request("V1", 10)
    await s.loop.tick()
    await s.run(120, every_s=5)  # 2 min at 30 kW: 1 kWh
    sim.inject(1, "silent")
    await s.run(10, every_s=5)  # two misses: not yet a fault
    assert s.st.pile_by_id[1].state is RulesState.WORKING
    await s.run(5, every_s=5)  # the third
    assert s.st.pile_by_id[1].state is RulesState.FAULT
    (bill,) = s.bills
    # Billed up to the last good reading: 120 s at 30 kW = 1000 Wh.
    assert bill.reason is EndReason.FAULT and s.loop.units.kwh(bill.energy) == 1
    # Meanwhile the silent pile charged on until its watchdog (10 s after the last heartbeat,
    # at 120 s) stopped it: 30 kW * 10 s = 83.3 Wh, floored to 83 by the meter. When it answers
    # again, it recovers, and V1 gets a bill for those 83 Wh too (RULES §4: what it received).
    sim.clear(1)
    await s.run(5, every_s=5)
    assert s.st.pile_by_id[1].state is RulesState.WORKING
    assert sim.model(1).meter_wh == 1083
    late = s.bills[1]
    assert (late.car, late.reason, s.loop.units.wh_floor(late.energy)) == (
        "V1",
        EndReason.FAULT,
        83,
    )
    # Priced as energy of the valley period (06:02): 0.083 kWh * (0.4 + 0.8) yuan.
    assert s.loop.units.yuan(late.total_fee) == Fraction(83, 1000) * (VALLEY + SERVICE)
    assert "pile P1: delivered 83 Wh to F1 while it did not answer; billed" in caplog.text
    # V1 wants 10 - 1 - 0.083 = 8.917 kWh more.
    assert s.loop.units.wh_floor(s.st.requests["V1"].wanted) == 10_000 - 1000 - 83


@pytest.mark.asyncio
async def test_piles_are_polled_together_so_a_dead_one_holds_up_no_other(rig: Rig) -> None:
    s, _ = await modbus_station(rig)
    s.request("V1", 10)
    await s.loop.tick()
    # Pile 1's read waits until pile 2 has been read: with one pile after the other (pile 1
    # first, in configuration order) this would never happen, and the wait would time out.
    pile2_read = asyncio.Event()
    p1, p2 = s.loop.runtimes[1].device, s.loop.runtimes[2].device
    read1, read2 = p1.read_status, p2.read_status

    async def slow_read1():
        await asyncio.wait_for(pile2_read.wait(), 2)
        return await read1()

    async def read2_first():
        pile2_read.set()
        return await read2()

    p1.read_status, p2.read_status = slow_read1, read2_first  # type: ignore[method-assign]
    await s.loop.tick()
    assert pile2_read.is_set() and s.loop.misses == {1: 0, 2: 0}


@pytest.mark.asyncio
async def test_a_restart_carries_on_the_session_and_bills_what_came_meanwhile(rig: Rig) -> None:
    sim = Simulator(["1:reference:30:watchdog=0"], clock=rig.clock)  # no watchdog: it runs on
    rig.sims.append(sim)
    host, port = await sim.start_tcp("127.0.0.1", 0)

    def station() -> Station:
        link = ModbusLink(parse_link(f"tcp://{host}:{port}?timeout=0.3"))
        rig.links.append(link)
        return Station(
            {1: PileDevices(ReferencePile(link, 1, "P1", 30_000, clock=rig.clock))}, rig.clock, 30
        )

    first = station()
    first.request("V1", 20)  # 40 min at 30 kW
    await first.loop.tick()
    await first.run(600, every_s=5)  # 10 min: 5 kWh
    saved = json.loads(json.dumps(first.loop.snapshot()))
    rig.clock.advance(600)  # the station is down for 10 min; the pile charges on: 5 kWh more
    second = station()
    second.loop.restore(saved)
    assert second.st.requests["V1"].queue_no == "F1"
    await second.run(1800, every_s=5)
    (bill,) = second.bills
    # One session, one bill: all 20 kWh, those delivered while the station was down included.
    assert (bill.car, second.loop.units.kwh(bill.energy)) == ("V1", 20)
    assert first.bills == []


@pytest.mark.asyncio
async def test_a_simulated_pile_that_restarts_from_zero_is_bridged() -> None:
    clock = FakeClock()
    clock.advance(SIX)
    first = Station({1: PileDevices(SimPile("P1", 30_000, clock))}, clock, 30)
    first.request("V1", 10)
    await first.loop.tick()
    await first.run(600)  # 5 kWh
    saved = json.loads(json.dumps(first.loop.snapshot()))
    # After a restart the in-process pile is new: its meter starts again from 0.
    second = Station({1: PileDevices(SimPile("P1", 30_000, clock))}, clock, 30)
    second.loop.restore(saved)
    await second.run(1200)
    (bill,) = second.bills
    # 5 kWh before the restart and 5 after (the pile is told only what is left): 10 in one bill.
    assert second.loop.units.kwh(bill.energy) == 10


# -- failures: the car, the station and the meter ------------------------------------------------


@pytest.mark.asyncio
async def test_a_called_car_that_never_plugs_in_loses_its_turn(rig: Rig) -> None:
    settings = StationSettings(pile_queue_len=2, plug_timeout_s=600)
    s, sim = await modbus_station(
        rig, ("1:reference:30:noplug", "2:reference:30:noplug"), settings=settings
    )
    s.request("V1", 10)  # P1 (first in configuration order)
    s.request("V2", 10)  # P2
    s.request("V3", 5)  # P1's queue, behind V1 (both finish at the same time; P1 comes first)
    await s.loop.tick()
    sim.plug(2, True)  # V2 plugs in; V1 never does
    await s.run(595, every_s=5)
    assert "V1" in s.st.requests  # 595 s < plug_timeout 600 s
    await s.run(10, every_s=5)
    assert "V1" not in s.st.requests  # its turn is lost ...
    done = [e for e in s.events if getattr(e, "reason", None) == "no_show"]
    assert [e.car for e in done] == ["V1"]
    assert all(b.car != "V1" for b in s.bills)  # ... without a bill (RULES §3)
    # V3 is at P1 now; it plugs in and gets its 5 kWh (10 min at 30 kW).
    assert s.st.pile_by_id[1].charging() is s.st.requests["V3"]
    sim.plug(1, True)
    await s.run(1200, every_s=5)
    assert sorted((b.car, s.loop.units.kwh(b.energy)) for b in s.bills) == [("V2", 10), ("V3", 5)]
    assert sim.model(1).meter_wh == 5000  # what V3's bill says, and nothing for V1


@pytest.mark.asyncio
async def test_a_car_that_leaves_during_its_session_is_billed_for_what_it_got(rig: Rig) -> None:
    s, sim = await modbus_station(rig)
    s.request("V1", 10)
    await s.loop.tick()
    await s.run(300, every_s=5)  # 5 min at 30 kW = 2.5 kWh
    sim.plug(1, False)
    await s.run(5, every_s=5)
    (bill,) = s.bills
    assert (bill.car, bill.reason, s.loop.units.kwh(bill.energy)) == (
        "V1",
        EndReason.CANCELLED,
        Fraction(5, 2),
    )
    assert s.st.requests == {}


@pytest.mark.asyncio
async def test_the_station_writes_the_watchdog_and_enables_again_after_it_fired(rig: Rig) -> None:
    s, sim = await modbus_station(rig, watchdog_s=20)
    s.request("V1", 10)  # 20 min at 30 kW
    await s.loop.tick()
    await s.run(300, every_s=5)
    assert sim.device(1).watchdog_s == 20  # the configured timeout, written before the enable
    # The station hangs for 2 minutes: no heartbeat, so the pile stops 20 s after the last one.
    rig.clock.advance(120)
    assert sim.state()["units"][0]["watchdog_stopped_s"] is not None
    assert sim.model(1).meter_wh == 2500 + 30_000 * 20 // 3600  # 2.5 kWh + 166 Wh, then nothing
    await s.run(1800, every_s=5)  # the station is back: it enables the pile for what is left
    (bill,) = s.bills
    assert (bill.reason, s.loop.units.kwh(bill.energy)) == (EndReason.COMPLETED, 10)
    assert sim.model(1).meter_wh == 10_000


@pytest.mark.asyncio
async def test_a_meter_that_restarts_from_zero_mid_session_is_bridged(rig: Rig) -> None:
    s, sim = await modbus_station(rig)
    s.request("V1", 10)
    await s.loop.tick()
    await s.run(600, every_s=5)  # 5 kWh
    sim.inject(1, "meter_reset")  # the reported counter starts again from 0
    await s.run(1800, every_s=5)
    (bill,) = s.bills
    # 5 kWh before the restart and 5 after, in one bill; the physics' own meter agrees.
    assert s.loop.units.kwh(bill.energy) == 10 and sim.model(1).meter_wh == 10_000


@pytest.mark.asyncio
async def test_a_safe_stop_bills_stops_the_piles_and_the_cars_carry_on_after_it(rig: Rig) -> None:
    s, sim = await modbus_station(rig)
    s.request("V1", 10)  # P1
    s.request("V2", 4)  # P2
    s.request("V3", 2)  # waits for P2 (V2 finishes first)
    await s.loop.tick()
    await s.run(240, every_s=5)  # 4 min at 30 kW: 2 kWh each
    await s.loop.shutdown()
    assert sorted((b.car, b.reason, s.loop.units.kwh(b.energy)) for b in s.bills) == [
        ("V1", EndReason.STOPPED, 2),
        ("V2", EndReason.STOPPED, 2),
    ]
    assert [sim.model(u).power_w for u in (1, 2)] == [0, 0]  # both piles told to stop
    saved = json.loads(json.dumps(s.loop.snapshot()))
    rig.clock.advance(600)  # down for 10 minutes: nothing is delivered meanwhile
    assert [sim.model(u).meter_wh for u in (1, 2)] == [2000, 2000]
    link = rig.links[0]
    again = Station(
        {u: PileDevices(ReferencePile(link, u, f"P{u}", 30_000, clock=rig.clock)) for u in (1, 2)},
        rig.clock,
        30,
        30,
    )
    again.loop.restore(saved)
    assert [again.st.requests[c].queue_no for c in ("V1", "V2", "V3")] == ["F1", "F2", "F3"]
    await again.run(1800, every_s=5)
    # The rest of each request: V1 10 - 2 = 8 kWh, V2 4 - 2 = 2 kWh, V3 all of its 2 kWh.
    assert sorted((b.car, s.loop.units.kwh(b.energy)) for b in again.bills) == [
        ("V1", 8),
        ("V2", 2),
        ("V3", 2),
    ]
    assert [sim.model(u).meter_wh for u in (1, 2)] == [10_000, 6000]


@pytest.mark.asyncio
async def test_the_next_car_after_a_cancel_gets_a_session_of_its_own(rig: Rig) -> None:
    s, sim = await modbus_station(rig)
    s.request("V1", 10)  # P1
    s.request("V2", 10)  # P2
    s.request("V3", 10)  # P1's queue, behind V1: the same amount as V1
    await s.loop.tick()
    await s.run(300, every_s=5)  # 5 min at 30 kW: 2.5 kWh each
    s.st.cancel(s.loop.now_tick(), "V1")  # V1 leaves mid-session; V3 is next at P1
    await s.run(1800, every_s=5)
    # V3's 10 kWh are a session of their own. Carried on in V1's running session, the pile
    # would have stopped at V1's limit, 10 kWh from V1's start: only 7.5 kWh for V3.
    by_car = {b.car: s.loop.units.kwh(b.energy) for b in s.bills}
    assert by_car == {"V1": Fraction(5, 2), "V2": 10, "V3": 10}
    assert sim.model(1).meter_wh == 12_500  # 2.5 kWh for V1 + 10 kWh for V3, all billed


@pytest.mark.asyncio
async def test_a_cancel_bills_every_wh_up_to_the_stop(rig: Rig) -> None:
    s, sim = await modbus_station(rig)
    s.request("V1", 10)
    await s.loop.tick()
    await s.run(300, every_s=5)  # 2.5 kWh at the last poll
    rig.clock.advance(3)  # 3 s more at 30 kW before the user cancels: 25 Wh
    bill = await s.loop.cancel("V1")
    assert bill is not None
    # 2500 Wh + 30,000 W * 3 s / 3600 = 2525 Wh: what the pile had delivered when it stopped,
    # not only what the last poll saw.
    assert s.loop.units.wh_floor(bill.energy) == 2525 == sim.model(1).meter_wh
    assert sim.model(1).power_w == 0 and s.st.requests == {}


@pytest.mark.asyncio
async def test_a_session_started_between_ticks_is_commanded_at_once() -> None:
    clock = FakeClock()
    clock.advance(SIX)
    pile_p1 = SimPile("P1", 30_000, clock)
    s = Station({1: PileDevices(pile_p1)}, clock, 30)
    stop = asyncio.Event()
    runner = asyncio.create_task(s.loop.run(stop, poll_s=3600))  # the next poll: an hour away
    try:
        async with asyncio.timeout(5):
            while not s.loop.runtimes[1].answered:  # the first tick has read the pile
                await asyncio.sleep(0.01)
        s.request("V1", 10)  # from a WebSocket, between ticks
        async with asyncio.timeout(1):  # not an hour later
            while s.loop.runtimes[1].commanded is None:
                await asyncio.sleep(0.01)
        assert pile_p1.model.enabled
    finally:
        stop.set()
        await runner
