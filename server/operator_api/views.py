"""A car and a pile as the operator sees them: the answers of /admin/piles and /admin/queues,
and the operators' live feed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from controller.door import PileView, RequestView
from controller.units import round_half_up
from controller.values import CarId
from server.driver_api.bills_view import stamp
from server.driver_api.hub import Hub
from server.operator_api.admin_reports import amounts


def car_view(
    req: RequestView, names: dict[CarId, str], station_now: datetime, tz: Any
) -> dict[str, Any]:
    """A car as the operator sees it (the answers of /admin/piles and /admin/queues, and the
    operators' live feed)."""
    waited_s = req.waited_s
    capacity = None if req.capacity_kwh is None else float(round_half_up(req.capacity_kwh, 2))
    return {
        "username": names.get(req.car, str(req.car)),
        **Hub.state(req),
        "capacity": capacity,
        "queuedAt": stamp(station_now - timedelta(seconds=float(waited_s)), tz),
        "waitedSeconds": int(round_half_up(waited_s, 0)),
    }


def pile_view(
    pile: PileView, names: dict[CarId, str], station_now: datetime, tz: Any
) -> dict[str, Any]:
    """A pile as /admin/piles shows it: state, totals since start-up, queue (RULES §8)."""
    return {
        "stationId": pile.id,
        "name": pile.name,
        "mode": pile.mode.value,
        "powerKw": pile.power_w / 1000,
        "state": pile.state.value,
        **amounts(
            pile.sessions,
            pile.charging_h,
            pile.energy_kwh,
            pile.charge_fee_yuan,
            pile.service_fee_yuan,
        ),
        "queue": [car_view(req, names, station_now, tz) for req in pile.queue],
    }
