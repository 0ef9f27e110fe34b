"""The station's rules (RULES §1-§5, §8, §9): requests, lines, queues, sessions, faults, totals.

Plain code over plain values. Time is passed in as `now_tick` on every call; piles are reached
through the small synchronous PilePort contract, so the same rules run in a replay, a test and
the live station. Each public method either refuses (raising Refused, nothing changed) or
applies the event, then runs dispatch (RULES §2: after every event).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Protocol

from controller import dispatch
from controller.billing import Bill, EndReason, SessionMeter
from controller.config import Config, PileConfig
from controller.events import (
    Called,
    ChargingStarted,
    Displaced,
    Done,
    Event,
    PileChanged,
    Queued,
    Revised,
    SessionEnded,
)
from controller.sharing import NO_SHARES, Session, Shares, SiteState
from controller.tariff import TariffClock
from controller.units import Units, exact_quotient
from controller.values import CarId, Dispatch, FaultPolicy, Mode, PileState

MODES = tuple(Mode)


class Refused(Exception):
    """The rules refuse this event; nothing changed. `error` is a stable machine key."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


class PilePort(Protocol):
    """What the rules need of a pile: start and stop a session, and its energy so far."""

    def start_session(self, now_tick: int, limit: int) -> None: ...

    def stop_session(self, now_tick: int) -> int:
        """Stop charging; the energy the session delivered (station energy units)."""
        ...

    def session_energy(self, now_tick: int) -> int: ...


class Area(StrEnum):
    WAITING = "waiting"
    PRIORITY = "priority"
    QUEUE = "queue"


class Request:
    """A car's request, from arrival until it is completed or cancelled."""

    __slots__ = (
        "area",
        "asked",
        "capacity",
        "car",
        "mode",
        "number",
        "pile",
        "queued_tick",
        "wanted",
    )

    def __init__(
        self,
        car: CarId,
        mode: Mode,
        number: int,
        wanted: int,
        queued_tick: int,
        capacity: int | None = None,
    ) -> None:
        self.car = car
        self.mode = mode
        self.number = number
        self.wanted = wanted  # energy still wanted: the remaining amount after an interruption
        self.asked = wanted  # the amount asked for (changed only by a change of amount)
        self.queued_tick = queued_tick
        self.capacity = capacity  # battery capacity (energy units), if the user gave it
        self.area = Area.WAITING
        self.pile: Pile | None = None

    @property
    def queue_no(self) -> str:
        return f"{self.mode.letter}{self.number}"


class PileTotals:
    """Operator totals since start-up (RULES §8)."""

    __slots__ = ("charge_fee", "charging_ticks", "energy", "service_fee", "sessions")

    def __init__(self) -> None:
        self.sessions = 0
        self.charging_ticks = 0
        self.energy = 0
        self.charge_fee = 0
        self.service_fee = 0


class Pile:
    """A pile as the rules see it: its state, its queue and its running session."""

    __slots__ = (
        "config",
        "end_estimate",
        "id",
        "index",
        "meter",
        "mode",
        "name",
        "port",
        "power_w",
        "queue",
        "state",
        "totals",
    )

    def __init__(self, config: PileConfig, index: int, port: PilePort) -> None:
        self.config = config
        self.id = config.id
        self.name = config.name
        self.mode = config.mode
        self.power_w = config.power_w
        self.index = index  # position in the configuration: ties go to the first (RULES §2)
        self.port = port
        self.state = PileState.WORKING
        self.queue: list[Request] = []
        self.meter: SessionMeter | None = None  # the running session, if the head is charging
        self.end_estimate = 0  # when the running session should reach its amount
        self.totals = PileTotals()

    @property
    def working(self) -> bool:
        return self.state is PileState.WORKING

    def charging(self) -> Request | None:
        return self.queue[0] if self.meter is not None else None


