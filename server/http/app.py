"""The station's HTTP API on Tornado: the documented account and history endpoints.

PROTOCOL.md decides what the seed document leaves open: JSON bodies with `code` 200 or -1 (and
then `msg` and a stable `error` key) plus the fitting HTTP status; parameters from the query
string, and for POST also from a form or JSON body; the token as the `token` parameter or a
bearer header. Passwords and tokens travel in query strings, so the access log prints paths
without them, and no other log line shows them either (server.http.log_redaction). What a request
may weigh (URL, headers, body, JSON nesting) is bounded by server.http.limits, checked here.
"""

from __future__ import annotations

import json
import logging
from datetime import tzinfo
from typing import Any, NamedTuple

import tornado.httputil
import tornado.web
from tornado.httpserver import HTTPServer

from controller.storage import AsyncStorage
from server.accounts.accounts import Accounts, Claims
from server.driver_api.bills_view import log_entry, lognew_entry
from server.driver_api.charge_ws import MAX_MESSAGE_BYTES, ChargeSocket
from server.driver_api.hub import Hub
from server.http import log_redaction
from server.http.errors import ApiError
from server.http.limits import (
    BODY_TIMEOUT_S,
    IDLE_CONNECTION_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_BODY_READ_BYTES,
    MAX_BUFFER_BYTES,
    MAX_HEADER_READ_BYTES,
    MAX_HEADERS_BYTES,
    MAX_URL_BYTES,
    JsonRefused,
    parse_json,
    utf8_text,
)

log = logging.getLogger(__name__)
access_log = logging.getLogger("server.access")

MAX_NUM = 100  # bills per history request (PROTOCOL: a larger num is clamped)
DEFAULT_NUM = 10


class AppContext(NamedTuple):
    accounts: Accounts
    storage: AsyncStorage
    tz: tzinfo  # the station's time zone, for the times the API shows
    hub: Hub | None = None  # the live station; None serves the account and history API only
    max_quantity_kwh: float = 300.0
    cors_origins: tuple[str, ...] = ()  # front ends elsewhere allowed to call (server.cors_origins)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """The access log line: the path only; the query string may hold a password or a token."""
    request = handler.request
    access_log.info(
        "%d %s %s (%s) %.1f ms",
        handler.get_status(),
        request.method,
        request.path,
        request.remote_ip,
        1000 * request.request_time(),
    )


