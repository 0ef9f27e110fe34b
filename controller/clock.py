"""The live station's clock: local seconds since the epoch (1970-01-01 00:00 local time),
optionally running faster than real time for bench runs (`[clock] scale`).

Counted from a local midnight, so that tariff periods (RULES §6) fall at the right hour; and from
a fixed one, so that times saved before a restart mean the same after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from fractions import Fraction

LOCAL_EPOCH = datetime(1970, 1, 1)  # naive: 00:00 in whatever zone the station runs in


def local_epoch_seconds(moment: datetime) -> float:
    """Seconds since 1970-01-01 00:00 in the moment's own time zone."""
    offset = moment.utcoffset()
    return moment.timestamp() + (offset.total_seconds() if offset is not None else 0.0)


def station_moment(station_s: Fraction | int, tz: tzinfo) -> datetime:
    """The aware date and time of a station instant (seconds since 1970-01-01 00:00 in tz),
    to the microsecond: the instant the rules priced at, as a person reads it."""
    whole_s = int(station_s)
    micro = round((Fraction(station_s) - whole_s) * 1_000_000)
    return (LOCAL_EPOCH + timedelta(seconds=whole_s, microseconds=micro)).replace(tzinfo=tz)


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