class Station:
    """All of the station's queue state and the rules that change it."""

    def __init__(
        self,
        config: Config,
        ports: Mapping[int, PilePort],
        units: Units | None = None,
        publish: Callable[[Event], None] | None = None,
        energy_guess: Callable[[int, float], float] | None = None,
    ) -> None:
        """energy_guess(index, now): about the energy of the open session at the pile with this
        configuration index at `now` (float ticks), if the piles can tell it quickly and closely
        (the replay's, which draw exactly the shares): dispatch then rules out piles with it
        before its exact comparison (RULES §9, controller.dispatch)."""
        self.config = config
        self.units = units or Units.for_powers([p.power_w for p in config.piles])
        self.tariff = TariffClock(config.tariff, self.units)
        self.capacity = config.station.waiting_area_size  # N
        self.places = config.station.pile_queue_len  # M
        self.fault_policy = config.station.fault_policy
        self.dispatch_mode = config.station.dispatch
        self.piles = [Pile(c, i, ports[c.id]) for i, c in enumerate(config.piles)]
        self.pile_by_id = {p.id: p for p in self.piles}
        self.pile_by_name = {p.name: p for p in self.piles}
        self.piles_of: dict[Mode, list[Pile]] = {m: [] for m in Mode}
        for p in self.piles:
            self.piles_of[p.mode].append(p)
        self._working: dict[Mode, list[Pile]] = {}
        self.requests: dict[str, Request] = {}
        self.waiting: list[Request] = []  # the waiting area in arrival order
        self.waiting_line: dict[Mode, list[Request]] = {m: [] for m in Mode}  # by number
        self.priority: dict[Mode, list[Request]] = {m: [] for m in Mode}
        self._numbers = dict.fromkeys(Mode, 0)
        self._bill_ids = 0
        self._publish = publish or (lambda event: None)
        # RULES §9: with a site limit, the open sessions share the power left for them.
        self.site = SiteState(config.site.max_power_w) if config.site is not None else None
        self.energy_guess = energy_guess if self.site is not None else None
        self._by_rated = sorted(self.piles, key=lambda p: p.power_w)
        self._sessions: list[Session | None] = [None] * len(self.piles)  # as the sharing sees them

    # -- views ---------------------------------------------------------------------------------
    def working_piles(self, mode: Mode) -> list[Pile]:
        """The working piles of a mode in configuration order (kept until a pile changes state)."""
        piles = self._working.get(mode)
        if piles is None:
            piles = self._working[mode] = [p for p in self.piles_of[mode] if p.working]
        return piles

    def line(self, mode: Mode) -> list[Request]:
        """The cars of one mode waiting to enter the charging area, in calling order (RULES §2)."""
        return self.priority[mode] + self.waiting_line[mode]

    def session_so_far(self, pile: Pile, now_tick: int) -> tuple[int, int, int]:
        """(energy, charging fee, service fee) of the pile's running session up to now."""
        if pile.meter is None:
            return 0, 0, 0
        return pile.meter.preview(now_tick, pile.port.session_energy(now_tick))

    def duration(self, energy: int, pile: Pile) -> int:
        if self.site is not None:
            # Shared power makes energies rational (RULES §9): the quotient stays exact.
            return exact_quotient(energy, pile.power_w)
        return -(-energy // pile.power_w)

    def queue_end(self, pile: Pile, now_tick: int) -> int:
        """When the pile would finish every car now in its queue (RULES §2 `wait`)."""
        t = now_tick
        queue = pile.queue
        if queue:
            if pile.meter is not None:
                if self.site is None:
                    t = max(now_tick, pile.end_estimate)
                else:
                    # RULES §9: what is left at the rated power, whatever the session draws.
                    left = queue[0].wanted - pile.port.session_energy(now_tick)
                    t += self.duration(left, pile)
            else:
                t += self.duration(queue[0].wanted, pile)
            for r in queue[1:]:
                t += self.duration(r.wanted, pile)
        return t

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

    def read_meters(self, now_tick: int) -> None:
        """Read the meter of every running session. At each tariff boundary (RULES §6), so that
        the energy between two readings is priced at one price whatever power it came at."""
        for pile in self.piles:
            if pile.meter is not None:
                pile.meter.reading(now_tick, pile.port.session_energy(now_tick))

    def _site(self) -> SiteState:
        if self.site is None:
            raise Refused("no_site_limit", "the station has no site limit ([site] max_power_kw)")
        return self.site

    def approx_finishes(self, wanted: int, piles: Sequence[Pile], now_tick: int) -> list[float]:
        """About queue_end + own of `wanted` at each pile, in float ticks, from energy_guess:
        quick, to rule piles out before the exact comparison (controller.dispatch)."""
        now = float(now_tick)
        amount = float(wanted)
        guess = self.energy_guess
        finishes = []
        for pile in piles:
            power_w = pile.power_w
            t = now + amount / power_w
            queue = pile.queue
            if queue:
                left = queue[0].wanted
                if pile.meter is not None and guess is not None:
                    left -= guess(pile.index, now)
                t += left / power_w
                for r in queue[1:]:
                    t += r.wanted / power_w
            finishes.append(t)
        return finishes

    def _reshare(self) -> None:
        """Share the site's power among the open sessions anew if anything that enters the
        sharing changed (RULES §9: nothing carries over from one sharing to the next, so the
        same sessions and power give the same shares)."""
        site = self._site()
        if not site.stale:
            return
        sessions = []
        for pile in self._by_rated:
            meter = pile.meter
            if meter is None:
                continue
            seen = self._sessions[pile.index]
            if seen is None or seen.start_tick is not meter.start_tick:
                seen = self._sessions[pile.index] = Session(
                    pile.id, pile.index, pile.power_w, pile.config.min_power_w, meter.start_tick
                )
            sessions.append(seen)
        site.reshare(sessions)

    # -- moving cars ---------------------------------------------------------------------------
    def call(self, req: Request, pile: Pile, now_tick: int) -> None:
        """Take the car out of its line into the pile's queue (叫号); used by dispatch."""
        from_priority = req.area is Area.PRIORITY
        self._detach(req)
        req.area = Area.QUEUE
        req.pile = pile
        pile.queue.append(req)
        self._publish(
            Called(now_tick, req.car, req.queue_no, pile.id, len(pile.queue), from_priority)
        )
        if len(pile.queue) == 1:
            self._start_head(pile, now_tick)

    def _to_priority(self, reqs: list[Request]) -> None:
        """Append cars taken out of a pile queue to their mode's priority line (no events)."""
        for req in reqs:
            req.area = Area.PRIORITY
            req.pile = None
            self.priority[req.mode].append(req)

    def _regroup(self, mode: Mode) -> list[tuple[Request, Pile]]:
        """Cars not yet charging at working piles of `mode` join its priority line, and the
        line is sorted by queue number (RULES §4: time_order faults and every recovery).
        Returns the cars moved, with the pile each came from."""
        moved: list[tuple[Request, Pile]] = []
        for pile in self.piles_of[mode]:
            if not pile.working:
                continue
            keep = 1 if pile.meter is not None else 0
            taken = pile.queue[keep:]
            del pile.queue[keep:]
            self._to_priority(taken)
            moved += [(req, pile) for req in taken]
        self.priority[mode].sort(key=lambda r: r.number)
        return moved

    def _detach(self, req: Request) -> None:
        if req.area is Area.WAITING:
            self.waiting.remove(req)
            self.waiting_line[req.mode].remove(req)
        elif req.area is Area.PRIORITY:
            self.priority[req.mode].remove(req)
        elif req.pile is not None:
            req.pile.queue.remove(req)
            req.pile = None

    # -- sessions ------------------------------------------------------------------------------
    def _start_head(self, pile: Pile, now_tick: int) -> None:
        if not pile.queue or pile.meter is not None or not pile.working:
            return
        req = pile.queue[0]
        pile.port.start_session(now_tick, req.wanted)
        if self.site is not None:
            self.site.stale = True
        pile.meter = SessionMeter(self.tariff, now_tick)
        pile.end_estimate = now_tick + self.duration(req.wanted, pile)
        self._publish(ChargingStarted(now_tick, req.car, pile.id))

    def _end_session(self, pile: Pile, now_tick: int, reason: EndReason) -> Bill:
        meter = pile.meter
        assert meter is not None, "only a running session ends"
        req = pile.queue[0]
        energy = pile.port.stop_session(now_tick)
        meter.reading(now_tick, energy)
        pile.meter = None
        if self.site is not None:
            self.site.stale = True
        pile.totals.sessions += 1
        pile.totals.charging_ticks += now_tick - meter.start_tick
        req.wanted = max(0, req.wanted - energy)
        return self._bill(
            now_tick,
            pile,
            req.car,
            req.queue_no,
            meter.start_tick,
            now_tick,
            energy,
            meter.charge_fee,
            reason,
        )

    def _bill(
        self,
        now_tick: int,
        pile: Pile,
        car: CarId,
        queue_no: str,
        start_tick: int,
        end_tick: int,
        energy: int,
        charge_fee: int,
        reason: EndReason,
    ) -> Bill:
        """A bill for energy a pile delivered to a car: counted in the pile's totals, and
        published."""
        self._bill_ids += 1
        bill = Bill(
            bill_id=self._bill_ids,
            car=car,
            queue_no=queue_no,
            pile_id=pile.id,
            pile_name=pile.name,
            start_tick=start_tick,
            end_tick=end_tick,
            energy=energy,
            charge_fee=charge_fee,
            service_fee=self.tariff.service_fee(energy),
            reason=reason,
        )
        pile.totals.energy += energy
        pile.totals.charge_fee += bill.charge_fee
        pile.totals.service_fee += bill.service_fee
        self._publish(SessionEnded(now_tick, bill))
        return bill

    # -- dispatch (RULES §2, §7) ---------------------------------------------------------------
    def _dispatch(self, now_tick: int) -> None:
        if self.dispatch_mode is Dispatch.SHORTEST:
            for mode in MODES:
                dispatch.shortest(self, mode, now_tick)
        elif self.dispatch_mode is Dispatch.SINGLE_MIN_TOTAL:
            for mode in MODES:
                dispatch.single_min_total(self, mode, now_tick)
        else:
            dispatch.batch_min_total(self, now_tick)
        if self.site is not None:
            self._reshare()  # after the calls: a session may have started (RULES §9)

    # -- lookups -------------------------------------------------------------------------------
    def _find(self, car: CarId) -> Request:
        req = self.requests.get(car)
        if req is None:
            raise Refused("not_in_station", f"car {car} has no request in the station")
        return req

    def _pile(self, pile_id: int) -> Pile:
        pile = self.pile_by_id.get(pile_id)
        if pile is None:
            raise Refused("unknown_pile", f"there is no pile {pile_id}")
        return pile