class ApiHandler(log_redaction.SafeExceptionLog):
    ctx: AppContext

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._json_body: dict[str, Any] | None = None
        self._allow_origin()

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        if hasattr(self, "ctx"):  # headers are reset before an error reply: CORS again
            self._allow_origin()

    # -- CORS (server.cors_origins) --------------------------------------------------------------
    def _origin_allowed(self) -> str | None:
        origin = self.request.headers.get("Origin")
        if origin is not None and origin.lower() in self.ctx.cors_origins:
            return origin
        return None

    def _allow_origin(self) -> None:
        self.set_header("Vary", "Origin")
        origin = self._origin_allowed()
        if origin is not None:
            self.set_header("Access-Control-Allow-Origin", origin)

    def options(self, *args: Any) -> None:
        """A browser's preflight for a front end served elsewhere: allowed only for the
        configured origins, and only the API's methods and headers."""
        if self._origin_allowed() is None:
            raise ApiError(
                403,
                "origin_not_allowed",
                "此来源不允许跨域访问 (origin not in server.cors_origins)",
            )
        self.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    # -- replies -------------------------------------------------------------------------------
    def reply(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        # json.dumps, not self.write(dict): /user/log answers a bare list, as clients expect.
        self.finish(json.dumps(body, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every failure is a JSON error object; never a traceback page."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):  # AccountError is one too
            status, error, msg = exc.status, exc.error, exc.msg
        elif status_code == 404:
            status, error, msg = 404, "not_found", "没有这个接口 (no such endpoint)"
        elif status_code == 405:
            status, error, msg = 405, "method_not_allowed", "请求方法不对 (wrong method)"
        elif status_code < 500:
            status, error, msg = status_code, "bad_request", self._reason
        else:
            status, error, msg = 500, "internal", "服务器内部错误 (internal error)"
        self.set_status(status)
        self.finish(json.dumps({"code": -1, "msg": msg, "error": error}, ensure_ascii=False))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ApiError):
            return  # an answer, not a failure of the server
        super().log_exception(typ, value, tb)

    # -- parameters ----------------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        if self._json_body is None:
            if len(self.request.body) > MAX_BODY_BYTES:  # a chunked body has no length to check
                raise body_too_large()
            self._json_body = {}
            content_type = self.request.headers.get("Content-Type", "")
            if self.request.body and content_type.startswith("application/json"):
                try:
                    data = parse_json(self.request.body)
                except JsonRefused as exc:
                    msg = (
                        "请求体不是 JSON (body is not JSON)" if exc.error == "bad_json" else exc.msg
                    )
                    raise ApiError(400, exc.error, msg) from None
                if not isinstance(data, dict):
                    raise ApiError(400, "bad_json", "请求体须是 JSON 对象 (body must be an object)")
                self._json_body = data
        return self._json_body

    def param(self, name: str, *, required: bool = True) -> str | None:
        """A string parameter: query string, then (POST) form body, then JSON body."""
        values = self.request.query_arguments.get(name)
        if not values and self.request.method == "POST":
            body = self._body()  # first: it refuses a body over the limit, of any type
            values = self.request.body_arguments.get(name)
            if not values and name in body:
                value = body[name]
                if not isinstance(value, str) or not utf8_text(value):
                    raise ApiError(
                        400, f"bad_{name}", f"参数 {name} 须是 UTF-8 字符串 (must be a string)"
                    )
                return value
        if not values:
            if required:
                raise ApiError(400, f"missing_{name}", f"缺少参数 {name} (missing {name})")
            return None
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, f"bad_{name}", f"参数 {name} 不是 UTF-8 (not UTF-8)") from None

    def claims(self) -> Claims:
        """The caller's claims from the `token` parameter or an `Authorization: Bearer` header."""
        token = self.param("token", required=False)
        if token is None:
            header = self.request.headers.get("Authorization", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        if not token:
            raise ApiError(401, "missing_token", "缺少 token (missing token)")
        return self.ctx.accounts.verify(token)

    def num(self) -> int:
        text = self.param("num", required=False)
        if text is None or text == "":
            return DEFAULT_NUM
        bad = ApiError(400, "bad_num", "num 须是 1 以上的整数 (num: a whole number from 1)")
        try:
            value = int(text)
        except ValueError:
            raise bad from None
        if value < 1:
            raise bad
        return min(value, MAX_NUM)


class LoginHandler(ApiHandler):
    async def post(self) -> None:
        username = self.param("username")
        password = self.param("password")
        assert username is not None and password is not None
        token = await self.ctx.accounts.login(username, password, self.request.remote_ip or "")
        self.reply({"code": 200, "token": token})


class RegisterHandler(ApiHandler):
    async def post(self) -> None:
        username = self.param("username")
        password = self.param("password")
        code = self.param("code")
        assert username is not None and password is not None and code is not None
        token = await self.ctx.accounts.register(
            username, password, code, self.request.remote_ip or ""
        )
        self.reply({"code": 200, "token": token})


class LogHandler(ApiHandler):
    """GET /user/log: the caller's bills, newest first, as a bare JSON list."""

    async def get(self) -> None:
        claims = self.claims()
        bills = await self.ctx.storage.bills_of(claims.user_id, self.num())
        self.reply([log_entry(b, self.ctx.tz) for b in bills])


class LogNewHandler(ApiHandler):
    async def get(self) -> None:
        claims = self.claims()
        bills = await self.ctx.storage.bills_of(claims.user_id, self.num())
        self.reply({"code": 200, "log": [lognew_entry(b, self.ctx.tz) for b in bills]})


class StationHandler(ApiHandler):
    """GET /station: what a front end needs to know before a request (no token): the limits
    the station checks, and its piles."""

    def get(self) -> None:
        hub = self.ctx.hub
        if hub is None or hub.door is None:
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
        if hub is None or hub.door is None:
            raise ApiError(503, "station_not_ready", "充电站未运行 (the station is not running)")
        view = hub.door.request_of(str(claims.user_id))
        self.reply({"code": 200, "request": None if view is None else hub.state(view)})


class NotFoundHandler(ApiHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


def body_too_large() -> ApiError:
    return ApiError(
        413,
        "body_too_large",
        f"请求体超过 {MAX_BODY_BYTES} 字节 (request body over {MAX_BODY_BYTES} bytes)",
    )


def oversized(request: tornado.httputil.HTTPServerRequest) -> ApiError | None:
    """The refusal of a request whose URL, headers or declared body are over the limits, read
    from its head alone: the handler then never runs, whatever the path."""
    if len(request.uri or "") > MAX_URL_BYTES:  # latin-1 text: one character a byte
        return ApiError(
            414, "url_too_long", f"URL 超过 {MAX_URL_BYTES} 字节 (URL over {MAX_URL_BYTES} bytes)"
        )
    headers_bytes = sum(len(k) + len(v) + 4 for k, v in request.headers.get_all())
    if headers_bytes > MAX_HEADERS_BYTES:
        return ApiError(
            431,
            "headers_too_large",
            f"请求头超过 {MAX_HEADERS_BYTES} 字节 (headers over {MAX_HEADERS_BYTES} bytes)",
        )
    try:
        declared = int(request.headers.get("Content-Length", "0"))
    except ValueError:
        declared = 0  # Tornado refuses the request itself
    if declared > MAX_BODY_BYTES:
        return body_too_large()
    return None


class RefusedHandler(ApiHandler):
    """Answers a request refused by `oversized`, on any path and with any method."""

    def initialize(self, ctx: AppContext, refusal: ApiError) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.refusal = refusal

    def prepare(self) -> None:
        raise self.refusal


class StationApplication(tornado.web.Application):
    """The routes, behind the size limits of the request's head (server.http.limits)."""

    def __init__(self, ctx: AppContext, routes: list[Any], **settings: Any) -> None:
        super().__init__(routes, **settings)
        self.ctx = ctx

    def find_handler(self, request: tornado.httputil.HTTPServerRequest, **kwargs: Any) -> Any:
        refusal = oversized(request)
        if refusal is not None:
            return self.get_handler_delegate(
                request, RefusedHandler, {"ctx": self.ctx, "refusal": refusal}
            )
        return super().find_handler(request, **kwargs)


def make_server(app: tornado.web.Application, ssl_options: Any = None) -> HTTPServer:
    """The HTTP server for `app` with Tornado's own limits set (server.http.limits): its defaults
    would read a 100 MB body, and reset a connection whose head is over 64 KiB."""
    return HTTPServer(
        app,
        ssl_options=ssl_options,
        max_header_size=MAX_HEADER_READ_BYTES,
        max_body_size=MAX_BODY_READ_BYTES,
        max_buffer_size=MAX_BUFFER_BYTES,
        idle_connection_timeout=IDLE_CONNECTION_TIMEOUT_S,
        body_timeout=BODY_TIMEOUT_S,
    )


def make_app(ctx: AppContext) -> tornado.web.Application:
    routes: list[Any] = [
        (r"/login", LoginHandler, {"ctx": ctx}),
        (r"/register", RegisterHandler, {"ctx": ctx}),
        (r"/user/log", LogHandler, {"ctx": ctx}),
        (r"/user/lognew", LogNewHandler, {"ctx": ctx}),
        (r"/user/request", RequestStateHandler, {"ctx": ctx}),
        (r"/station", StationHandler, {"ctx": ctx}),
    ]
    # The operator API is always served, so that the served routes are the documented ones;
    # what needs the live station answers 503 station_not_ready without a hub. Imported here:
    # its handlers build on ApiHandler above.
    from server.operator_api.admin import ROUTES as ADMIN_ROUTES

    routes += [(path, handler, {"ctx": ctx}) for path, handler in ADMIN_ROUTES]
    if ctx.hub is not None:
        routes.append(
            (
                r"/user/charge",
                ChargeSocket,
                {
                    "hub": ctx.hub,
                    # Drivers only: an operator may not queue a car (Accounts.verify_driver).
                    "verify": ctx.accounts.verify_driver,
                    "max_quantity_kwh": ctx.max_quantity_kwh,
                },
            )
        )
        # The live station's face: the web app and the operators' live feed.
        from server.http.pages import page_routes
        from server.operator_api.admin_live import LiveSocket, OperatorFeed

        assert ctx.hub.door is not None, "the hub is attached to the station's door first"
        feed = OperatorFeed(ctx.hub.door, ctx.storage, ctx.tz, ctx.hub.wall_clock)
        routes.append((r"/admin/live", LiveSocket, {"feed": feed, "verify": ctx.accounts.verify}))
        routes += page_routes()
    log_redaction.install()
    return StationApplication(
        ctx,
        routes,
        # Above the API's 4 KiB, so that an oversized message gets an error message (see
        # charge_ws) rather than a dropped connection; far above it, Tornado closes the socket.
        websocket_max_message_size=16 * MAX_MESSAGE_BYTES,
        default_handler_class=NotFoundHandler,
        default_handler_args={"ctx": ctx},
        log_function=log_request,
        # The app's scripts and styles (and long bill lists) travel gzipped to browsers that
        # ask: a phone on a weak station Wi-Fi loads the app in a third of the bytes.
        compress_response=True,
    )
