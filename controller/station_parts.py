"""The rules' objects: a request, a pile and its totals, the areas, the refusal, and what the
rules need of a pile (PilePort)."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from controller.billing import SessionMeter
from controller.config import PileConfig
from controller.values import CarId, Mode, PileState

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
