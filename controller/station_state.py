"""The station's queue state and the mechanics the rules move it with: calling a car, starting
and ending a session and its bill, regrouping, dispatch, and the site's power shares (RULES §2,
§4, §5, §9). The events that drive them are controller.station's."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from controller import dispatch
from controller.billing import Bill, EndReason, SessionMeter
from controller.config import Config
from controller.events import (
    Called,
    ChargingStarted,
    Event,
    SessionEnded,
)
from controller.sharing import Session, SiteState
from controller.station_parts import MODES, Area, Pile, PilePort, Refused, Request
from controller.tariff import TariffClock
from controller.units import Units, exact_quotient
from controller.values import CarId, Dispatch, Mode


class StationState:
    """All of the station's queue state, and how a car moves through it."""

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

    # -- the site's power (RULES §9) -----------------------------------------------------------
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
