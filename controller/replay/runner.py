"""Running a scenario: the station's rules, simulated piles and a virtual clock (REPLAY.md).

The clock jumps from event to event and to each predicted completion in between; nothing sleeps.
At one instant: completions first (piles in configuration order), then the pile and site events,
then the user events, each in file order, with dispatch after every single one (RULES §5).
Under a site limit (RULES §9) the piles draw the rules' shares, after every event the rules
share the power anew, and the meters are read at every tariff boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from heapq import heappop, heappush
from itertools import groupby
from typing import NamedTuple

from controller.billing import Bill
from controller.config import Config
from controller.events import ChargingStarted, Event, SessionEnded
from controller.replay.scenario import Kind, ScenarioEvent
from controller.sharing import Power
from controller.station import PilePort, Refused, Request, Station
from controller.tariff import TariffClock
from controller.units import Units
from controller.values import Mode
from firmware_sim.pile_model import PileModel

MODE_OF_LETTER = {"F": Mode.FAST, "T": Mode.COMMON}


class ModelPort:
    """The PilePort contract over the simulator's pile model, stepped by the virtual clock."""

    def __init__(self, model: PileModel) -> None:
        self.model = model

    def start_session(self, now_tick: int, limit: int) -> None:
        self.model.start_session(now_tick, limit)

    def stop_session(self, now_tick: int) -> int:
        return self.model.stop_session(now_tick)

    def session_energy(self, now_tick: int) -> int:
        self.model.advance(now_tick)
        return self.model.session_energy


class CarView(NamedTuple):
    """A car in a pile queue at a snapshot. Its fee is worked out only if it is shown
    (ReplayResult.fee): from the session's last meter reading (fee, energy, tick) to now."""

    car: str
    energy: int = 0  # received in the current session (energy units); 0 if not charging
    reading_fee: int = 0
    reading_energy: int = 0
    reading_tick: int = 0
    now_tick: int = 0
    paused: bool = False  # RULES §9: its session is open and draws nothing


# Snapshots hold only strings, integers and tuples of them: a replay keeps thousands, and such
# tuples are soon left alone by the garbage collector.


class PileView(NamedTuple):
    name: str
    state: str  # a PileState value
    cars: tuple[CarView, ...]
    power_w: Power = 0  # what its charging car draws (shown under a site limit)


class LineCar(NamedTuple):
    car: str
    mode: str  # the mode letter, F or T
    wanted: int  # energy units still wanted


class Snapshot(NamedTuple):
    time_s: int
    events: tuple[str, ...]
    piles: tuple[PileView, ...]
    priority: tuple[LineCar, ...]
    waiting: tuple[LineCar, ...]
    site: tuple[int, Power] | None = None  # (available, used) watts, under a site limit


class OpenSession:
    """A session still open when nothing draws power any more: it gets no bill (REPLAY)."""

    __slots__ = ("car", "paused", "pile", "queue_no")

    def __init__(self, car: str, queue_no: str, pile: str, paused: bool) -> None:
        self.car = car
        self.queue_no = queue_no
        self.pile = pile
        self.paused = paused


class RefusedEvent(NamedTuple):
    time_s: int
    event: str
    reason: str


class ReplayResult:
    """Everything a replay produced, values still exact."""

    def __init__(self, units: Units, clock: TariffClock) -> None:
        self.units = units
        self.clock = clock
        self.snapshots: list[Snapshot] = []
        self.refused: list[RefusedEvent] = []
        self.bills: list[Bill] = []
        self.stranded: list[Request] = []  # cars still in the station when nothing can run
        self.open_sessions: list[OpenSession] = []  # under a site limit (RULES §9)

    def fee(self, view: CarView) -> int:
        """Charging plus service fee of the car's current session at the snapshot (fee units)."""
        if view.energy == 0:
            return 0
        delta = view.energy - view.reading_energy
        charge = view.reading_fee + self.clock.charge_fee(view.reading_tick, view.now_tick, delta)
        return charge + self.clock.service_fee(view.energy)

    @property
    def end_tick(self) -> int | None:
        """When the last session ended, if any ran."""
        return max((b.end_tick for b in self.bills), default=None)


