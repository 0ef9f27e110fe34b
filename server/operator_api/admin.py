"""The operator API under /admin/…: piles, queues, reports, codes, exports and the audit log.

PROTOCOL "Operator API (additions)" and RULES §8. Every endpoint needs a token with the operator
role (401 without a valid token, 403 `not_operator` for a driver). Piles and requests are named
by parameters (`stationId`, `username`), as everywhere in the documented API, not by path
segments. Every action that changes something is written to the audit log: who (the operator's
user id), what (the action and its detail) and when (the station's clock).
"""

from __future__ import annotations

import logging
import math
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from controller.billing import Bill
from controller.door import Door, PileView, Refused, RequestView
from controller.storage import StorageError
from controller.values import CarId
from server.accounts import audit_log
from server.accounts import store as accounts_store
from server.accounts.accounts import Claims
from server.driver_api.bills_view import stamp
from server.http.errors import ApiError
from server.http.handler import ApiHandler
from server.operator_api.admin_reports import (
    FIRST_DATE,
    LAST_DATE,
    Period,
    amounts,
    bills_csv,
    midnight,
    parse_date,
    period_days,
    report,
)
from server.operator_api.views import car_view, pile_view

log = logging.getLogger(__name__)

DEFAULT_CODE_HOURS = 24 * 7  # as `charge-station code issue`
MAX_CODE_HOURS = 24 * 365


class AdminHandler(ApiHandler):
    """An operator's request: the caller is checked before any method runs."""

    operator: Claims

    def prepare(self) -> None:
        if self.request.method == "OPTIONS":
            return  # a browser's preflight carries no token; options() answers it (CORS)
        claims = self.claims()
        if claims.role != "operator":
            raise ApiError(403, "not_operator", "仅限运营人员 (operators only)")
        self.operator = claims

    # -- the station ---------------------------------------------------------------------------
    def door(self) -> Door:
        hub = self.ctx.hub
        if hub is None:
            raise ApiError(503, "station_not_ready", "充电站未运行 (the station is not running)")
        return hub.door

    def station_now(self) -> datetime:
        """The station's clock as a date and time (the one bills are dated by)."""
        hub = self.ctx.hub
        return hub.now() if hub is not None else datetime.now(UTC)

    def pile(self) -> PileView:
        """The pile named by the `stationId` parameter."""
        number = self._body().get("stationId") if self.request.method == "POST" else None
        # A JSON body may give the number as a number; param() takes strings only.
        text = str(number) if type(number) is int else self.param("stationId")
        assert text is not None
        try:
            pile_id = int(text)
        except ValueError:
            raise ApiError(
                400, "bad_stationId", "stationId 须是整数 (stationId: a whole pile number)"
            ) from None
        pile = self.door().pile(pile_id)
        if pile is None:
            raise ApiError(404, "unknown_pile", f"没有 {pile_id} 号充电桩 (no pile {pile_id})")
        return pile

    def date_param(self, name: str) -> date:
        """A YYYY-MM-DD parameter; today in the station's time zone when left out."""
        text = self.param(name, required=False)
        if not text:
            return self.station_now().astimezone(self.ctx.tz).date()
        try:
            return parse_date(text)
        except ValueError:
            raise ApiError(
                400,
                f"bad_{name}",
                f"{name} 须是 {FIRST_DATE} 至 {LAST_DATE} 之间的日期 YYYY-MM-DD "
                f"({name}: a date, YYYY-MM-DD, from {FIRST_DATE} to {LAST_DATE})",
            ) from None

    async def audit(self, action: str, detail: dict[str, Any]) -> None:
        # The record follows a change already made: failing to write it must not turn the
        # change into an error the operator would retry (a second switch, a second code).
        try:
            user_id, now = self.operator.user_id, self.station_now()
            await self.ctx.storage.run(lambda s: audit_log.audit(s, user_id, action, detail, now))
        except StorageError as exc:
            log.warning("audit entry %s by %s not written: %s", action, self.operator.username, exc)

    # -- views of cars -------------------------------------------------------------------------
    async def usernames(self, cars: Iterable[CarId]) -> dict[CarId, str]:
        """car -> username; a car of the server is its user's id (server.driver_api.charge_ws)."""
        return dict(await self.names(car for car in cars if isinstance(car, int)))

    async def names(self, user_ids: Iterable[int]) -> dict[int, str]:
        ids = list(user_ids)  # read here: the caller's iterable may not survive the thread hop
        return await self.ctx.storage.run(lambda s: accounts_store.usernames(s, ids))

    def car(self, req: RequestView, names: dict[CarId, str]) -> dict[str, Any]:
        """A car as the operator sees it: the user's view of the request (server.driver_api.hub)
        with the user, the battery capacity if given, and when it was queued (RULES §8)."""
        return car_view(req, names, self.station_now(), self.ctx.tz)

    def bill(self, bill: Bill | None, names: dict[CarId, str]) -> dict[str, Any] | None:
        """A bill the action just made, as the operator's answer shows it. The stored bill (with
        the id the user sees) is written and sent to the user by the hub, as for any bill."""
        if bill is None:
            return None
        shown_bill = self.door().bill_view(bill)
        shown = amounts(
            1,
            shown_bill.duration_h,
            shown_bill.energy_kwh,
            shown_bill.charge_fee_yuan,
            shown_bill.service_fee_yuan,
        )
        del shown["sessions"]
        user = names.get(bill.car, str(bill.car))
        return {"username": user, "queueNo": bill.queue_no, "reason": bill.reason.value, **shown}


