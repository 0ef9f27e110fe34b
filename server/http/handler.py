"""The base of every HTTP handler of the API: its context, JSON replies and errors, parameters.

PROTOCOL.md decides what the seed document leaves open: JSON bodies with `code` 200 or -1 (and
then `msg` and a stable `error` key) plus the fitting HTTP status; parameters from the query
string, and for POST also from a form or JSON body; the token as the `token` parameter or a
bearer header. Passwords and tokens travel in query strings, so no log line shows them
(server.http.log_redaction). What a body may weigh is bounded by server.http.limits.
"""

from __future__ import annotations

import json
from datetime import tzinfo
from typing import Any, NamedTuple

from controller.storage import AsyncStorage
from server.accounts.accounts import Accounts, Claims
from server.driver_api.hub import Hub
from server.http import log_redaction
from server.http.errors import ApiError
from server.http.limits import MAX_BODY_BYTES, JsonRefused, parse_json, utf8_text

MAX_NUM = 100  # bills per history request (PROTOCOL: a larger num is clamped)
DEFAULT_NUM = 10


class AppContext(NamedTuple):
    accounts: Accounts
    storage: AsyncStorage
    tz: tzinfo  # the station's time zone, for the times the API shows
    hub: Hub | None = None  # the live station; None serves the account and history API only
    max_quantity_kwh: float = 300.0
    cors_origins: tuple[str, ...] = ()  # front ends elsewhere allowed to call (server.cors_origins)


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


def body_too_large() -> ApiError:
    return ApiError(
        413,
        "body_too_large",
        f"请求体超过 {MAX_BODY_BYTES} 字节 (request body over {MAX_BODY_BYTES} bytes)",
    )