class Replay:
    """A station on simulated piles, driven by scenario events on a virtual clock."""

    def __init__(
        self,
        config: Config,
        observe: Callable[[Event], None] | None = None,
        *,
        snapshots: bool = True,
    ) -> None:
        """snapshots=False keeps only bills and refusals: for long generated runs (bench)."""
        self.keep_snapshots = snapshots
        self.units = Units.for_powers([p.power_w for p in config.piles])
        ports: dict[int, PilePort]
        if config.site is None:
            self.models = {p.id: PileModel(p.power_w, self.units.ticks_per_s) for p in config.piles}
            ports = {pile_id: ModelPort(model) for pile_id, model in self.models.items()}
            self.supply = None
        else:
            # Shared power is rational; the pile model's meters count whole units.
            from controller.replay.supply import SitePiles, SitePort  # only under a site limit

            self.models = {}
            self.supply = SitePiles([p.id for p in config.piles])
            ports = {p.id: SitePort(self.supply, i) for i, p in enumerate(config.piles)}
        self.result = ReplayResult(self.units, TariffClock(config.tariff, self.units))
        self._boundary = self.result.clock.next_boundary(0)  # the next meter reading (RULES §6)
        self._shared = 0  # the rules' sharing the piles draw
        self._index = {p.id: i for i, p in enumerate(config.piles)}
        # Predicted completions (tick, pile index); an entry whose session has since ended or
        # changed is dropped when it comes up.
        self._due: list[tuple[int, int]] = []
        self._observe = observe
        guess = None if self.supply is None else self.supply.energy_guess
        self.station = Station(config, ports, self.units, publish=self._collect, energy_guess=guess)

    def meters(self) -> dict[int, int | Fraction]:
        """Each pile's meter: all the energy it has delivered (pile id -> energy units)."""
        if self.supply is None:
            return {pile_id: model.meter for pile_id, model in self.models.items()}
        now = self.supply.at
        return {p.id: self.supply.meter(i, now) for i, p in enumerate(self.station.piles)}

    def _collect(self, event: Event) -> None:
        if isinstance(event, SessionEnded):
            self.result.bills.append(event.bill)
        elif isinstance(event, ChargingStarted) and self.supply is None:
            finish = self.models[event.pile_id].finish_tick()
            if finish is not None:
                heappush(self._due, (finish, self._index[event.pile_id]))
        if self._observe is not None:
            self._observe(event)

    # -- the clock -----------------------------------------------------------------------------
    def _live(self, tick: int, index: int) -> bool:
        pile = self.station.piles[index]
        return pile.meter is not None and self.models[pile.id].finish_tick() == tick

    def next_completion(self) -> int | None:
        """When the next running session reaches its amount, if any is running."""
        if self.supply is not None:
            return self.supply.next_completion()  # type: ignore[return-value]
        due = self._due
        while due and not self._live(*due[0]):
            heappop(due)
        return due[0][0] if due else None

    def advance(self, now_tick: int | None) -> None:
        """Settle every completion up to now_tick (all of them if None), in time order."""
        if self.supply is not None:
            self._advance_shared(now_tick)
            return
        due = self._due
        while True:
            tick = self.next_completion()
            if tick is None or (now_tick is not None and tick > now_tick):
                return
            finished: set[int] = set()
            while due and due[0][0] == tick:
                _, index = heappop(due)
                if self._live(tick, index):
                    finished.add(index)
            # Settled together, in configuration order (RULES §5).
            self.station.complete(tick, [self.station.piles[i].id for i in sorted(finished)])

    def _advance_shared(self, now_tick: int | None) -> None:
        """advance under a site limit: the sessions complete when their shares say, and the
        meters are read at every tariff boundary on the way. Without an end (now_tick None),
        until no open session draws power."""
        supply = self.supply
        assert supply is not None
        st = self.station
        clock = self.result.clock
        while True:
            tick = supply.next_completion()
            if tick is None and now_tick is None:
                return
            end = now_tick if tick is None or (now_tick is not None and now_tick < tick) else tick
            while self._boundary <= end:
                st.read_meters(self._boundary)
                self._boundary = clock.next_boundary(self._boundary)
            if tick is None or tick != end:
                return
            finished = supply.completing(tick)
            st.complete(tick, [st.piles[i].id for i in finished])
            self._share(tick)

    # -- events --------------------------------------------------------------------------------
    def apply(self, event: ScenarioEvent, now_tick: int) -> None:
        """Apply one event; a refusal is recorded, not raised."""
        try:
            self._apply(event, now_tick)
        except Refused as refusal:
            self.result.refused.append(RefusedEvent(event.time_s, event.text, refusal.reason))
            if self.supply is not None:
                self.station.after_refusal(now_tick)  # RULES §9: dispatch runs all the same
        if self.supply is not None:
            self._share(now_tick)

    def _share(self, now_tick: int) -> None:
        """The piles draw the rules' shares from now on, if the rules shared anew."""
        site = self.station.site
        assert self.supply is not None and site is not None
        if site.version != self._shared:
            self._shared = site.version
            self.supply.apply(now_tick, site.shares)

    def _apply(self, event: ScenarioEvent, now_tick: int) -> None:
        st = self.station
        if event.kind is Kind.SITE:
            assert event.amount is not None
            st.site_load(now_tick, int(event.amount * 1000))
        elif event.kind.is_pile_event:
            pile = st.pile_by_name.get(event.subject)
            if pile is None:
                raise Refused("unknown_pile", f"there is no pile named {event.subject}")
            if event.kind is Kind.FAULT:
                st.fault(now_tick, pile.id)
            else:
                st.recover(now_tick, pile.id)
        elif event.kind is Kind.REQUEST:
            assert event.amount is not None
            energy = self.units.energy_from_kwh(event.amount)
            st.request(now_tick, event.subject, MODE_OF_LETTER[event.mode], energy)
        elif event.kind is Kind.LEAVE:
            st.cancel(now_tick, event.subject)
        else:
            mode = MODE_OF_LETTER.get(event.mode)
            energy = None if event.amount is None else self.units.energy_from_kwh(event.amount)
            st.change(now_tick, event.subject, mode, energy)

    def snapshot(self, time_s: int, texts: list[str]) -> Snapshot:
        st = self.station
        now_tick = self.units.ticks(time_s)
        piles = []
        for pile in st.piles:
            cars = [CarView(req.car) for req in pile.queue]
            meter = pile.meter
            if meter is not None:
                energy = pile.port.session_energy(now_tick)
                cars[0] = CarView(
                    cars[0].car, energy, meter.charge_fee, meter.energy, meter.last_tick, now_tick
                )
            piles.append(PileView(pile.name, pile.state.value, tuple(cars)))
        priority = tuple(
            LineCar(r.car, r.mode.letter, r.wanted) for m in Mode for r in st.priority[m]
        )
        waiting = tuple(LineCar(r.car, r.mode.letter, r.wanted) for r in st.waiting)
        snap = Snapshot(time_s, tuple(texts), tuple(piles), priority, waiting)
        return snap if st.site is None else self._with_shares(snap)

    def _with_shares(self, snap: Snapshot) -> Snapshot:
        """The snapshot with what a site limit adds: the site's power, each pile's, and which
        car is paused (REPLAY "Site power limit")."""
        shares = self.station.shares
        piles = []
        for pile, view in zip(self.station.piles, snap.piles, strict=True):
            cars = view.cars
            if pile.id in shares.paused:
                cars = (cars[0]._replace(paused=True), *cars[1:])
            piles.append(view._replace(cars=cars, power_w=shares.power_w(pile.id)))
        site = (shares.available_w, shares.used_w)
        return snap._replace(piles=tuple(piles), site=site)

    def run(self, events: Iterable[ScenarioEvent]) -> ReplayResult:
        for time_s, group in groupby(events, key=lambda e: e.time_s):
            at_once = list(group)
            now_tick = self.units.ticks(time_s)
            self.advance(now_tick)
            for event in at_once:
                if event.kind.is_pile_event:
                    self.apply(event, now_tick)
            for event in at_once:
                if not event.kind.is_pile_event:
                    self.apply(event, now_tick)
            if self.keep_snapshots:
                self.result.snapshots.append(self.snapshot(time_s, [e.text for e in at_once]))
        self.advance(None)
        shares = self.station.shares
        for pile in self.station.piles:
            req = pile.charging()
            if req is not None:
                paused = pile.id in shares.paused
                self.result.open_sessions.append(
                    OpenSession(req.car, req.queue_no, pile.name, paused)
                )
        charging = {s.car for s in self.result.open_sessions}
        self.result.stranded = [
            req for req in self.station.requests.values() if req.car not in charging
        ]
        return self.result


def replay(config: Config, events: Iterable[ScenarioEvent]) -> ReplayResult:
    return Replay(config).run(events)
