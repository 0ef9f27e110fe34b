"""The [metrics] section: /metrics for Prometheus on a listener of its own; off without a port."""

from __future__ import annotations

from typing import Any, NamedTuple

from controller.config_values import ConfigError, no_unknown, whole_number


class MetricsSettings(NamedTuple):
    """/metrics for Prometheus on a listener of its own; off without a port."""

    port: int | None = None
    host: str = "127.0.0.1"
    # A bearer token the scraper must send; required when host is not a loopback address.
    token: str | None = None


METRICS_KEYS = {"port", "host", "token"}
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def parse_metrics(table: dict[str, Any]) -> MetricsSettings:
    no_unknown(table, "metrics", METRICS_KEYS)
    d = MetricsSettings()
    port = whole_number(table, "metrics", "port", None, 0, 65535) if "port" in table else None
    host = table.get("host", d.host)
    if not isinstance(host, str) or not host:
        raise ConfigError("metrics.host", "must be an address to listen on, as 127.0.0.1")
    token = table.get("token")
    if token is not None and (
        not isinstance(token, str) or len(token) < 16 or not token.isprintable() or " " in token
    ):
        raise ConfigError("metrics.token", "must be 16 or more printable characters, no spaces")
    loopback = host in LOOPBACK_HOSTS or host.startswith("127.")
    if not loopback and token is None:
        raise ConfigError(
            "metrics.token",
            f"is required when metrics.host ({host}) is not a loopback address: /metrics "
            "without a token is served on 127.0.0.1 only",
        )
    return MetricsSettings(port, host, token)
