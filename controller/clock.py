"""The live station's clock: seconds since local midnight of the day it started, optionally
running faster than real time for bench runs (`[clock] scale`).

The rules measure time from a midnight so that tariff periods (RULES §6) fall at the right hour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime


def seconds_since_midnight(moment: datetime) -> float:
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return (moment - midnight).total_seconds()


class StationClock:
    """Callable: the station's seconds now. Scaled time starts at the real time of day."""

    def __init__(
        self,
        scale: float = 1.0,
        *,
        source: Callable[[], float] = time.monotonic,
        start_s: float | None = None,
    ) -> None:
        self.scale = scale
        self._source = source
        self._origin = source()
        self.start_s = (
            seconds_since_midnight(datetime.now().astimezone()) if start_s is None else start_s
        )

    def __call__(self) -> float:
        return self.start_s + (self._source() - self._origin) * self.scale

    def real_seconds(self, station_seconds: float) -> float:
        """How long to wait, in real time, for station_seconds to pass."""
        return station_seconds / self.scale
