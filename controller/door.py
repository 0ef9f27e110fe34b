"""The one door into the live station: commands, plain views, and one ordered event stream.

Everything outside the controller (the drivers' WebSocket hub, the operator API and its live
feed, an OCPP uplink, the metrics) goes through here. Commands take no tick: the door reads the
station's clock itself, so no caller can pass a stale or foreign time. Each command either
returns what happened or raises the rules' `Refused` (nothing changed). Views are frozen values
with exact amounts (kWh, yuan and seconds as fractions), rounded only by whoever shows them.

The stream: every event the rules publish, then a `PlaceChanged` for each request whose cars
ahead it moved, plus `Progress` for each running session when the service asks (about once a
second), numbered in the order they happened and handed to every subscriber in that order.
An event published while subscribers are still being told of an earlier one waits its turn,
so every subscriber sees one and the same order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import NamedTuple

from controller.billing import Bill
from controller.events import Event
from controller.live import ControlLoop
from controller.station import Area, Pile, Refused, Request
from controller.units import Units
from controller.values import CarId, Mode, PileState

# Refused is the rules' refusal, raised through the door's commands.
__all__ = [
    "BillView",
    "Door",
    "MeterView",
    "PileView",
    "PlaceChanged",
    "Progress",
    "QueuesView",
    "Refused",
    "RequestView",
]

log = logging.getLogger(__name__)


class Progress(NamedTuple):
    """A running session so far: exact energy (station units) and fee at now_tick."""

    now_tick: int
    car: CarId
    pile_id: int
    energy: int
    fee: int


class PlaceChanged(NamedTuple):
    """The cars ahead of a request changed (PROTOCOL `ahead`): in its line while it waits, in
    its pile's queue once called."""

    now_tick: int
    car: CarId
    ahead: int


StreamEvent = Event | Progress | PlaceChanged
Subscriber = Callable[[int, StreamEvent], None]


class RequestView(NamedTuple):
    """A car's request as everyone outside the rules sees it (PROTOCOL "request's state")."""

    car: CarId
    queue_no: str
    mode: Mode
    area: str  # waiting, priority, queue (called, not yet charging) or charging
    ahead: int  # cars ahead: in its line while waiting, in the pile queue once called
    pile_id: int | None
    asked_kwh: Fraction
    remaining_kwh: Fraction
    charged_kwh: Fraction
    fee_yuan: Fraction
    capacity_kwh: Fraction | None
    waited_s: Fraction  # since it was queued


class PileView(NamedTuple):
    """A pile with its totals since start-up (RULES §8) and its queue, head first."""

    id: int
    name: str
    mode: Mode
    power_w: int
    state: PileState
    sessions: int
    charging_h: Fraction
    energy_kwh: Fraction
    charge_fee_yuan: Fraction
    service_fee_yuan: Fraction
    queue: tuple[RequestView, ...]
    power_now_w: int | None  # what the pile reported at its last good reading
    answering: bool  # its last read succeeded


class BillView(NamedTuple):
    """A bill's exact amounts, as a person reads them."""

    car: CarId
    queue_no: str
    pile_id: int
    pile_name: str
    reason: str
    duration_h: Fraction
    energy_kwh: Fraction
    charge_fee_yuan: Fraction
    service_fee_yuan: Fraction


class QueuesView(NamedTuple):
    waiting: tuple[RequestView, ...]  # the waiting area in arrival order
    priority: dict[Mode, tuple[RequestView, ...]]  # each mode's priority line (RULES §4)


