"""The station over the network: HTTP calls and the WebSocket `/user/charge` on Tornado's clients.

Every failure leaves here as a `Failure` with its exit code and a sentence that says which
(connection refused, timeout, certificate not verified, a refusal of the station). Numbers in
the station's JSON are read as Decimal: money is never a float here. The token travels in an
`Authorization: Bearer` header and passwords in a form body, never in a URL.
"""

from __future__ import annotations

import json
import socket
import ssl
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.iostream import StreamClosedError

from server.client.errors import Exit, Failure, refusal

if TYPE_CHECKING:
    from tornado.websocket import WebSocketClientConnection

USER_AGENT = "charge-client/1"
WS_PING_INTERVAL_S = 20.0  # a silent, dead connection (a long wait in the queue) is noticed
Message = dict[str, Any]


def parse_json(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


def normalize_url(text: str) -> str:
    """The station's base address, `http[s]://host[:port][/prefix]`, without a trailing slash."""
    parts = urlsplit(text.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise Failure(
            Exit.USAGE,
            f"{text!r} is not a station address",
            "give it as http://HOST:PORT or https://HOST:PORT",
        )
    if parts.query or parts.fragment:
        raise Failure(Exit.USAGE, f"{text!r}: a station address has no ?query or #fragment")
    try:
        port = parts.port
    except ValueError:
        raise Failure(Exit.USAGE, f"{text!r}: the port is not a number from 0 to 65535") from None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    netloc = host if port is None else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def tls_context(cafile: str | None) -> ssl.SSLContext:
    """Certificates verified, host names checked: against the system's CAs, or with `cafile`
    against that CA only (a station's own CA for its self-signed certificate)."""
    try:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except FileNotFoundError:
        raise Failure(Exit.USAGE, f"CA file {cafile}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise Failure(
            Exit.USAGE,
            f"CA file {cafile} cannot be used: {getattr(exc, 'reason', None) or exc}",
            "give a PEM file with the CA certificate that signed the station's certificate",
        ) from None


@dataclass(frozen=True)
class Target:
    url: str  # as normalize_url gives it
    cafile: str | None
    timeout_s: float

    @property
    def tls(self) -> bool:
        return self.url.startswith("https://")


def unreachable(exc: BaseException, target: Target) -> Failure:
    """A sentence for why there was no answer; the exit code for scripts: UNREACHABLE."""
    where = target.url
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or str(exc)
        if target.cafile:
            hint = f"the station's certificate is not from the CA in {target.cafile}"
        else:
            hint = (
                "if the station has a certificate of its own CA, give that CA's certificate: "
                "--cafile FILE (or CHARGE_STATION_CAFILE)"
            )
        return Failure(
            Exit.UNREACHABLE, f"{where}: TLS certificate verification failed: {detail}", hint
        )
    if isinstance(exc, ssl.SSLError):
        return Failure(
            Exit.UNREACHABLE,
            f"{where}: the TLS handshake failed: {exc.reason or exc}",
            "does the station serve https? (check the address's scheme)",
        )
    if isinstance(exc, TimeoutError) or (isinstance(exc, HTTPClientError) and exc.code == 599):
        # 599: Tornado's timeouts
        hint = "is the address right? a longer wait: --timeout SECONDS"
        if target.tls:
            hint += "; does the station serve https, not http?"
        return Failure(
            Exit.UNREACHABLE, f"{where}: no answer within {target.timeout_s:g} s (timed out)", hint
        )
    if isinstance(exc, ConnectionRefusedError):
        return Failure(
            Exit.UNREACHABLE,
            f"{where}: connection refused",
            "is the station running, and is this its address and port?",
        )
    if isinstance(exc, socket.gaierror):
        return Failure(Exit.UNREACHABLE, f"{where}: unknown host ({exc.strerror})")
    if isinstance(exc, StreamClosedError | ConnectionResetError):
        hint = None if target.tls else "does the station serve https? (check the address)"
        return Failure(Exit.UNREACHABLE, f"{where}: the station closed the connection", hint)
    if isinstance(exc, OSError):
        return Failure(Exit.UNREACHABLE, f"{where}: cannot connect: {exc.strerror or exc}")
    return Failure(Exit.UNREACHABLE, f"{where}: cannot connect: {exc}")


def _refused_by(response_code: int, body: bytes, target: Target) -> Failure:
    """The failure for an answer that is not a success."""
    try:
        data = parse_json(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return refusal(data["error"], str(data.get("msg", "")))
    return Failure(
        Exit.UNREACHABLE,
        f"{target.url} answered HTTP {response_code}, not as a station does",
        "is this the station's address?",
    )


class Station:
    """Calls to one station, with the caller's token if logged in."""

    def __init__(self, target: Target, token: str | None = None) -> None:
        self.target = target
        self.token = token
        self._tls = tls_context(target.cafile) if target.tls else None
        self._http = AsyncHTTPClient()

    def _headers(self, auth: bool) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT}
        if auth:
            if not self.token:
                raise Failure(
                    Exit.AUTH,
                    f"not logged in to {self.target.url}",
                    "charge-client login USERNAME (or register USERNAME --code CODE)",
                )
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def fetch(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        *,
        auth: bool = True,
    ) -> HTTPResponse:
        """A successful answer; anything else raises a Failure."""
        url = self.target.url + path + ("?" + urlencode(query) if query else "")
        headers = self._headers(auth)
        body = None
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(form or {})
        request = HTTPRequest(
            url,
            method=method,
            headers=headers,
            body=body,
            connect_timeout=self.target.timeout_s,
            request_timeout=self.target.timeout_s,
            ssl_options=self._tls,
            follow_redirects=False,
        )
        try:
            response = await self._http.fetch(request, raise_error=False)
        except (OSError, HTTPClientError, StreamClosedError) as exc:
            raise unreachable(exc, self.target) from None
        if response.code == 599 and response.error is not None:
            raise unreachable(response.error, self.target)
        if response.code != 200:
            raise _refused_by(response.code, response.body or b"", self.target)
        return response

    async def call(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        *,
        auth: bool = True,
    ) -> tuple[Any, str]:
        """The JSON answer (numbers as Decimal) and its text as the station sent it."""
        response = await self.fetch(method, path, query, form, auth=auth)
        text = response.body.decode("utf-8", errors="replace")
        try:
            data = parse_json(text)
        except ValueError:
            raise Failure(
                Exit.UNREACHABLE, f"{self.target.url}{path}: the answer is not JSON"
            ) from None
        if isinstance(data, dict) and data.get("code") == -1:
            raise refusal(str(data.get("error", "")), str(data.get("msg", "")))
        return data, text

    async def charge_socket(self, query: dict[str, str]) -> ChargeConnection:
        """/user/charge opened; its first message is the station's answer to the opening."""
        # Imported here: the HTTP-only commands start without the WebSocket code (and Tornado's
        # web framework, which it brings).
        from tornado.websocket import WebSocketError, websocket_connect

        base = "wss" + self.target.url[5:] if self.target.tls else "ws" + self.target.url[4:]
        url = base + "/user/charge" + ("?" + urlencode(query) if query else "")
        request = HTTPRequest(
            url,
            headers=self._headers(True),
            connect_timeout=self.target.timeout_s,
            request_timeout=self.target.timeout_s,
            ssl_options=self._tls,
        )
        try:
            conn = await websocket_connect(request, ping_interval=WS_PING_INTERVAL_S)
        except HTTPClientError as exc:
            if exc.code == 599:
                raise unreachable(exc, self.target) from None
            body = exc.response.body if exc.response is not None else b""
            raise _refused_by(exc.code, body or b"", self.target) from None
        except (OSError, StreamClosedError) as exc:
            raise unreachable(exc, self.target) from None
        except WebSocketError:
            raise Failure(
                Exit.UNREACHABLE,
                f"{self.target.url}: no WebSocket /user/charge there",
                "is this the station's address?",
            ) from None
        return ChargeConnection(conn, self.target)

    def close(self) -> None:
        self._http.close()


class ChargeConnection:
    """One open /user/charge socket: messages in (parsed), operations out."""

    def __init__(self, conn: WebSocketClientConnection, target: Target) -> None:
        self.conn = conn
        self.target = target
        self.last_text = ""  # the last message as the station wrote it (for --json)

    @property
    def close_code(self) -> int | None:
        return self.conn.close_code

    async def receive(self) -> Message | None:
        """The next message; None once the station has closed the socket."""
        text = await self.conn.read_message()
        if text is None:
            return None
        self.last_text = text if isinstance(text, str) else text.decode("utf-8", "replace")
        try:
            message = parse_json(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            raise Failure(
                Exit.UNREACHABLE, f"{self.target.url}: the station sent a message that is not JSON"
            )
        return message

    async def send(self, message: Message) -> None:
        from tornado.websocket import WebSocketClosedError

        try:
            await self.conn.write_message(json.dumps(message))
        except (WebSocketClosedError, StreamClosedError) as exc:
            raise Failure(
                Exit.UNREACHABLE, f"{self.target.url}: lost the connection to the station"
            ) from exc

    def close(self) -> None:
        self.conn.close()
