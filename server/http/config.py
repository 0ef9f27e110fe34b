"""The [server] section: where the API listens, with what TLS, for which front ends, and the
control loop's cadence and readiness timeout it runs the station with."""

from __future__ import annotations

from typing import Any, NamedTuple

from controller.config_values import (
    ConfigError,
    file_path,
    no_unknown,
    to_decimal,
    whole_number,
)


class ServerSettings(NamedTuple):
    host: str = "127.0.0.1"
    port: int = 8080
    max_quantity_kwh: float = 300.0
    poll_s: float = 1.0  # the control loop's cadence, in station seconds
    # HTTPS and WSS from this certificate chain and key (PEM files); both or neither.
    tls_cert: str | None = None
    tls_key: str | None = None
    # systemd readiness: after the first good poll of every pile, or after this long at most.
    ready_timeout_s: float = 30.0
    # Origins (scheme://host[:port]) of front ends served elsewhere that may call the API from
    # a browser (CORS); the station's own pages are same-origin and need none.
    cors_origins: tuple[str, ...] = ()


def parse_server(table: dict[str, Any]) -> ServerSettings:
    no_unknown(table, "server", SERVER_KEYS)
    d = ServerSettings()
    host = table.get("host", d.host)
    if not isinstance(host, str) or not host:
        raise ConfigError("server.host", "must be an address to listen on, as 0.0.0.0")
    max_kwh = float(
        to_decimal(table.get("max_quantity_kwh", d.max_quantity_kwh), "server.max_quantity_kwh")
    )
    if not 0 < max_kwh <= 10_000:
        raise ConfigError("server.max_quantity_kwh", f"{max_kwh} must be above 0 and at most 10000")
    poll_s = float(to_decimal(table.get("poll_s", d.poll_s), "server.poll_s"))
    if not 0.05 <= poll_s <= 60:
        raise ConfigError("server.poll_s", f"{poll_s} must be from 0.05 to 60 seconds")
    tls_cert = file_path(table, "server", "tls_cert")
    tls_key = file_path(table, "server", "tls_key")
    if (tls_cert is None) != (tls_key is None):
        missing = "server.tls_key" if tls_key is None else "server.tls_cert"
        raise ConfigError(missing, "is required too: TLS needs both a certificate and its key")
    ready_s = float(
        to_decimal(table.get("ready_timeout_s", d.ready_timeout_s), "server.ready_timeout_s")
    )
    if not 0 < ready_s <= 3600:
        raise ConfigError("server.ready_timeout_s", f"{ready_s} must be above 0 and at most 3600")
    port = whole_number(table, "server", "port", d.port, 0, 65535)
    origins = _origins(table.get("cors_origins", []))
    return ServerSettings(host, port, max_kwh, poll_s, tls_cert, tls_key, ready_s, origins)


SERVER_KEYS = {"host", "port", "max_quantity_kwh", "poll_s", "tls_cert", "tls_key"}
SERVER_KEYS |= {"ready_timeout_s", "cors_origins"}


def _origins(value: Any) -> tuple[str, ...]:
    """server.cors_origins: a list of origins as a browser sends them (no path, no slash)."""
    if not isinstance(value, list):
        raise ConfigError("server.cors_origins", 'must be a list, as ["http://192.168.1.20:3000"]')
    origins = []
    for item in value:
        ok = isinstance(item, str) and item.startswith(("http://", "https://"))
        host = item.split("://", 1)[1] if ok else ""
        if not ok or not host or "/" in host or host != host.strip() or "*" in host:
            raise ConfigError(
                "server.cors_origins",
                f"{item!r} is not an origin: scheme://host[:port], as http://192.168.1.20:3000",
            )
        origins.append(item.lower())
    return tuple(origins)
