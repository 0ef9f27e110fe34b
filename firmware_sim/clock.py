"""The simulator's clock: simulated seconds from a time source, and the physics' integer ticks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

TICKS_PER_S = 1000  # the physics steps in milliseconds
WH_TICKS = 3600 * TICKS_PER_S  # watt-ticks in one Wh


class SimClock:
    """Simulated time: (source() - source() at creation) x scale.

    The source is any callable returning seconds (default time.monotonic); tests inject their
    own, so nothing sleeps. With a scale of 60 one real second is a simulated minute.
    """

    def __init__(self, source: Callable[[], float] = time.monotonic, scale: float = 1.0) -> None:
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"the time scale must be a positive number, got {scale}")
        self.source = source
        self.scale = scale
        self._start_s = source()
        self._last_tick = 0

    def now_s(self) -> float:
        return (self.source() - self._start_s) * self.scale

    def now_tick(self) -> int:
        """Whole ticks since the start; never goes back, even if the source does."""
        # The small epsilon keeps 0.3 s from flooring to 299 ticks through float rounding.
        tick = math.floor(self.now_s() * TICKS_PER_S + 1e-6)
        self._last_tick = max(self._last_tick, tick)
        return self._last_tick
