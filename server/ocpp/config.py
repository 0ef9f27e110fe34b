"""The [ocpp] section: the uplink to the operator's central system; off without a url."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from controller.config_values import ConfigError, file_path, no_unknown, to_decimal, whole_number


class OcppSettings(NamedTuple):
    """The OCPP 1.6J uplink to the operator's central system (server/ocpp); off without a url."""

    url: str | None = None  # ws:// or wss://: the CSMS endpoint; the station appends /<id>
    charge_point_id: str = ""  # the station's identity at the CSMS (each pile is a connector)
    password: str | None = None  # HTTP Basic (OCPP-J security profile 1, or 2 with wss://)
    cafile: str | None = None  # PEM file of the CA that signed the CSMS's certificate (wss://)
    heartbeat_s: int = 300  # until the CSMS's BootNotification answer says otherwise
    meter_values_s: int = 60  # station seconds between MeterValues of a transaction; 0 = none
    reconnect_max_s: float = 60.0  # the longest pause between connection attempts (real s)


OCPP_KEYS = {"url", "charge_point_id", "password", "cafile", "heartbeat_s", "meter_values_s"}
OCPP_KEYS |= {"reconnect_max_s"}
# The identity ends the URL and is the Basic user name: no '/', no ':', nothing to escape.
_CHARGE_POINT_ID = re.compile(r"[A-Za-z0-9._-]{1,48}")


def parse_ocpp(table: dict[str, Any]) -> OcppSettings:
    no_unknown(table, "ocpp", OCPP_KEYS)
    d = OcppSettings()
    url = table.get("url")
    if url is not None:
        ok = isinstance(url, str) and url.startswith(("ws://", "wss://"))
        host = url.split("://", 1)[1].split("/", 1)[0] if ok else ""
        if not ok or not host or any(c.isspace() for c in url) or "?" in url or "#" in url:
            raise ConfigError(
                "ocpp.url",
                f"{url!r} is not a WebSocket URL: ws:// or wss://, as "
                '"wss://csms.example.com/ocpp" (the station appends /charge_point_id)',
            )
        url = url.rstrip("/")
    cp_id = table.get("charge_point_id", d.charge_point_id)
    if not isinstance(cp_id, str) or (cp_id and not _CHARGE_POINT_ID.fullmatch(cp_id)):
        raise ConfigError(
            "ocpp.charge_point_id", f"{cp_id!r}: 1 to 48 letters, digits, '_', '.' or '-'"
        )
    if url is not None and not cp_id:
        raise ConfigError("ocpp.charge_point_id", "is required with ocpp.url")
    password = table.get("password")
    # OCPP 1.6 security whitepaper, profile 1/2: a password of 16 to 40 characters.
    if password is not None and (
        not isinstance(password, str) or not 16 <= len(password) <= 40 or not password.isprintable()
    ):
        raise ConfigError("ocpp.password", "must be 16 to 40 printable characters")
    cafile = file_path(table, "ocpp", "cafile")
    if cafile is not None and not (url or "").startswith("wss://"):
        raise ConfigError("ocpp.cafile", "is for a wss:// ocpp.url only")
    heartbeat_s = whole_number(table, "ocpp", "heartbeat_s", d.heartbeat_s, 1, 86_400)
    meter_values_s = whole_number(table, "ocpp", "meter_values_s", d.meter_values_s, 0, 86_400)
    reconnect_max_s = float(
        to_decimal(table.get("reconnect_max_s", d.reconnect_max_s), "ocpp.reconnect_max_s")
    )
    if not 0.1 <= reconnect_max_s <= 3600:
        raise ConfigError(
            "ocpp.reconnect_max_s", f"{reconnect_max_s} must be from 0.1 to 3600 seconds"
        )
    return OcppSettings(url, cp_id, password, cafile, heartbeat_s, meter_values_s, reconnect_max_s)