class PilesHandler(AdminHandler):
    """GET /admin/piles: every pile's state, totals since start-up and queue (RULES §8)."""

    async def get(self) -> None:
        piles = self.door().piles()
        names = await self.usernames(r.car for p in piles for r in p.queue)
        now = self.station_now()
        self.reply({"code": 200, "piles": [pile_view(p, names, now, self.ctx.tz) for p in piles]})


class PileOffHandler(AdminHandler):
    """POST /admin/piles/off: a fault for the rules (RULES §4): the charging car is stopped
    and billed, and the pile's cars move to the priority line."""

    async def post(self) -> None:
        door = self.door()
        pile = self.pile()
        try:
            made = door.switch_off(pile.id)
        except Refused as exc:
            raise ApiError(409, exc.error, exc.reason) from None
        log.info("pile %s: switched off by operator %s", pile.name, self.operator.username)
        billed = self.bill(made, await self.usernames([made.car] if made else []))
        await self.audit(
            "pile_off",
            {
                "stationId": pile.id,
                "name": pile.name,
                "billedQueueNo": None if billed is None else billed["queueNo"],
            },
        )
        state = door.pile(pile.id)
        assert state is not None
        self.reply({"code": 200, "stationId": pile.id, "state": state.state.value, "bill": billed})


class PileOnHandler(AdminHandler):
    """POST /admin/piles/on: a recovery (RULES §4); a faulted pile recovers only when fixed."""

    async def post(self) -> None:
        door = self.door()
        pile = self.pile()
        try:
            door.switch_on(pile.id)
        except Refused as exc:
            raise ApiError(409, exc.error, exc.reason) from None
        log.info("pile %s: switched on by operator %s", pile.name, self.operator.username)
        await self.audit("pile_on", {"stationId": pile.id, "name": pile.name})
        state = door.pile(pile.id)
        assert state is not None
        self.reply({"code": 200, "stationId": pile.id, "state": state.state.value})


class PileStopHandler(AdminHandler):
    """POST /admin/piles/stop: the session at the pile ends with a bill and the car leaves."""

    async def post(self) -> None:
        door = self.door()
        pile = self.pile()
        head = pile.queue[0] if pile.queue else None
        try:
            car, made = await door.stop_session(pile.id)
        except Refused as exc:  # not charging, or it left while its pile was stopped and read
            raise ApiError(409, exc.error, exc.reason) from None
        assert head is not None and head.car == car
        log.info("pile %s: session stopped by operator %s", pile.name, self.operator.username)
        names = await self.usernames([car])
        billed = self.bill(made, names)
        await self.audit(
            "stop_session",
            {
                "stationId": pile.id,
                "name": pile.name,
                "username": names.get(car, str(car)),
                "queueNo": head.queue_no,
            },
        )
        self.reply({"code": 200, "stationId": pile.id, "bill": billed})


class QueuesHandler(AdminHandler):
    """GET /admin/queues: the waiting area in arrival order and each mode's priority line."""

    async def get(self) -> None:
        queues = self.door().queues()
        lines = {mode.value: list(line) for mode, line in queues.priority.items()}
        waiting = list(queues.waiting)
        names = await self.usernames(r.car for line in [waiting, *lines.values()] for r in line)
        self.reply(
            {
                "code": 200,
                "waiting": [self.car(req, names) for req in waiting],
                "priority": {
                    mode: [self.car(req, names) for req in line] for mode, line in lines.items()
                },
            }
        )


class RemoveRequestHandler(AdminHandler):
    """POST /admin/requests/remove: the user's request leaves, wherever it is (RULES §3); a car
    that was charging gets its bill."""

    async def post(self) -> None:
        door = self.door()
        username = self.param("username")
        assert username is not None
        # NFC, as accounts store names: the same name typed on two keyboards is one name.
        name = unicodedata.normalize("NFC", username)
        user = await self.ctx.storage.run(lambda s: accounts_store.user_by_name(s, name))
        req = door.request_of(user.id) if user is not None else None
        if req is None:
            raise ApiError(
                404, "not_in_station", f"{username} 没有请求 ({username} has no request)"
            )
        names = {req.car: username}
        area = req.area
        try:
            made = await door.cancel(req.car)
        except Refused as exc:  # it left while its pile was being stopped and read
            raise ApiError(409, exc.error, exc.reason) from None
        log.info("request %s removed by operator %s", req.queue_no, self.operator.username)
        billed = self.bill(made, names)
        await self.audit(
            "remove_request",
            {"username": username, "queueNo": req.queue_no, "area": str(area)},
        )
        self.reply({"code": 200, "username": username, "queueNo": req.queue_no, "bill": billed})


