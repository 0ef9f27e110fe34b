"""A station on simulated piles with a virtual clock, for tests that speak in hours and kWh."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from controller.billing import Bill
from controller.config import (
    DEFAULT_PILES,
    Config,
    PileConfig,
    StationSettings,
    parse_tariff,
)
from controller.events import Called, Event
from controller.replay.runner import Replay
from controller.station import Request, Station
from controller.values import Dispatch, FaultPolicy, Mode

FAST, COMMON = Mode.FAST, Mode.COMMON


def clock_s(hhmm: str) -> int:
    """'06:30' or '06:30:15' (optionally '+1' for the next day) in seconds."""
    day = 0
    if "+" in hhmm:
        hhmm, plus = hhmm.split("+")
        day = int(plus)
    parts = [int(x) for x in hhmm.split(":")]
    h, m, s = [*parts, 0][:3]
    return day * 86_400 + h * 3600 + m * 60 + s


class World:
    """Default station (RULES §1: A, B fast 30 kW; C, D, E common 7 kW; N 6; M 2) unless told."""

    def __init__(
        self,
        piles: tuple[PileConfig, ...] = DEFAULT_PILES,
        *,
        waiting_area_size: int = 6,
        pile_queue_len: int = 2,
        fault_policy: FaultPolicy = FaultPolicy.PRIORITY,
        dispatch: Dispatch = Dispatch.SHORTEST,
        tariff: dict | None = None,
    ) -> None:
        settings = StationSettings(waiting_area_size, pile_queue_len, fault_policy, dispatch)
        self.config = Config(settings, parse_tariff(tariff or {}), piles)
        self.events: list[Event] = []
        self.replay = Replay(self.config, observe=self.events.append)
        self.st: Station = self.replay.station
        self.u = self.replay.units
        self.now = 0

    # -- time ----------------------------------------------------------------------------------
    def t(self, hhmm: str) -> int:
        return self.u.ticks(clock_s(hhmm))

    def go(self, hhmm: str) -> int:
        """Move the clock to hhmm, settling every completion on the way (RULES §5)."""
        tick = self.t(hhmm)
        assert tick >= self.now, "tests move forward in time"
        self.replay.advance(tick)
        self.now = tick
        return tick

    def finish(self) -> None:
        self.replay.advance(None)

    # -- units ---------------------------------------------------------------------------------
    def e(self, kwh: str | int) -> int:
        return self.u.energy_from_kwh(Decimal(str(kwh)))

    def kwh(self, energy: int) -> Fraction:
        return self.u.kwh(energy)

    def hours(self, ticks: int) -> Fraction:
        return self.u.hours(ticks)

    def yuan(self, fee: int) -> Fraction:
        return self.u.yuan(fee)

    # -- events --------------------------------------------------------------------------------
    def request(self, hhmm: str, car: str, mode: Mode, kwh: str | int) -> Request:
        return self.st.request(self.go(hhmm), car, mode, self.e(kwh))

    def change(
        self, hhmm: str, car: str, mode: Mode | None = None, kwh: str | int | None = None
    ) -> Request:
        return self.st.change(self.go(hhmm), car, mode, None if kwh is None else self.e(kwh))

    def cancel(self, hhmm: str, car: str) -> Bill | None:
        return self.st.cancel(self.go(hhmm), car)

    def fault(self, hhmm: str, pile: str) -> Bill | None:
        return self.st.fault(self.go(hhmm), self.st.pile_by_name[pile].id)

    def recover(self, hhmm: str, pile: str) -> None:
        self.st.recover(self.go(hhmm), self.st.pile_by_name[pile].id)

    # -- views ---------------------------------------------------------------------------------
    def queue(self, pile: str) -> list[str]:
        return [r.car for r in self.st.pile_by_name[pile].queue]

    def queues(self) -> dict[str, list[str]]:
        return {p.name: [r.car for r in p.queue] for p in self.st.piles}

    def priority(self, mode: Mode) -> list[str]:
        return [r.car for r in self.st.priority[mode]]

    def waiting(self) -> list[str]:
        return [r.car for r in self.st.waiting]

    def line(self, mode: Mode) -> list[str]:
        return [r.car for r in self.st.line(mode)]

    def charging(self, pile: str) -> str | None:
        req = self.st.pile_by_name[pile].charging()
        return None if req is None else req.car

    @property
    def bills(self) -> list[Bill]:
        return self.replay.result.bills

    def bills_of(self, car: str) -> list[Bill]:
        return [b for b in self.bills if b.car == car]

    def calls(self) -> list[tuple[str, str]]:
        """(car, pile name) of every call so far, in order."""
        names = {p.id: p.name for p in self.st.piles}
        return [(e.car, names[e.pile_id]) for e in self.events if isinstance(e, Called)]


def pile(pile_id: int, name: str, mode: Mode, kw: int) -> PileConfig:
    return PileConfig(pile_id, name, mode, kw * 1000)


def round2(value: Fraction) -> Fraction:
    """Half up to 0.01, as the station shows money and kWh."""
    return Fraction(int(value * 100 + Fraction(1, 2)), 100)
