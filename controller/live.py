"""The live control loop: the station's rules in real time over the drivers' pile contracts.

Each tick reads every pile afresh, feeds what it read to the rules (meter energy, completions,
faults and recoveries the pile reports, links that stopped answering), and then commands only
what must change: enable a pile whose session the rules started, stop one the rules ended, and
feed the watchdogs. Energy comes from the meter counter in whole Wh (RULES §6); a failed read
never counts as "0 W" or "free".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from controller.billing import Bill
from controller.cadence import Cadence
from controller.config import Config
from controller.events import ChargingStarted, Event
from controller.runtime import PileDevices, PileRuntime, SilentSession
from controller.snapshot import restore, snapshot
from controller.station import Station
from controller.stream import EventStream
from controller.units import Units
from controller.values import CarId, PileState
from drivers.contracts import DeviceState, DeviceStatus
from drivers.errors import (
    BadReading,
    DeviceRefused,
    DriverError,
    NotSupported,
    RetryableError,
)

log = logging.getLogger(__name__)

DEFAULT_MISS_LIMIT = 3  # failed reads in a row before a pile counts as faulted (RULES §4)

__all__ = ["ControlLoop", "PileDevices", "PileRuntime"]


class ControlLoop:
    """Runs the rules (controller.station) against real or simulated piles, one runtime each."""

    def __init__(
        self,
        config: Config,
        devices: Mapping[int, PileDevices],
        clock: Callable[[], float],
        *,
        miss_limit: int = DEFAULT_MISS_LIMIT,
    ) -> None:
        self.units = Units.for_powers([p.power_w for p in config.piles])
        self.runtimes = {
            p.id: PileRuntime(p.id, devices[p.id], self.units, p.watchdog_s) for p in config.piles
        }
        # The rules' events, in order, for the door and its subscribers.
        self.events = EventStream()
        self.station = Station(config, self.runtimes, self.units, self._published)
        # Set when a session starts between ticks (a request, a cancel): the loop ticks at once
        # to command its pile, instead of at its next poll.
        self._wake = asyncio.Event()
        self._in_tick = False
        # Set while no tick runs: background work that may wait (the uplink) waits for it, so
        # that it never stretches a tick by running between the tick's reads.
        self.between_ticks = asyncio.Event()
        self.between_ticks.set()
        self.clock = clock
        self.miss_limit = miss_limit
        self._busy = asyncio.Lock()  # a tick, or a cancel that reads a meter: one at a time
        self.plug_timeout = config.station.plug_timeout_s * self.units.ticks_per_s
        # The loop's own health, for whoever watches it (the server's metrics): each tick's
        # duration in real seconds and whether it ran to its end, told to every watcher; and
        # the full ticks missed (periods that passed without one starting: a tick started
        # late or ran over its period, or failed).
        self.tick_watchers: list[Callable[[float, bool], None]] = []
        self.ticks_missed = 0

    def _published(self, event: Event) -> None:
        if isinstance(event, ChargingStarted) and not self._in_tick:
            self._wake.set()
        self.events.publish(event)

    def now_tick(self) -> int:
        return round(self.clock() * self.units.ticks_per_s)

    def runtime(self, pile_id: int) -> PileRuntime | None:
        return self.runtimes.get(pile_id)

    @property
    def all_answered(self) -> bool:
        """Every configured pile has been read well at least once (systemd readiness)."""
        return all(rt.answered for rt in self.runtimes.values())

    def silent(self) -> list[str]:
        """The piles not read well even once since the start."""
        return [rt.name for rt in self.runtimes.values() if not rt.answered]

    @property
    def misses(self) -> dict[int, int]:
        """Each pile's failed reads in a row."""
        return {pile_id: rt.misses for pile_id, rt in self.runtimes.items()}

    # -- restart -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The rules' state and each pile's session baseline, as JSON values."""
        return {
            "station": snapshot(self.station),
            "ports": {str(pile_id): rt.saved() for pile_id, rt in self.runtimes.items()},
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Carry on from a snapshot: every request in its place, every open session counted
        from its original meter baseline, so energy delivered while the station was down is
        billed in that session. Piles are commanded afresh on the next tick."""
        restore(self.station, data["station"])
        for pile_id, rt in self.runtimes.items():
            saved = data["ports"].get(str(pile_id))
            if saved is not None:
                rt.restore(saved)
        # Cars a safe stop left at their piles without a session start again.
        self.station.resume(self.now_tick())

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """The safe stop: every session ends with a bill, every car keeps its place for what it
        still wants, and every pile is told to stop (a reference pile would also stop by its
        watchdog; an EVSE-WB-DIN has only this). Piles that cannot be reached in time are
        logged; their energy since the last reading is billed when the station comes back."""
        self.station.suspend(self.now_tick())
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(self._command(rt) for rt in self.runtimes.values()))
        except TimeoutError:
            log.error("safe stop: some piles did not confirm the stop within %g s", timeout_s)

    async def run(
        self,
        stop: asyncio.Event,
        poll_s: float = 1.0,
        scale: float = 1.0,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        """Tick on the loop's cadence (controller.cadence) until `stop` is set; `on_tick` is
        called after every tick that ran to its end (the systemd watchdog)."""
        await Cadence(self, poll_s, scale).run(stop, on_tick)

    def watched(self, duration_s: float, ok: bool) -> None:
        """Tell the tick watchers how a tick went."""
        for watcher in list(self.tick_watchers):
            try:
                watcher(duration_s, ok)
            except Exception:  # a broken watcher must not stop the loop
                log.exception("control loop: a tick watcher failed")

    async def sleep(self, stop: asyncio.Event, real_s: float) -> bool:
        """Wait real_s, or less if the loop is stopped or woken; whether it was woken."""
        if not self._wake.is_set():
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            _, pending = await asyncio.wait(
                waits, timeout=real_s, return_when=asyncio.FIRST_COMPLETED
            )
            for waiting in pending:
                waiting.cancel()
        woken = self._wake.is_set()
        self._wake.clear()
        return woken

    async def tick(self, only: list[int] | None = None) -> None:
        """Read the piles (all, or `only` those), then command them."""
        # All piles at once: TCP piles are independent, and piles sharing a serial bus take
        # turns on its link's lock, so one slow or dead device never holds up the others.
        runtimes = self.runtimes
        if only is None:
            chosen = [runtimes[pile.id] for pile in self.station.piles]
        else:  # and the piles whose new sessions wait for their first command
            chosen = [
                rt
                for rt in (runtimes[pile.id] for pile in self.station.piles)
                if rt.pile_id in only or rt.unstarted()
            ]
        async with self._busy:
            self._in_tick = True
            self.between_ticks.clear()
            try:
                await asyncio.gather(*(self._poll(rt) for rt in chosen))
                await asyncio.gather(*(self._command(rt) for rt in chosen))
            finally:
                self._in_tick = False
                self.between_ticks.set()

    async def cancel(self, car: CarId) -> Bill | None:
        """Cancel a car's request (RULES §3). A charging car's pile is stopped and its meter
        read first, so the bill has every Wh up to the stop, not only up to the last poll.
        Between ticks: no poll reads a meter meanwhile. Refused if the car is not in the
        station (any more)."""
        async with self._busy:
            req = self.station.requests.get(car)
            pile = None if req is None else req.pile
            if pile is not None and pile.charging() is req:
                rt = self.runtimes[pile.id]
                if not rt.misses:
                    await rt.stop_and_read()
                    rt.commanded = None
            return self.station.cancel(self.now_tick(), car)

    # -- reading -------------------------------------------------------------------------------
    async def _poll(self, rt: PileRuntime) -> None:
        asked = self.now_tick()
        try:
            status = await rt.device.read_status()
            meter_wh = status.meter_wh if rt.meter is None else await rt.meter.read_energy_wh()
        except BadReading as bad:
            # Never billed; the last good count stays the baseline. The pile itself answered,
            # so this is no miss.
            log.warning("pile %s: bad meter reading (%s): %s", rt.name, bad.kind, bad)
            rt.misses = 0
            if bad.kind == "reset" and bad.value_wh is not None:
                rt.bridge(round(bad.value_wh))
            return
        except (RetryableError, DeviceRefused) as exc:
            # A Modbus exception reply is no reading either: past the limit, a fault.
            self._missed(rt, exc)
            return
        rt.misses = 0
        rt.status = status
        rt.answered = True
        now = self.now_tick()
        st = self.station
        pile = st.pile_by_id[rt.pile_id]
        rt.watch_meter(status, meter_wh, now)
        if meter_wh is not None:
            if rt.meter_wh is not None and meter_wh < rt.meter_wh:
                # Lower than before the station's restart (its meter check starts afresh):
                # the pile's counter restarted meanwhile.
                rt.bridge(meter_wh)
            rt.meter_wh = meter_wh
            if rt.amount_wh is not None and rt.baseline_wh is None:
                rt.baseline_wh = meter_wh  # the session began before the first good reading
        if status.state is DeviceState.FAULT:
            if pile.working:
                log.error("pile %s: reports fault code %s", pile.name, status.fault_code)
                rt.faulted = True
                rt.commanded = None
                st.fault(now, rt.pile_id)
            return
        if rt.faulted and pile.state is PileState.FAULT:
            log.info("pile %s: works again", pile.name)
            await self._bill_silent_energy(rt, status)
            rt.faulted = False
            st.recover(now, rt.pile_id)
            return
        await self._follow_session(rt, status, now, asked)

    async def _follow_session(
        self, rt: PileRuntime, status: DeviceStatus, now: int, asked: int
    ) -> None:
        """Feed the running session's reading to the rules, and end it when it is done."""
        st = self.station
        pile = st.pile_by_id[rt.pile_id]
        req = pile.charging()
        if req is None:
            return
        if self._vehicle_absent(rt, status, now):
            return
        energy = rt.session_energy(now)
        st.reading(now, rt.pile_id, energy)
        # The pile counted this energy before its answer came: the session's end is that much
        # sooner than the rules' estimate from now (the loop wakes for it).
        pile.end_estimate -= now - asked
        done = energy >= req.wanted or (
            status.state is DeviceState.FINISHED
            and rt.commanded is not None
            and not rt.meter_behind(now)
        )
        if done:
            if not rt.device.has_energy_limit and status.state is DeviceState.CHARGING:
                await rt.stop_and_read()
                energy = rt.session_energy(now)
                st.reading(now, rt.pile_id, energy)
            rt.commanded = None
            st.complete(now, [rt.pile_id])
            # The next car's session starts now, not after every other pile's poll.
            await self._command(rt)

    async def _bill_silent_energy(self, rt: PileRuntime, status: DeviceStatus) -> None:
        """A pile faulted for silence answers again: if it went on charging meanwhile (until its
        watchdog stopped it, or still), stop it, and bill what its meter counted after the
        interrupted session's bill to that session's car (RULES §4: the energy received)."""
        silent, rt.silent_session = rt.silent_session, None
        if silent is None:
            return
        if status.setpoint_w or status.state is DeviceState.CHARGING:
            await rt.stop_and_read()
        if rt.meter_wh is None or rt.meter_wh <= silent.meter_wh:
            return
        late_wh = rt.meter_wh - silent.meter_wh
        log.warning(
            "pile %s: delivered %d Wh to %s while it did not answer; billed",
            rt.name,
            late_wh,
            silent.queue_no,
        )
        self.station.late_energy(
            self.now_tick(),
            rt.pile_id,
            silent.car,
            silent.queue_no,
            late_wh * self.units.energy_per_wh,
            silent.at_tick,
        )

    def _vehicle_absent(self, rt: PileRuntime, status: DeviceStatus, now: int) -> bool:
        """No vehicle at a pile whose car is called (RULES §3): a car that never plugged in
        loses its turn after plug_timeout; a car that leaves mid-session ends its request with
        a bill for what it received. Whether the car's request ended here."""
        if status.state is not DeviceState.NO_VEHICLE or rt.commanded is None:
            rt.unplugged_since = None
            return False
        req = self.station.pile_by_id[rt.pile_id].charging()
        assert req is not None
        if rt.session_wh() > 0:
            log.info("pile %s: car %s left during its session", rt.name, req.queue_no)
            rt.commanded = None
            self.station.cancel(now, req.car)
            return True
        if rt.unplugged_since is None:
            rt.unplugged_since = now
            return False
        if not self.plug_timeout or now - rt.unplugged_since < self.plug_timeout:
            return False
        log.info("pile %s: car %s did not plug in: it loses its turn", rt.name, req.queue_no)
        rt.unplugged_since = None
        rt.commanded = None
        self.station.no_show(now, rt.pile_id)
        return True

    def _missed(self, rt: PileRuntime, exc: DriverError) -> None:
        rt.misses += 1
        pile = self.station.pile_by_id[rt.pile_id]
        log.warning("pile %s: no reading (%d in a row): %s", pile.name, rt.misses, exc)
        if rt.misses >= self.miss_limit and pile.working:
            # A lost link past its limit is a fault (RULES §4): billed up to the last good reading.
            rt.faulted = True
            req = pile.charging()
            if req is not None and rt.meter_wh is not None:
                at_tick = pile.meter.last_tick if pile.meter is not None else self.now_tick()
                rt.silent_session = SilentSession(req.car, req.queue_no, rt.meter_wh, at_tick)
            rt.commanded = None
            self.station.fault(self.now_tick(), rt.pile_id)

    # -- commanding ----------------------------------------------------------------------------
    async def _command(self, rt: PileRuntime) -> None:
        status = rt.status
        if status is None or rt.misses:
            return  # nothing is commanded blind
        want = rt.want()
        # A pile that dropped what it was told is told again (PileRuntime.dropped).
        dropped = rt.dropped()
        device = rt.device
        try:
            if want is not None and (rt.commanded != want or dropped):
                if rt.baseline_wh is None:
                    return  # start only once the meter count the session starts from is known
                if dropped:
                    log.warning("pile %s: not enabled any more; enabling again", rt.name)
                    rt.watchdog_written = False  # it may have rebooted
                elif status.setpoint_w and device.has_energy_limit:
                    # Still running another session (the previous car's, cancelled; or one from
                    # before a restart or an outage): a new limit would apply to that running
                    # session and cut it short. End it, and start afresh after the stop.
                    await rt.stop_and_read()
                # The limit is what is still to come: after a restart the pile may have
                # delivered part of the session already.
                left_wh = max(1, want.amount_wh - rt.session_wh())
                limit = left_wh if device.has_energy_limit else None
                if device.has_watchdog and not rt.watchdog_written:
                    await device.set_watchdog(rt.watchdog_s)
                    rt.watchdog_written = True
                await device.enable(want.setpoint_w, limit)
                rt.commanded = want
                return  # a new session gets a whole watchdog period: no heartbeat needed now
            elif want is None and (
                rt.commanded is not None or status.state is DeviceState.CHARGING
            ):
                await device.stop()
                rt.commanded = None
            if device.has_watchdog:
                await device.heartbeat()
        except NotSupported as exc:
            log.error("pile %s: %s", rt.name, exc)
        except DriverError as exc:  # not now: the next tick tries again
            log.warning("pile %s: command not carried out: %s", rt.name, exc)
