"""What the station tells the outside world: events published by the rules as they happen.

The server turns these into WebSocket messages; the replay collects bills from them. Every event
carries the tick it happened at.
"""

from __future__ import annotations

from typing import NamedTuple

from controller.billing import Bill
from controller.values import CarId, PileState


class Queued(NamedTuple):
    now_tick: int
    car: CarId
    queue_no: str


class Revised(NamedTuple):
    now_tick: int
    car: CarId
    queue_no: str  # new number when the mode changed


class Called(NamedTuple):
    """The car was called into a pile queue (叫号); place 1 is at the pile."""

    now_tick: int
    car: CarId
    queue_no: str
    pile_id: int
    place: int
    from_priority: bool


class ChargingStarted(NamedTuple):
    now_tick: int
    car: CarId
    pile_id: int


class SessionEnded(NamedTuple):
    """A charging session ended and was billed."""

    now_tick: int
    bill: Bill


class Displaced(NamedTuple):
    """The car left a pile queue for the priority line (a fault or a regroup, RULES §4)."""

    now_tick: int
    car: CarId
    pile_id: int


class Done(NamedTuple):
    """The request left the station: reason is "completed", "cancelled" or "no_show" (the
    called car never plugged in, RULES §3)."""

    now_tick: int
    car: CarId
    reason: str


class PileChanged(NamedTuple):
    now_tick: int
    pile_id: int
    state: PileState


Event = Queued | Revised | Called | ChargingStarted | SessionEnded | Displaced | Done | PileChanged
