"""The live station's clock: local seconds since the epoch (1970-01-01 00:00 local time),
optionally running faster than real time for bench runs (`[clock] scale`).

Counted from a local midnight, so that tariff periods (RULES §6) fall at the right hour; and from
a fixed one, so that times saved before a restart mean the same after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime


def local_epoch_seconds(moment: datetime) -> float:
    """Seconds since 1970-01-01 00:00 in the moment's own time zone."""
    offset = moment.utcoffset()
    return moment.timestamp() + (offset.total_seconds() if offset is not None else 0.0)


class StationClock:
    """Callable: the station's seconds now. Scaled time starts at the real time."""

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
            local_epoch_seconds(datetime.now().astimezone()) if start_s is None else start_s
        )

    def __call__(self) -> float:
        return self.start_s + (self._source() - self._origin) * self.scale

    def real_seconds(self, station_seconds: float) -> float:
        """How long to wait, in real time, for station_seconds to pass."""
        return station_seconds / self.scale
