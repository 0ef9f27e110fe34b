"""Plain values the rules are written in: charging modes, pile states and the station's policies."""

from __future__ import annotations

from enum import StrEnum

# Who a request and its bill belong to: in the live station a user's id, in a replay the
# scenario's label for the car (REPLAY.md). Compared and looked up, never parsed.
CarId = int | str


def stored_car(value: CarId) -> CarId:
    """A car as a file or a table kept it: a user id saved as text before the station kept
    cars as integers is that user's id again."""
    return int(value) if isinstance(value, str) and value.isdecimal() and value.isascii() else value


class Mode(StrEnum):
    """A request's charging mode, named as the API names it (RULES §1)."""

    FAST = "fast"
    COMMON = "common"

    @property
    def letter(self) -> str:
        """The queue-number prefix: F for fast, T for common (slow/trickle)."""
        return "F" if self is Mode.FAST else "T"


class PileState(StrEnum):
    WORKING = "working"
    FAULT = "fault"
    OFF = "off"


class FaultPolicy(StrEnum):
    """How a faulted pile's cars rejoin the line (RULES §4)."""

    PRIORITY = "priority"
    TIME_ORDER = "time_order"


class Dispatch(StrEnum):
    """How cars are called to piles (RULES §2, §7)."""

    SHORTEST = "shortest"
    SINGLE_MIN_TOTAL = "single_min_total"
    BATCH_MIN_TOTAL = "batch_min_total"