class Door:
    """Commands into the station and the stream of what happens in it."""

    def __init__(self, loop: ControlLoop) -> None:
        self._loop = loop
        self._station = loop.station
        self.units: Units = loop.units
        self._stream = loop.events
        self._ahead: dict[CarId, int] = {}  # each request's cars ahead, as last told
        self._stream.follow(self._followed)

    # -- the stream ----------------------------------------------------------------------------
    @property
    def seq(self) -> int:
        """The number of the last event handed out."""
        return self._stream.seq

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Be told of every event from now on, in order; returns the way to stop."""
        return self._stream.subscribe(subscriber)

    def _followed(self, event: StreamEvent) -> None:
        if not isinstance(event, Progress | PlaceChanged):
            self._places(event.now_tick)

    def _places(self, now_tick: int) -> None:
        """Queue a PlaceChanged for every request whose cars ahead changed since it was last
        told (once for all requests: a line of thousands is worked out once, not per car)."""
        now = self.aheads(self._station.requests)
        told = self._ahead
        for car in [car for car in told if car not in now]:
            del told[car]  # it left the station
        for car, ahead in now.items():
            before = told.get(car)
            told[car] = ahead
            if before is not None and before != ahead:
                self._stream.publish(PlaceChanged(now_tick, car, ahead))

    def now_s(self) -> Fraction:
        """The station's clock now, in seconds since 1970-01-01 00:00 of its time zone."""
        return self.units.seconds(self._loop.now_tick())

    async def between_ticks(self) -> None:
        """Return when no control-loop tick runs (at once if none does now): work that can
        wait a few milliseconds runs in the gaps, so the loop's ticks are not stretched."""
        await self._loop.between_ticks.wait()

    def progress(self) -> None:
        """A `Progress` event for every running session that has delivered energy (the
        service's cadence); before its first metered Wh, `ChargingStarted` says all there is."""
        now = self._loop.now_tick()
        for pile in self._station.piles:
            req = pile.charging()
            if req is not None:
                energy, charge, service = self._station.session_so_far(pile, now)
                if energy:
                    self._stream.publish(Progress(now, req.car, pile.id, energy, charge + service))

    # -- commands ------------------------------------------------------------------------------
    def request(
        self, car: CarId, mode: Mode, energy_wh: int, capacity_wh: int | None = None
    ) -> RequestView:
        """A new request (RULES §1); its events (queued, perhaps called) come first."""
        units = self.units
        capacity = None if capacity_wh is None else units.energy_from_wh(capacity_wh)
        req = self._station.request(
            self._loop.now_tick(), car, mode, units.energy_from_wh(energy_wh), capacity
        )
        return self._view(req)

    def change(
        self, car: CarId, mode: Mode | None = None, energy_wh: int | None = None
    ) -> RequestView:
        """A waiting car's new mode and/or amount (RULES §3)."""
        energy = None if energy_wh is None else self.units.energy_from_wh(energy_wh)
        req = self._station.change(self._loop.now_tick(), car, mode, energy)
        return self._view(req)

    async def cancel(self, car: CarId) -> Bill | None:
        """The car leaves, wherever it is; a charging car's pile is stopped and read first,
        and its bill returned (RULES §3)."""
        return await self._loop.cancel(car)

    async def stop_session(self, pile_id: int) -> tuple[str, Bill | None]:
        """The session at the pile ends with a bill and its car leaves; (car, bill)."""
        pile = self._pile(pile_id)
        req = pile.charging()
        if req is None:
            raise Refused(
                "no_session", f"{pile.name} 桩没有在充电 (pile {pile.name} is not charging)"
            )
        # The car leaves: stopped and left at the head of the queue it would only start again.
        return req.car, await self._loop.cancel(req.car)

    def switch_off(self, pile_id: int) -> Bill | None:
        """The operator switches the pile off: a fault for the rules (RULES §4)."""
        return self._station.switch_off(self._loop.now_tick(), self._pile(pile_id).id)

    def switch_on(self, pile_id: int) -> None:
        """The operator switches the pile on: a recovery (a faulted pile only when fixed)."""
        self._station.switch_on(self._loop.now_tick(), self._pile(pile_id).id)

    # -- views ---------------------------------------------------------------------------------
    def request_of(self, car: CarId, ahead: int | None = None) -> RequestView | None:
        """The car's request; `ahead` when the caller knows it (a PlaceChanged): a waiting
        car's place is otherwise searched for in its line."""
        req = self._station.requests.get(car)
        return None if req is None else self._view(req, ahead)

    def request_count(self) -> int:
        return len(self._station.requests)

    def aheads(self, cars: Iterable[CarId]) -> dict[CarId, int]:
        """Cars ahead of each of these cars that has a request (the lines worked out once:
        a line of thousands must not be searched per car)."""
        st = self._station
        lines: dict[Mode, dict[CarId, int]] | None = None
        out: dict[CarId, int] = {}
        for car in cars:
            req = st.requests.get(car)
            if req is None:
                continue
            if req.area is Area.QUEUE and req.pile is not None:
                out[car] = req.pile.queue.index(req)
                continue
            if lines is None:
                lines = {m: {r.car: i for i, r in enumerate(st.line(m))} for m in Mode}
            out[car] = lines[req.mode][car]
        return out

    def pile_ids(self) -> list[int]:
        return [pile.id for pile in self._station.piles]

    def pile_names(self) -> dict[int, str]:
        return {pile.id: pile.name for pile in self._station.piles}

    def pile(self, pile_id: int) -> PileView | None:
        pile = self._station.pile_by_id.get(pile_id)
        return None if pile is None else self._pile_view(pile)

    def piles(self) -> list[PileView]:
        return [self._pile_view(pile) for pile in self._station.piles]

    def queues(self) -> QueuesView:
        st = self._station
        return QueuesView(
            waiting=tuple(self._view(req) for req in st.waiting),
            priority={m: tuple(self._view(req) for req in line) for m, line in st.priority.items()},
        )

    def bill_view(self, bill: Bill) -> BillView:
        units = self.units
        return BillView(
            car=bill.car,
            queue_no=bill.queue_no,
            pile_id=bill.pile_id,
            pile_name=bill.pile_name,
            reason=bill.reason.value,
            duration_h=units.hours(bill.end_tick - bill.start_tick),
            energy_kwh=units.kwh(bill.energy),
            charge_fee_yuan=units.yuan(bill.charge_fee),
            service_fee_yuan=units.yuan(bill.service_fee),
        )

    def bill_seconds(self, bill: Bill) -> Fraction:
        """How long the billed session lasted, in station seconds."""
        return self.units.seconds(bill.end_tick - bill.start_tick)

    # -- building views ------------------------------------------------------------------------
    def _pile(self, pile_id: int) -> Pile:
        pile = self._station.pile_by_id.get(pile_id)
        if pile is None:
            raise Refused("unknown_pile", f"没有 {pile_id} 号充电桩 (no pile {pile_id})")
        return pile

    def _view(self, req: Request, known_ahead: int | None = None) -> RequestView:
        units = self.units
        now = self._loop.now_tick()
        pile = req.pile
        charging = pile is not None and pile.charging() is req
        energy = fee = 0
        if charging and pile is not None:
            energy, charge, service = self._station.session_so_far(pile, now)
            fee = charge + service
        if req.area is Area.QUEUE and pile is not None:
            area = "charging" if charging else "queue"
            ahead = pile.queue.index(req)
        else:
            area = req.area.value
            ahead = self._station.line(req.mode).index(req) if known_ahead is None else known_ahead
        return RequestView(
            car=req.car,
            queue_no=req.queue_no,
            mode=req.mode,
            area=area,
            ahead=ahead,
            pile_id=None if pile is None else pile.id,
            asked_kwh=units.kwh(req.asked),
            remaining_kwh=units.kwh(max(0, req.wanted - energy)),
            charged_kwh=units.kwh(req.asked - req.wanted + energy),
            fee_yuan=units.yuan(fee),
            capacity_kwh=None if req.capacity is None else units.kwh(req.capacity),
            waited_s=units.seconds(max(0, now - req.queued_tick)),
        )

    def _pile_view(self, pile: Pile) -> PileView:
        units = self.units
        t = pile.totals
        rt = self._loop.runtimes[pile.id]
        return PileView(
            id=pile.id,
            name=pile.name,
            mode=pile.mode,
            power_w=pile.power_w,
            state=pile.state,
            sessions=t.sessions,
            charging_h=units.hours(t.charging_ticks),
            energy_kwh=units.kwh(t.energy),
            charge_fee_yuan=units.yuan(t.charge_fee),
            service_fee_yuan=units.yuan(t.service_fee),
            queue=tuple(self._view(req) for req in pile.queue),
            power_now_w=rt.power_now_w,
            answering=rt.answering,
        )

    # -- meters: what an uplink's transactions carry (OCPP meterStart, meterStop, MeterValues) --
    def meter(self, pile_id: int) -> MeterView | None:
        """The pile's meter and link as the control loop last read them; None for an unknown
        pile. A running session's billed energy so far is meter_wh - session_start_wh."""
        rt = self._loop.runtime(pile_id)
        if rt is None:
            return None
        status = rt.status
        return MeterView(
            pile_id=pile_id,
            meter_wh=rt.meter_wh,
            session_start_wh=rt.session_start_wh,
            power_w=rt.power_now_w,
            answering=rt.answering,
            vehicle=None if status is None else status.state.value,
            fault_code=0 if status is None else status.fault_code,
        )

    def bill_wh(self, bill: Bill) -> int:
        """A bill's energy in whole Wh (live sessions are metered in whole Wh, RULES §6)."""
        return self.units.wh_floor(bill.energy)


class MeterView(NamedTuple):
    """A pile's meter and link at the control loop's last reading, in whole Wh as the meter
    counts them."""

    pile_id: int
    meter_wh: int | None  # the last good reading; None before the first one
    session_start_wh: int | None  # the count the running session started from; None: none
    power_w: int | None  # what the pile reported at its last good reading
    answering: bool  # its last read succeeded
    vehicle: str | None  # the pile's own state then: no_vehicle, connected, charging, ...
    fault_code: int  # the fault code the pile reports; 0: none
