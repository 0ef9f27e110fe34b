"""No token, password or registration code in a log line, whoever writes it.

The documented API carries passwords and tokens in query strings (PROTOCOL "General"). The
station's access log prints paths only (server.http.app.log_request) and its own messages never
name a secret, but Tornado's lines print the whole request target: "Uncaught exception GET
/admin/reports?…&token=…" with the request's repr, and "400 GET /…?…: Missing argument". So:

- handlers log their uncaught exceptions with the path alone (SafeExceptionLog);
- a filter on Tornado's loggers, and on the station's log handlers, rewrites what is left:
  query strings, bearer headers and anything shaped like a JWT.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import tornado.web

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
TORNADO_LOGGERS = ("tornado.access", "tornado.application", "tornado.general")

_PATTERNS = (
    # A request target's query string: "/user/log?token=…" (the path stays, it names no one).
    (re.compile(r"(/[^\s?'\"]*)\?[^\s'\"]*"), r"\1?" + REDACTED),
    # A bearer credential in a header dump.
    (re.compile(r"(?i)(bearer\s+)[^\s'\",]+"), r"\1" + REDACTED),
    # A JWT wherever it is: three base64url parts, the first two JSON objects ("eyJ").
    (re.compile(r"eyJ[\w-]*\.eyJ[\w-]*\.[\w-]*"), REDACTED),
    # Raw client bytes quoted in a message ("Invalid unicode in token: b'…'").
    (re.compile(r"""\bb(?:'[^']*'|"[^"]*")"""), REDACTED),
    # name=value of a secret parameter outside a URL (a form body quoted in an error).
    (re.compile(r"(?i)\b(token|password|code)=[^&\s'\"]*"), r"\1=" + REDACTED),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, and its traceback text, without what may be a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Formatted here so that it is redacted too; formatters reuse exc_text as it is.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def install(*targets: logging.Logger | logging.Handler) -> None:
    """The filter on Tornado's loggers and on `targets` (the station's log handlers); again
    on something that has it already changes nothing."""
    for target in (*(logging.getLogger(name) for name in TORNADO_LOGGERS), *targets):
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)


class SafeExceptionLog(tornado.web.RequestHandler):
    """A handler whose uncaught exceptions are logged with their path, not the request target
    (Tornado's default prints the query string, and with it the caller's token)."""

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError):
            # Tornado's HTTPErrors (a missing argument, a bad XSRF field) are warnings, as in
            # Tornado, with the path only.
            if value.log_message:
                log.warning(
                    "%d %s %s: %s",
                    value.status_code,
                    self.request.method,
                    self.request.path,
                    redact(value.get_message()),
                )
            return
        log.error(
            "uncaught exception in %s %s (%s)",
            self.request.method,
            self.request.path,
            self.request.remote_ip,
            exc_info=(typ, value, tb),
        )
