"""The station's HTTP application on Tornado: its routes, the limits of a request's head, the
access log, and the HTTP server with Tornado's own limits (server.http.limits).

Passwords and tokens travel in query strings, so the access log prints paths without them, and
no other log line shows them either (server.http.log_redaction).
"""

from __future__ import annotations

import logging
from typing import Any

import tornado.httputil
import tornado.web
from tornado.httpserver import HTTPServer

from server.accounts.handlers import LoginHandler, RegisterHandler
from server.driver_api.charge_ws import MAX_MESSAGE_BYTES, ChargeSocket
from server.driver_api.handlers import (
    LogHandler,
    LogNewHandler,
    RequestStateHandler,
    StationHandler,
)
from server.http import log_redaction
from server.http.errors import ApiError
from server.http.handler import ApiHandler, AppContext, body_too_large
from server.http.limits import (
    BODY_TIMEOUT_S,
    IDLE_CONNECTION_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_BODY_READ_BYTES,
    MAX_BUFFER_BYTES,
    MAX_HEADER_READ_BYTES,
    MAX_HEADERS_BYTES,
    MAX_URL_BYTES,
)
from server.http.pages import page_routes
from server.operator_api.admin import ROUTES as ADMIN_ROUTES
from server.operator_api.admin_live import LiveSocket, OperatorFeed

access_log = logging.getLogger("server.access")


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


class NotFoundHandler(ApiHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


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


def make_app(ctx: AppContext, feed: OperatorFeed | None = None) -> tornado.web.Application:
    """The station's routes; with the live station (`ctx.hub`), its operators' `feed` too."""
    routes: list[Any] = [
        (r"/login", LoginHandler, {"ctx": ctx}),
        (r"/register", RegisterHandler, {"ctx": ctx}),
        (r"/user/log", LogHandler, {"ctx": ctx}),
        (r"/user/lognew", LogNewHandler, {"ctx": ctx}),
        (r"/user/request", RequestStateHandler, {"ctx": ctx}),
        (r"/station", StationHandler, {"ctx": ctx}),
    ]
    # The operator API is always served, so that the served routes are the documented ones;
    # what needs the live station answers 503 station_not_ready without a hub.
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
        if feed is None:
            raise ValueError("the live station's app needs the operators' feed with its hub")
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
