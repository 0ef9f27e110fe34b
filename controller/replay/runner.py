"""Running a scenario: the station's rules, simulated piles and a virtual clock (REPLAY.md).

The clock jumps from event to event and to each predicted completion in between; nothing sleeps.
At one instant: completions first (piles in configuration order), then the pile events, then the
user events, each in file order, with dispatch after every single one (RULES §5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import groupby
from typing import NamedTuple

from controller.billing import Bill
from controller.config import Config
from controller.events import Event, SessionEnded
from controller.replay.scenario import Kind, ScenarioEvent
from controller.station import Refused, Request, Station
from controller.units import Units
from controller.values import Mode, PileState
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
    car: str
    energy: int  # received in the current session (energy units)
    fee: int  # charging + service fee of the current session (fee units)


class PileView(NamedTuple):
    name: str
    state: PileState
    cars: list[CarView]


class LineCar(NamedTuple):
    car: str
    mode: Mode
    wanted: int  # energy units still wanted


class Snapshot(NamedTuple):
    time_s: int
    events: list[str]
    piles: list[PileView]
    priority: list[LineCar]
    waiting: list[LineCar]


class RefusedEvent(NamedTuple):
    time_s: int
    event: str
    reason: str


class ReplayResult:
    """Everything a replay produced, values still exact."""

    def __init__(self, units: Units) -> None:
        self.units = units
        self.snapshots: list[Snapshot] = []
        self.refused: list[RefusedEvent] = []
        self.bills: list[Bill] = []
        self.stranded: list[Request] = []  # cars still in the station when nothing can run

    @property
    def end_tick(self) -> int | None:
        """When the last session ended, if any ran."""
        return max((b.end_tick for b in self.bills), default=None)


class Replay:
    """A station on simulated piles, driven by scenario events on a virtual clock."""

    def __init__(self, config: Config, observe: Callable[[Event], None] | None = None) -> None:
        self.units = Units.for_powers([p.power_w for p in config.piles])
        self.models = {p.id: PileModel(p.power_w, self.units.ticks_per_s) for p in config.piles}
        ports = {pile_id: ModelPort(model) for pile_id, model in self.models.items()}
        self.result = ReplayResult(self.units)
        self._observe = observe
        self.station = Station(config, ports, self.units, publish=self._collect)

    def _collect(self, event: Event) -> None:
        if isinstance(event, SessionEnded):
            self.result.bills.append(event.bill)
        if self._observe is not None:
            self._observe(event)

    # -- the clock -----------------------------------------------------------------------------
    def next_completion(self) -> int | None:
        due = None
        for pile in self.station.piles:
            if pile.meter is not None:
                finish = self.models[pile.id].finish_tick()
                if finish is not None and (due is None or finish < due):
                    due = finish
        return due

    def advance(self, now_tick: int | None) -> None:
        """Settle every completion up to now_tick (all of them if None), in time order."""
        while True:
            due = self.next_completion()
            if due is None or (now_tick is not None and due > now_tick):
                return
            finished = [
                pile.id
                for pile in self.station.piles
                if pile.meter is not None and self.models[pile.id].finish_tick() == due
            ]
            self.station.complete(due, finished)

    # -- events --------------------------------------------------------------------------------
    def apply(self, event: ScenarioEvent, now_tick: int) -> None:
        """Apply one event; a refusal is recorded, not raised."""
        try:
            self._apply(event, now_tick)
        except Refused as refusal:
            self.result.refused.append(RefusedEvent(event.time_s, event.text, refusal.reason))

    def _apply(self, event: ScenarioEvent, now_tick: int) -> None:
        st = self.station
        if event.kind.is_pile_event:
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
            cars = []
            for i, req in enumerate(pile.queue):
                if i == 0 and pile.meter is not None:
                    energy, charge, service = st.session_so_far(pile, now_tick)
                    cars.append(CarView(req.car, energy, charge + service))
                else:
                    cars.append(CarView(req.car, 0, 0))
            piles.append(PileView(pile.name, pile.state, cars))
        priority = [LineCar(r.car, r.mode, r.wanted) for m in Mode for r in st.priority[m]]
        waiting = [LineCar(r.car, r.mode, r.wanted) for r in st.waiting]
        return Snapshot(time_s, texts, piles, priority, waiting)

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
            self.result.snapshots.append(self.snapshot(time_s, [e.text for e in at_once]))
        self.advance(None)
        self.result.stranded = list(self.station.requests.values())
        return self.result


def replay(config: Config, events: Iterable[ScenarioEvent]) -> ReplayResult:
    return Replay(config).run(events)