class ReportsHandler(AdminHandler):
    """GET /admin/reports: per pile, the day, ISO week or month containing `date` (RULES §8)."""

    async def get(self) -> None:
        text = self.param("period")
        assert text is not None
        try:
            period = Period(text)
        except ValueError:
            raise ApiError(
                400, "bad_period", "period 须是 day、week 或 month (period: day, week or month)"
            ) from None
        first, after = period_days(period, self.date_param("date"))
        tz = self.ctx.tz
        start, end = midnight(first, tz), midnight(after, tz)
        bills = await self.ctx.storage.run(lambda s: s.bills_between(start, end))
        hub = self.ctx.hub
        piles = {}
        if hub is not None:
            piles = hub.door.pile_names()
        body = report(bills, piles)
        last = after - timedelta(days=1)
        self.reply(
            {
                "code": 200,
                "period": period.value,
                "from": first.isoformat(),
                "to": last.isoformat(),
                **body,
            }
        )


class CodesHandler(AdminHandler):
    """POST /admin/codes: a single-use registration code for a new driver."""

    async def post(self) -> None:
        text = self.param("hours", required=False)
        hours = DEFAULT_CODE_HOURS
        if text:
            try:
                hours = float(text)
            except ValueError:
                hours = math.nan
            if not (math.isfinite(hours) and 0 < hours <= MAX_CODE_HOURS):
                raise ApiError(
                    400,
                    "bad_hours",
                    f"hours 须大于 0 且不超过 {MAX_CODE_HOURS} (hours: above 0, at most a year)",
                )
        code = await self.ctx.accounts.issue_code(ttl_s=max(1, round(hours * 3600)))
        expires = await self.ctx.storage.run(lambda s: accounts_store.code_expires(s, code))
        assert expires is not None
        log.info("registration code issued by operator %s", self.operator.username)
        # The code is a credential until spent: the audit keeps its expiry, not the code.
        await self.audit("issue_code", {"expires": expires.isoformat()})
        self.reply({"code": 200, "registrationCode": code, "expires": stamp(expires, self.ctx.tz)})


class BillsCsvHandler(AdminHandler):
    """GET /admin/bills.csv: the bills that ended from `from` to `to` (both days included)."""

    async def get(self) -> None:
        first = self.date_param("from")
        last = self.date_param("to") if self.param("to", required=False) else first
        if last < first:
            raise ApiError(400, "bad_range", "to 不能早于 from (to must not be before from)")
        tz = self.ctx.tz
        start, end = midnight(first, tz), midnight(last + timedelta(days=1), tz)
        bills = await self.ctx.storage.run(lambda s: s.bills_between(start, end))
        names = await self.names(b.user_id for b in bills if b.user_id is not None)
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="bills-{first}-{last}.csv"')
        self.finish(bills_csv(bills, names, tz))


class AuditHandler(AdminHandler):
    """GET /admin/audit: the newest `num` entries of the audit log, newest first."""

    async def get(self) -> None:
        num = self.num()
        entries = await self.ctx.storage.run(lambda s: audit_log.recent_audit(s, num))
        names = await self.names(e.user_id for e in entries if e.user_id is not None)
        self.reply(
            {
                "code": 200,
                "audit": [
                    {
                        "id": e.id,
                        "time": stamp(e.at, self.ctx.tz),
                        "userId": e.user_id,
                        "username": names.get(e.user_id) if e.user_id is not None else None,
                        "action": e.action,
                        "detail": e.detail,
                    }
                    for e in entries
                ],
            }
        )


# Path, handler: make_app serves each with the app's context.
ROUTES: tuple[tuple[str, type[AdminHandler]], ...] = (
    (r"/admin/piles", PilesHandler),
    (r"/admin/piles/off", PileOffHandler),
    (r"/admin/piles/on", PileOnHandler),
    (r"/admin/piles/stop", PileStopHandler),
    (r"/admin/queues", QueuesHandler),
    (r"/admin/requests/remove", RemoveRequestHandler),
    (r"/admin/reports", ReportsHandler),
    (r"/admin/codes", CodesHandler),
    # The dot is left unescaped so that the route's pattern reads as the documented path; it
    # matches any one character there, which does no harm.
    (r"/admin/bills.csv", BillsCsvHandler),
    (r"/admin/audit", AuditHandler),
)
