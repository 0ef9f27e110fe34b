"""What the station accepts from a client, in one place: sizes, nesting, and JSON parsing.

Every limit here is listed with its number in docs/reliability.md ("Security"). Input beyond a
limit is refused with a 4xx and a stable `error` key, never a 500 or a dropped connection,
except where Tornado itself stops reading (MAX_HEADER_READ_BYTES, MAX_BODY_READ_BYTES): what it
will not read it cannot answer, so it closes the connection instead.
"""

from __future__ import annotations

import json
from typing import Any

# The request line's target (path and query). The documented API carries passwords (at most
# 256 characters, up to 9 bytes each once percent-encoded) and tokens in it: 8 KiB is plenty
# and is the common default of web servers (nginx, Apache).
MAX_URL_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 16 * 1024  # every header line together
# Tornado reads this much of a request's head before it gives up and closes the connection
# (its max_header_size, 64 KiB by default): far above the two limits above, so that a URL or
# headers over them get an answer (414, 431) rather than a reset.
MAX_HEADER_READ_BYTES = 256 * 1024
MAX_BODY_BYTES = 16 * 1024  # a body the API reads: a form or JSON object of a few fields
# Tornado's max_body_size (100 MB by default): a body declared or sent beyond it is refused by
# Tornado before any handler runs, with a bare 400 and a closed connection. Between the two,
# the body is read and answered with 413 body_too_large.
MAX_BODY_READ_BYTES = 64 * 1024
MAX_BUFFER_BYTES = 1024 * 1024  # Tornado's read buffer per connection (100 MB by default)
MAX_JSON_DEPTH = 32  # nested arrays and objects; the API's bodies and messages are flat
IDLE_CONNECTION_TIMEOUT_S = 120.0  # a kept-alive HTTP connection with no request is closed
BODY_TIMEOUT_S = 30.0  # a body of at most 64 KiB takes milliseconds on the station's LAN


class JsonRefused(ValueError):
    """Client JSON the station does not take: `error` is the stable key, `msg` the sentence."""

    def __init__(self, error: str, msg: str) -> None:
        super().__init__(msg)
        self.error = error
        self.msg = msg


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); Python's parser accepts them unless told.
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of `text`; JsonRefused `bad_json` or `too_deep` otherwise.

    Python's parser recurses once per level and raises RecursionError near a thousand levels:
    that is caught, and anything over max_depth levels is refused as well, so that no code
    after this ever walks a deep structure."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except ValueError:  # UnicodeDecodeError and digit strings over Python's limit too
        raise JsonRefused("bad_json", "不是 JSON (not JSON)") from None
    if depth_over(value, max_depth):
        raise _too_deep(max_depth)
    return value


def _too_deep(max_depth: int) -> JsonRefused:
    return JsonRefused(
        "too_deep", f"JSON 嵌套超过 {max_depth} 层 (JSON nested deeper than {max_depth} levels)"
    )


def depth_over(value: Any, max_depth: int) -> bool:
    """Whether arrays and objects nest deeper than max_depth in `value`; without recursion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            if depth > max_depth:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return False


def utf8_text(value: str) -> bool:
    """Whether `value` can be stored and hashed: JSON's \\ud800 escapes make lone surrogates,
    which no UTF-8 encoder (SQLite's, scrypt's) accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
