"""Plain values the rules are written in: charging modes, pile states and the station's policies."""

from __future__ import annotations

from enum import StrEnum


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
