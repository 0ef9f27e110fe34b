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
from typing import Any, NamedTuple

from controller.billing import Bill
from controller.config import Config
from controller.events import ChargingStarted, Event
from controller.snapshot import restore, snapshot
from controller.station import Station
from controller.units import Units
from controller.values import PileState as RulesState
from drivers.contracts import Meter, Pile, PileState, PileStatus
from drivers.energy_guard import RESET_NEAR_ZERO_WH
from drivers.errors import (
    BadReading,
    DeviceRefused,
    DriverError,
    NotSupported,
    RetryableError,
)

log = logging.getLogger(__name__)

DEFAULT_MISS_LIMIT = 3  # failed reads in a row before a pile counts as faulted (RULES §4)
# A meter that stands still while its pile delivers this much is frozen, not rounding.
FROZEN_METER_WH = 20
# How long (station seconds) a session that the pile ended waits for a frozen meter to move.
METER_CATCH_UP_S = 600


class PileLink(NamedTuple):
    """How the loop reaches one configured pile: its driver, and its meter if separate."""

    pile: Pile
    meter: Meter | None = None  # None: the pile's own meter, read with its status


class LivePort:
    """The rules' PilePort for a live pile: sessions are wishes the loop carries out, and the
    energy of a session is the meter's count since the session began."""

    def __init__(self, units: Units) -> None:
        self.units = units
        self.meter_wh: int | None = None  # the last good reading
        self.baseline_wh: int | None = None  # the meter when the running session began
        self.amount_wh: int | None = None  # what the running session is to deliver
        self.session_no = 0  # counts sessions: two cars asking the same amount are two sessions

    def session_wh(self) -> int:
        if self.amount_wh is None or self.baseline_wh is None or self.meter_wh is None:
            return 0
        return max(0, self.meter_wh - self.baseline_wh)

    def start_session(self, now_tick: int, limit: int) -> None:
        self.amount_wh = -(-limit // self.units.energy_per_wh)
        self.baseline_wh = self.meter_wh
        self.session_no += 1

    def stop_session(self, now_tick: int) -> int:
        energy = self.session_wh() * self.units.energy_per_wh
        self.amount_wh = None
        self.baseline_wh = None
        return energy

    def session_energy(self, now_tick: int) -> int:
        return self.session_wh() * self.units.energy_per_wh


class ControlLoop:
    """Runs the rules (controller.station) against real or simulated piles."""

    def __init__(
        self,
        config: Config,
        links: Mapping[int, PileLink],
        clock: Callable[[], float],
        publish: Callable[[Event], None] | None = None,
        *,
        miss_limit: int = DEFAULT_MISS_LIMIT,
    ) -> None:
        self.units = Units.for_powers([p.power_w for p in config.piles])
        self.links = dict(links)
        self.ports = {p.id: LivePort(self.units) for p in config.piles}
        # Where the rules' events go: the station's door (controller.door) sets it.
        self.outward = publish
        self.station = Station(config, self.ports, self.units, self._published)
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
        self.misses = dict.fromkeys(self.links, 0)
        self.status: dict[int, PileStatus | None] = dict.fromkeys(self.links)
        # (setpoint W, amount Wh, session number) each pile was last told to deliver.
        self.commanded: dict[int, tuple[int, int, int] | None] = dict.fromkeys(self.links)
        self.watchdog_written: set[int] = set()  # piles whose watchdog_s this run has set
        self.pile_faulted: set[int] = set()  # faulted by the loop (not by the operator)
        self._busy = asyncio.Lock()  # a tick, or a cancel that reads a meter: one at a time
        self.answered: set[int] = set()  # piles read well at least once since the start
        # A pile faulted for silence mid-session: (car, queue number, meter, tick) of its
        # last good reading, to bill what it delivered after it when it answers again.
        self.silent_session: dict[int, tuple[str, str, int, int]] = {}
        self.plug_timeout = config.station.plug_timeout_s * self.units.ticks_per_s
        self.unplugged_since: dict[int, int | None] = dict.fromkeys(self.links)
        # (tick, power) when a pile's meter stopped moving while the pile delivered power.
        self.still_since: dict[int, tuple[int, int] | None] = dict.fromkeys(self.links)
        self.watchdog_s = {p.id: p.watchdog_s for p in config.piles}
        # The loop's own health, for whoever watches it (the server's metrics): each tick's
        # duration in real seconds and whether it ran to its end, told to every watcher; and
        # the full ticks missed (periods that passed without one starting: a tick started
        # late or ran over its period, or failed).
        self.tick_watchers: list[Callable[[float, bool], None]] = []
        self.ticks_missed = 0

    def _published(self, event: Event) -> None:
        if isinstance(event, ChargingStarted) and not self._in_tick:
            self._wake.set()
        if self.outward is not None:
            self.outward(event)

    def now_tick(self) -> int:
        return round(self.clock() * self.units.ticks_per_s)

    @property
    def all_answered(self) -> bool:
        """Every configured pile has been read well at least once (systemd readiness)."""
        return len(self.answered) == len(self.links)

    # -- restart -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The rules' state and each pile's session baseline, as JSON values."""
        return {
            "station": snapshot(self.station),
            "ports": {
                str(pile_id): [port.meter_wh, port.baseline_wh, port.amount_wh]
                for pile_id, port in self.ports.items()
            },
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Carry on from a snapshot: every request in its place, every open session counted
        from its original meter baseline, so energy delivered while the station was down is
        billed in that session. Piles are commanded afresh on the next tick."""
        restore(self.station, data["station"])
        for pile_id, port in self.ports.items():
            saved = data["ports"].get(str(pile_id))
            if saved is not None:
                port.meter_wh, port.baseline_wh, port.amount_wh = saved
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
                await asyncio.gather(*(self._command(pile.id) for pile in self.station.piles))
        except TimeoutError:
            log.error("safe stop: some piles did not confirm the stop within %g s", timeout_s)

    async def run(
        self,
        stop: asyncio.Event,
        poll_s: float = 1.0,
        scale: float = 1.0,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        """Tick every poll_s of station time, and sooner when a session should reach its amount
        (so a completion is seen promptly even at bench speed-ups), until `stop` is set. Such
        an early tick reads only the piles whose sessions are due: the next car's start waits
        for one pile's answer, not for every pile's. `on_tick` is called after every tick that
        ran to its end (the systemd watchdog)."""
        clock = asyncio.get_running_loop().time
        full_due = 0.0  # when every pile is read next (event loop time)
        only: list[int] | None = None
        period_s = poll_s / scale
        while not stop.is_set():
            started = clock()
            full = only is None or started >= full_due
            if full and full_due and started - full_due >= period_s:
                self.ticks_missed += int((started - full_due) // period_s)
            ok = False
            try:
                await self.tick(None if full else only)
            except Exception:  # task boundary: a failed tick is logged; the next one runs
                log.exception("control loop: tick failed")
                self.ticks_missed += 1
            else:
                ok = True
                if on_tick is not None:
                    on_tick()
            took_s = clock() - started
            if full and took_s >= period_s:  # it ran over: the periods it took had no tick
                self.ticks_missed += int(took_s // period_s)
            self._watched(took_s, ok)
            if full:
                full_due = clock() + poll_s / scale
            wait_s, only = self._next_wake(max(0.0, full_due - clock()) * scale)
            if await self._sleep(stop, wait_s / scale) and only is None:
                only = []  # woken for a new session: its pile is read and commanded

    def _watched(self, duration_s: float, ok: bool) -> None:
        for watcher in list(self.tick_watchers):
            try:
                watcher(duration_s, ok)
            except Exception:  # a broken watcher must not stop the loop
                log.exception("control loop: a tick watcher failed")

    async def _sleep(self, stop: asyncio.Event, real_s: float) -> bool:
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

    def _next_wake(self, until_full_s: float) -> tuple[float, list[int] | None]:
        """Station seconds to the next tick, and the piles it reads (None: all of them)."""
        now = self.now_tick()
        due: list[tuple[float, int]] = []
        for pile in self.station.piles:
            if pile.meter is not None:
                until_s = (pile.end_estimate - now) / self.units.ticks_per_s
                if 0 < until_s < until_full_s:
                    due.append((until_s, pile.id))
        if not due:
            return until_full_s, None
        first_s = min(until_s for until_s, _ in due)
        # Sessions due within a millisecond of the first are read by the same tick.
        return first_s, [pile_id for until_s, pile_id in due if until_s <= first_s + 0.001]

    async def tick(self, only: list[int] | None = None) -> None:
        """Read the piles (all, or `only` those), then command them."""
        # All piles at once: TCP piles are independent, and piles sharing a serial bus take
        # turns on its link's lock, so one slow or dead device never holds up the others.
        if only is None:
            pile_ids = [pile.id for pile in self.station.piles]
        else:  # and the piles whose new sessions wait for their first command
            pile_ids = [p.id for p in self.station.piles if p.id in only or self._unstarted(p.id)]
        async with self._busy:
            self._in_tick = True
            self.between_ticks.clear()
            try:
                await asyncio.gather(*(self._poll(pile_id) for pile_id in pile_ids))
                await asyncio.gather(*(self._command(pile_id) for pile_id in pile_ids))
            finally:
                self._in_tick = False
                self.between_ticks.set()

    def _want(self, pile_id: int) -> tuple[int, int, int] | None:
        """What the rules want of the pile: its rated power, for the session's amount."""
        port = self.ports[pile_id]
        if port.amount_wh is None:
            return None
        return (self.links[pile_id].pile.rated_power_w, port.amount_wh, port.session_no)

    def _unstarted(self, pile_id: int) -> bool:
        want = self._want(pile_id)
        return want is not None and self.commanded[pile_id] != want

    async def cancel(self, car: str) -> Bill | None:
        """Cancel a car's request (RULES §3). A charging car's pile is stopped and its meter
        read first, so the bill has every Wh up to the stop, not only up to the last poll.
        Between ticks: no poll reads a meter meanwhile. Refused if the car is not in the
        station (any more)."""
        async with self._busy:
            req = self.station.requests.get(car)
            pile = None if req is None else req.pile
            if pile is not None and pile.charging() is req and not self.misses[pile.id]:
                await self._stop_and_read(pile.id)
                self.commanded[pile.id] = None
            return self.station.cancel(self.now_tick(), car)

    # -- reading -------------------------------------------------------------------------------
    async def _poll(self, pile_id: int) -> None:
        link = self.links[pile_id]
        port = self.ports[pile_id]
        asked = self.now_tick()
        try:
            status = await link.pile.read_status()
            meter_wh = status.meter_wh if link.meter is None else await link.meter.read_energy_wh()
        except BadReading as bad:
            # Never billed; the last good count stays the baseline. The pile itself answered,
            # so this is no miss.
            log.warning("pile %s: bad meter reading (%s): %s", link.pile.name, bad.kind, bad)
            self.misses[pile_id] = 0
            if bad.kind == "reset" and bad.value_wh is not None:
                self._bridge(pile_id, round(bad.value_wh))
            return
        except (RetryableError, DeviceRefused) as exc:
            # A Modbus exception reply is no reading either: past the limit, a fault.
            self._missed(pile_id, exc)
            return
        self.misses[pile_id] = 0
        self.status[pile_id] = status
        self.answered.add(pile_id)
        now = self.now_tick()
        st = self.station
        pile = st.pile_by_id[pile_id]
        self._watch_meter(pile_id, status, meter_wh, now)
        if meter_wh is not None:
            if port.meter_wh is not None and meter_wh < port.meter_wh:
                # Lower than before the station's restart (its meter check starts afresh):
                # the pile's counter restarted meanwhile.
                self._bridge(pile_id, meter_wh)
            port.meter_wh = meter_wh
            if port.amount_wh is not None and port.baseline_wh is None:
                port.baseline_wh = meter_wh  # the session began before the first good reading
        if status.state is PileState.FAULT:
            if pile.working:
                log.error("pile %s: reports fault code %s", pile.name, status.fault_code)
                self.pile_faulted.add(pile_id)
                self.commanded[pile_id] = None
                st.fault(now, pile_id)
            return
        if pile_id in self.pile_faulted and pile.state is RulesState.FAULT:
            log.info("pile %s: works again", pile.name)
            await self._bill_silent_energy(pile_id, status)
            self.pile_faulted.discard(pile_id)
            st.recover(now, pile_id)
            return
        await self._follow_session(pile_id, status, now, asked)

    async def _follow_session(self, pile_id: int, status: PileStatus, now: int, asked: int) -> None:
        """Feed the running session's reading to the rules, and end it when it is done."""
        link, port = self.links[pile_id], self.ports[pile_id]
        st = self.station
        pile = st.pile_by_id[pile_id]
        req = pile.charging()
        if req is None:
            return
        if self._vehicle_absent(pile_id, status, now):
            return
        energy = port.session_energy(now)
        st.reading(now, pile_id, energy)
        # The pile counted this energy before its answer came: the session's end is that much
        # sooner than the rules' estimate from now (the loop wakes for it).
        pile.end_estimate -= now - asked
        done = energy >= req.wanted or (
            status.state is PileState.FINISHED
            and self.commanded[pile_id] is not None
            and not self._meter_behind(pile_id, now)
        )
        if done:
            if not link.pile.has_energy_limit and status.state is PileState.CHARGING:
                await self._stop_and_read(pile_id)
                energy = port.session_energy(now)
                st.reading(now, pile_id, energy)
            self.commanded[pile_id] = None
            st.complete(now, [pile_id])
            # The next car's session starts now, not after every other pile's poll.
            await self._command(pile_id)

    def _watch_meter(
        self, pile_id: int, status: PileStatus, meter_wh: int | None, now: int
    ) -> None:
        """Notice a meter that stands still while its pile says it delivers power (a frozen
        meter): energy the pile could not have hidden in its counter's rounding."""
        if meter_wh is None or meter_wh != self.ports[pile_id].meter_wh:
            self.still_since[pile_id] = None
            return
        if status.power_w > 0 and self.still_since[pile_id] is None:
            self.still_since[pile_id] = (now, status.power_w)

    def _meter_behind(self, pile_id: int, now: int) -> bool:
        """The pile stopped itself at its limit while its meter stood still although it
        delivered: the meter is behind, and the bill waits for it to catch up (within
        METER_CATCH_UP_S; after that the session ends on the meter's count, logged)."""
        still = self.still_since[pile_id]
        if still is None:
            return False
        since, power_w = still
        hidden_wh = power_w * (now - since) / self.units.ticks_per_s / 3600
        if hidden_wh <= FROZEN_METER_WH:
            return False
        if now - since > METER_CATCH_UP_S * self.units.ticks_per_s:
            log.error(
                "pile %s: finished, but its meter stood still for %d s of charging; billed on it",
                self.links[pile_id].pile.name,
                (now - since) // self.units.ticks_per_s,
            )
            return False
        return True

    async def _stop_and_read(self, pile_id: int) -> None:
        """Stop the pile, then read its meter once more: what it delivered until the stop
        reached it is its car's too."""
        link, port = self.links[pile_id], self.ports[pile_id]
        try:
            await link.pile.stop()
            if link.meter is not None:
                port.meter_wh = await link.meter.read_energy_wh()
            else:
                port.meter_wh = (await link.pile.read_status()).meter_wh
        except DriverError as exc:  # billed up to the reading before the stop
            log.warning("pile %s: no reading after the stop: %s", link.pile.name, exc)

    async def _bill_silent_energy(self, pile_id: int, status: PileStatus) -> None:
        """A pile faulted for silence answers again: if it went on charging meanwhile (until its
        watchdog stopped it, or still), stop it, and bill what its meter counted after the
        interrupted session's bill to that session's car (RULES §4: the energy received)."""
        silent = self.silent_session.pop(pile_id, None)
        if silent is None:
            return
        car, queue_no, from_wh, at_tick = silent
        link, port = self.links[pile_id], self.ports[pile_id]
        if status.setpoint_w or status.state is PileState.CHARGING:
            await self._stop_and_read(pile_id)
        if port.meter_wh is None or port.meter_wh <= from_wh:
            return
        late_wh = port.meter_wh - from_wh
        log.warning(
            "pile %s: delivered %d Wh to %s while it did not answer; billed",
            link.pile.name,
            late_wh,
            queue_no,
        )
        self.station.late_energy(
            self.now_tick(), pile_id, car, queue_no, late_wh * self.units.energy_per_wh, at_tick
        )

    def _bridge(self, pile_id: int, meter_wh: int) -> None:
        """The pile's counter restarted (a reboot) and now shows meter_wh: the session counts
        what it had before the restart plus what the counter shows since, if it starts again
        from zero (a counter that restarted elsewhere counts from now). The energy between the
        last good reading and the restart itself is unknown, and not billed."""
        port = self.ports[pile_id]
        name = self.links[pile_id].pile.name
        if port.meter_wh is None:
            return
        log.warning(
            "pile %s: meter restarted (%d Wh → %d Wh); bridged", name, port.meter_wh, meter_wh
        )
        since_restart_wh = meter_wh if meter_wh <= RESET_NEAR_ZERO_WH else 0
        if port.baseline_wh is not None:
            port.baseline_wh += meter_wh - since_restart_wh - port.meter_wh
        port.meter_wh = meter_wh

    def _vehicle_absent(self, pile_id: int, status: PileStatus, now: int) -> bool:
        """No vehicle at a pile whose car is called (RULES §3): a car that never plugged in
        loses its turn after plug_timeout; a car that leaves mid-session ends its request with
        a bill for what it received. Whether the car's request ended here."""
        if status.state is not PileState.NO_VEHICLE or self.commanded[pile_id] is None:
            self.unplugged_since[pile_id] = None
            return False
        pile = self.station.pile_by_id[pile_id]
        req = pile.charging()
        assert req is not None
        name = self.links[pile_id].pile.name
        if self.ports[pile_id].session_wh() > 0:
            log.info("pile %s: car %s left during its session", name, req.queue_no)
            self.commanded[pile_id] = None
            self.station.cancel(now, req.car)
            return True
        since = self.unplugged_since[pile_id]
        if since is None:
            self.unplugged_since[pile_id] = now
            return False
        if not self.plug_timeout or now - since < self.plug_timeout:
            return False
        log.info("pile %s: car %s did not plug in: it loses its turn", name, req.queue_no)
        self.unplugged_since[pile_id] = None
        self.commanded[pile_id] = None
        self.station.no_show(now, pile_id)
        return True

    def _missed(self, pile_id: int, exc: DriverError) -> None:
        self.misses[pile_id] += 1
        pile = self.station.pile_by_id[pile_id]
        log.warning("pile %s: no reading (%d in a row): %s", pile.name, self.misses[pile_id], exc)
        if self.misses[pile_id] >= self.miss_limit and pile.working:
            # A lost link past its limit is a fault (RULES §4): billed up to the last good reading.
            self.pile_faulted.add(pile_id)
            req = pile.charging()
            meter_wh = self.ports[pile_id].meter_wh
            if req is not None and meter_wh is not None:
                at_tick = pile.meter.last_tick if pile.meter is not None else self.now_tick()
                self.silent_session[pile_id] = (req.car, req.queue_no, meter_wh, at_tick)
            self.commanded[pile_id] = None
            self.station.fault(self.now_tick(), pile_id)

    # -- commanding ----------------------------------------------------------------------------
    async def _command(self, pile_id: int) -> None:
        link = self.links[pile_id]
        port = self.ports[pile_id]
        status = self.status[pile_id]
        if status is None or self.misses[pile_id]:
            return  # nothing is commanded blind
        want = self._want(pile_id)
        # A pile that dropped what it was told (its watchdog fired while the station hung, or
        # it rebooted) is told again. Only an idle pile counts: one read as charging may have
        # just reached its limit between the reads of one poll, and one that finished or
        # failed is the rules' business.
        dropped = (
            self.commanded[pile_id] is not None
            and status.setpoint_w == 0
            and status.state in (PileState.CONNECTED, PileState.NO_VEHICLE)
        )
        try:
            if want is not None and (self.commanded[pile_id] != want or dropped):
                if port.baseline_wh is None:
                    return  # start only once the meter count the session starts from is known
                if dropped:
                    log.warning("pile %s: not enabled any more; enabling again", link.pile.name)
                    self.watchdog_written.discard(pile_id)  # it may have rebooted
                elif status.setpoint_w and link.pile.has_energy_limit:
                    # Still running another session (the previous car's, cancelled; or one from
                    # before a restart or an outage): a new limit would apply to that running
                    # session and cut it short. End it, and start afresh after the stop.
                    await self._stop_and_read(pile_id)
                # The limit is what is still to come: after a restart the pile may have
                # delivered part of the session already.
                left_wh = max(1, want[1] - port.session_wh())
                limit = left_wh if link.pile.has_energy_limit else None
                if link.pile.has_watchdog and pile_id not in self.watchdog_written:
                    await link.pile.set_watchdog(self.watchdog_s[pile_id])
                    self.watchdog_written.add(pile_id)
                await link.pile.enable(want[0], limit)
                self.commanded[pile_id] = want
                return  # a new session gets a whole watchdog period: no heartbeat needed now
            elif want is None and (
                self.commanded[pile_id] is not None or status.state is PileState.CHARGING
            ):
                await link.pile.stop()
                self.commanded[pile_id] = None
            if link.pile.has_watchdog:
                await link.pile.heartbeat()
        except NotSupported as exc:
            log.error("pile %s: %s", link.pile.name, exc)
        except DriverError as exc:  # not now: the next tick tries again
            log.warning("pile %s: command not carried out: %s", link.pile.name, exc)
