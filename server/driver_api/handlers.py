"""The drivers' HTTP endpoints: their bills (`/user/log`, `/user/lognew`), their request now
(`/user/request`), and what a front end reads before a request (`/station`)."""

from __future__ import annotations

from controller.storage_schema import StoredBill
from server.driver_api.bills_view import log_entry, lognew_entry
from server.http.errors import ApiError
from server.http.handler import ApiHandler


class LogHandler(ApiHandler):
    """GET /user/log: the caller's bills, newest first, as a bare JSON list."""

    async def bills(self) -> list[StoredBill]:
        user_id, num = self.claims().user_id, self.num()
        return await self.ctx.storage.run(lambda s: s.bills_of(user_id, num))

    async def get(self) -> None:
        bills = await self.bills()
        self.reply([log_entry(b, self.ctx.tz) for b in bills])


class LogNewHandler(LogHandler):
    async def get(self) -> None:
        bills = await self.bills()
        self.reply({"code": 200, "log": [lognew_entry(b, self.ctx.tz) for b in bills]})


class StationHandler(ApiHandler):
    """GET /station: what a front end needs to know before a request (no token): the limits
    the station checks, and its piles."""

    def get(self) -> None:
        hub = self.ctx.hub
        if hub is None:
            raise ApiError(503, "station_not_ready", "充电站未运行 (the station is not running)")
        piles = [
            {"stationId": p.id, "name": p.name, "mode": p.mode.value, "powerKw": p.power_w / 1000}
            for p in hub.door.piles()
        ]
        self.reply({"code": 200, "maxQuantityKwh": self.ctx.max_quantity_kwh, "piles": piles})


class RequestStateHandler(ApiHandler):
    """GET /user/request: the caller's request in the station now (the state every WebSocket
    message carries), or null: a page that loads learns whether to resume."""

    def get(self) -> None:
        claims = self.claims()
        hub = self.ctx.hub
        if hub is None:
            raise ApiError(503, "station_not_ready", "充电站未运行 (the station is not running)")
        view = hub.door.request_of(claims.user_id)
        self.reply({"code": 200, "request": None if view is None else hub.state(view)})
