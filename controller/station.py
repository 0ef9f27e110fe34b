"""The station's rules (RULES §1-§5, §8, §9): requests, lines, queues, sessions, faults, totals.

Plain code over plain values. Time is passed in as `now_tick` on every call; piles are reached
through the small synchronous PilePort contract, so the same rules run in a replay, a test and
the live station. Each public method either refuses (raising Refused, nothing changed) or
applies the event, then runs dispatch (RULES §2: after every event).
"""

from __future__ import annotations

from controller.billing import Bill, EndReason
from controller.events import (
    Displaced,
    Done,
    PileChanged,
    Queued,
    Revised,
)
from controller.sharing import NO_SHARES, Shares
from controller.station_parts import (  # the rules' objects, named where the rules are
    MODES,
    Area,
    Pile,
    PilePort,
    PileTotals,
    Refused,
    Request,
)
from controller.station_state import StationState
from controller.values import CarId, Dispatch, FaultPolicy, Mode, PileState

__all__ = ["MODES", "Area", "Pile", "PilePort", "PileTotals", "Refused", "Request", "Station"]


class Station(StationState):
    """All of the station's queue state and the rules that change it."""

    # -- user events (RULES §1, §3) ------------------------------------------------------------
    def request(
        self, now_tick: int, car: CarId, mode: Mode, energy: int, capacity: int | None = None
    ) -> Request:
        if car in self.requests:
            raise Refused("already_queued", f"car {car} already has a request in the station")
        if energy <= 0:
            raise Refused("bad_quantity", "the amount must be above 0 kWh")
        if len(self.waiting) >= self.capacity:
            raise Refused("waiting_area_full", f"the waiting area is full ({self.capacity} cars)")
        self._numbers[mode] += 1
        req = Request(car, mode, self._numbers[mode], energy, now_tick, capacity)
        self.requests[car] = req
        self.waiting.append(req)
        self.waiting_line[mode].append(req)
        self._publish(Queued(now_tick, car, req.queue_no))
        self._dispatch(now_tick)
        return req

    def change(
        self, now_tick: int, car: CarId, mode: Mode | None = None, energy: int | None = None
    ) -> Request:
        """Change a waiting car's mode (new number, end of the new line) and/or amount."""
        req = self._find(car)
        if self.dispatch_mode is not Dispatch.SHORTEST:
            raise Refused(
                "changes_disabled",
                f"changes are not possible under {self.dispatch_mode.value} dispatch "
                "(RULES §7): cancel and request again",
            )
        if req.area is not Area.WAITING:
            where = "the priority line" if req.area is Area.PRIORITY else "a pile queue"
            raise Refused(
                "not_in_waiting_area",
                f"car {car} is in {where}: changes are possible only in the waiting area; "
                "cancel and request again",
            )
        if energy is not None and energy <= 0:
            raise Refused("bad_quantity", "the amount must be above 0 kWh")
        if mode is not None and mode is not req.mode:
            self.waiting_line[req.mode].remove(req)
            self._numbers[mode] += 1
            req.mode = mode
            req.number = self._numbers[mode]
            self.waiting_line[mode].append(req)
        if energy is not None:
            req.wanted = req.asked = energy
        self._publish(Revised(now_tick, car, req.queue_no))
        self._dispatch(now_tick)
        return req

    def cancel(self, now_tick: int, car: CarId) -> Bill | None:
        """The car leaves, wherever it is; a charging car gets its bill (RULES §3)."""
        req = self._find(car)
        bill = None
        pile = req.pile
        if pile is not None and pile.charging() is req:
            bill = self._end_session(pile, now_tick, EndReason.CANCELLED)
        self._detach(req)
        del self.requests[car]
        self._publish(Done(now_tick, car, "cancelled"))
        if pile is not None:
            self._start_head(pile, now_tick)
        self._dispatch(now_tick)
        return bill

    def no_show(self, now_tick: int, pile_id: int) -> None:
        """The car at the pile never plugged in within plug_timeout (RULES §3): it loses its
        turn; its request is cancelled without a bill and the next car starts."""
        pile = self._pile(pile_id)
        req = pile.charging()
        if req is None:
            raise Refused("no_session", f"pile {pile.name} has no running session")
        if pile.port.session_energy(now_tick):
            raise Refused("charged", f"car {req.car} has received energy at pile {pile.name}")
        pile.port.stop_session(now_tick)
        pile.meter = None
        if self.site is not None:
            self.site.stale = True
        self._detach(req)
        del self.requests[req.car]
        self._publish(Done(now_tick, req.car, "no_show"))
        self._start_head(pile, now_tick)
        self._dispatch(now_tick)

    def late_energy(
        self, now_tick: int, pile_id: int, car: CarId, queue_no: str, energy: int, at_tick: int
    ) -> Bill:
        """Energy a pile delivered to `car` after that session's bill: the pile stopped
        answering, the session was billed up to its last good reading (RULES §4), and the pile
        went on until its own watchdog stopped it. The car pays for what it received: a bill of
        its own, priced at the period of at_tick (the last good reading), and the car, if still
        in the station, wants that much less."""
        pile = self._pile(pile_id)
        charge_fee = self.tariff.charge_fee(at_tick, at_tick, energy)
        bill = self._bill(
            now_tick, pile, car, queue_no, at_tick, at_tick, energy, charge_fee, EndReason.FAULT
        )
        req = self.requests.get(car)
        if req is not None:
            req.wanted = max(0, req.wanted - energy)
            charging = req.pile is not None and req.pile.charging() is req
            if req.wanted == 0 and not charging:
                # It received all it asked for; a car charging elsewhere completes there.
                self._detach(req)
                del self.requests[car]
                self._publish(Done(now_tick, car, "completed"))
                self._dispatch(now_tick)
        return bill

    def suspend(self, now_tick: int) -> list[Bill]:
        """The station stops safely (DESIGN, "The control loop"): every running session ends
        with a bill, and every car keeps its place and number for what it still wants (a car
        that got everything is done). `resume` starts the sessions again."""
        bills = []
        for pile in self.piles:
            if pile.meter is None:
                continue
            req = pile.queue[0]
            bills.append(self._end_session(pile, now_tick, EndReason.STOPPED))
            if req.wanted == 0:
                self._detach(req)
                del self.requests[req.car]
                self._publish(Done(now_tick, req.car, "completed"))
        if self.site is not None:
            self._reshare()
        return bills

    def resume(self, now_tick: int) -> None:
        """Start the session of every car at the head of a working pile's queue that has none
        (after `suspend` and a restart)."""
        for pile in self.piles:
            self._start_head(pile, now_tick)
        if self.site is not None:
            self._reshare()

    def reading(self, now_tick: int, pile_id: int, energy: int) -> None:
        """A meter reading of the pile's running session (live piles): the energy since the
        last reading is priced over the time between them (RULES §6), and the session's
        predicted end moves with the pile's real progress."""
        pile = self._pile(pile_id)
        if pile.meter is None:
            return
        pile.meter.reading(now_tick, energy)
        left = max(0, pile.queue[0].wanted - energy)
        pile.end_estimate = now_tick + self.duration(left, pile)

    # -- pile events (RULES §4) ----------------------------------------------------------------
    def complete(self, now_tick: int, pile_ids: list[int]) -> list[Bill]:
        """Sessions that delivered their car's amount at now_tick: bill each (in the order
        given: configuration order, RULES §5), start each pile's next car, then dispatch once,
        so places freed at one instant are free together (RULES §7)."""
        piles = [self._pile(pile_id) for pile_id in pile_ids]
        for pile in piles:
            if pile.charging() is None:
                raise Refused("no_session", f"pile {pile.name} has no running session")
        bills = []
        for pile in piles:
            req = pile.queue[0]
            bills.append(self._end_session(pile, now_tick, EndReason.COMPLETED))
            self._detach(req)
            del self.requests[req.car]
            self._publish(Done(now_tick, req.car, "completed"))
            self._start_head(pile, now_tick)
        self._dispatch(now_tick)
        return bills

    def fault(self, now_tick: int, pile_id: int, state: PileState = PileState.FAULT) -> Bill | None:
        """The pile fails (or is switched off): stop and bill, regroup its cars (RULES §4)."""
        pile = self._pile(pile_id)
        if not pile.working:
            raise Refused("pile_not_working", f"pile {pile.name} is already {pile.state.value}")
        bill = None
        if pile.meter is not None:
            bill = self._end_session(pile, now_tick, EndReason.FAULT)
        displaced = list(pile.queue)
        pile.queue.clear()
        pile.state = state
        self._working.clear()
        done = None
        if displaced and displaced[0].wanted == 0:
            # It received everything at the very instant of the fault: it is done, not displaced.
            done = displaced.pop(0)
            del self.requests[done.car]
            done.pile = None
        # Every car is in its new place before anyone is told: listeners read the whole state.
        moved = [(req, pile) for req in displaced]
        self._to_priority(displaced)
        if self.fault_policy is FaultPolicy.TIME_ORDER:
            moved += self._regroup(pile.mode)
        self._publish(PileChanged(now_tick, pile.id, state))
        if done is not None:
            self._publish(Done(now_tick, done.car, "completed"))
        for req, origin in moved:
            self._publish(Displaced(now_tick, req.car, origin.id))
        self._dispatch(now_tick)
        return bill

    def recover(self, now_tick: int, pile_id: int) -> None:
        """The pile works again: regroup the cars not yet charging of its mode (RULES §4)."""
        pile = self._pile(pile_id)
        if pile.working:
            raise Refused("pile_working", f"pile {pile.name} is already working")
        pile.state = PileState.WORKING
        self._working.clear()
        moved = self._regroup(pile.mode)
        self._publish(PileChanged(now_tick, pile.id, pile.state))
        for req, origin in moved:
            self._publish(Displaced(now_tick, req.car, origin.id))
        self._dispatch(now_tick)

    def switch_off(self, now_tick: int, pile_id: int) -> Bill | None:
        """The operator switches a pile off: a fault for the rules (RULES §4)."""
        return self.fault(now_tick, pile_id, PileState.OFF)

    def switch_on(self, now_tick: int, pile_id: int) -> None:
        pile = self._pile(pile_id)
        if pile.state is PileState.FAULT:
            raise Refused(
                "pile_faulted", f"pile {pile.name} is faulted; it recovers when it is fixed"
            )
        self.recover(now_tick, pile_id)

    # -- the site's power (RULES §9) -----------------------------------------------------------
    @property
    def shares(self) -> Shares:
        """Each open session's power from now on (pile id -> exact watts; a paused one 0), as
        the last event left it; without a site limit none: every session draws its rating."""
        return self.site.shares if self.site is not None else NO_SHARES

    def site_load(self, now_tick: int, other_load_w: int) -> None:
        """From now on the site's other consumers draw other_load_w (a site event, or the grid
        meter): the sessions share what is left, and dispatch runs."""
        self._site().set_other_load(other_load_w)
        self._dispatch(now_tick)

    def site_limit(self, now_tick: int, limit_w: int) -> None:
        """The limit in force changes (an operator's profile lowers it, or it ends)."""
        self._site().set_limit(limit_w)
        self._dispatch(now_tick)

    def after_refusal(self, now_tick: int) -> None:
        """Dispatch runs after an event the rules refused, too: under shared power a waiting
        car's best pile can change between two events (RULES §9)."""
        self._dispatch(now_tick)
