"""The station's TOML configuration: loaded once, validated, every error naming its key.

Defaults are the brief's station (RULES §1) and tariff (RULES §6).
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, NamedTuple

from controller.config_values import ConfigError
from controller.tariff import (
    DEFAULT_PERIODS,
    DEFAULT_PRICES_YUAN,
    DEFAULT_SERVICE_YUAN,
    Period,
    Tariff,
    check_cover,
)
from controller.units import PRICE_UNITS_PER_YUAN
from controller.values import Dispatch, FaultPolicy, Mode

if TYPE_CHECKING:
    from controller.site_config import SiteSettings

MAX_POWER_KW = Decimal(1000)  # no pile built today delivers more than a megawatt
MAX_PRICE_YUAN = Decimal(1000)


class StationSettings(NamedTuple):
    waiting_area_size: int = 6
    pile_queue_len: int = 2
    fault_policy: FaultPolicy = FaultPolicy.PRIORITY
    dispatch: Dispatch = Dispatch.SHORTEST
    # A called car that has not plugged in after this long loses its turn (RULES §3); 0 = never.
    plug_timeout_s: int = 600


class PileConfig(NamedTuple):
    id: int  # the API's stationId
    name: str
    mode: Mode
    power_w: int
    # How the station reaches it (the replay ignores these): "sim" is the simulator's pile model
    # in process; tcp://... and rtu://... are Modbus links (drivers.link_spec).
    link: str = "sim"
    unit: int = 1  # Modbus unit id on the link
    profile: str = "reference"  # or "evse-wb" (with an Eastron meter on meter_unit)
    meter_unit: int | None = None
    meter: str = "sdm630"  # or "sdm120"
    phases: int = 3  # evse-wb
    # reference: the pile stops a session by itself if no heartbeat comes for this long
    # (station seconds; 0 turns its watchdog off). The EVSE-WB-DIN has none (docs/reliability.md).
    watchdog_s: int = 10
    # RULES §9: a session whose share of the site's power would be below this is paused.
    min_power_w: int = 0


class ClockSettings(NamedTuple):
    scale: float = 1.0  # the station's time runs this many times faster (bench runs)


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


class AccountSettings(NamedTuple):
    # A fixed registration code makes a *bench* configuration (PROTOCOL.md); never the default.
    bench_registration_code: str | None = None
    token_ttl_s: int = 7 * 24 * 3600


class OcppSettings(NamedTuple):
    """The OCPP 1.6J uplink to the operator's central system (server/ocpp); off without a url."""

    url: str | None = None  # ws:// or wss://: the CSMS endpoint; the station appends /<id>
    charge_point_id: str = ""  # the station's identity at the CSMS (each pile is a connector)
    password: str | None = None  # HTTP Basic (OCPP-J security profile 1, or 2 with wss://)
    cafile: str | None = None  # PEM file of the CA that signed the CSMS's certificate (wss://)
    heartbeat_s: int = 300  # until the CSMS's BootNotification answer says otherwise
    meter_values_s: int = 60  # station seconds between MeterValues of a transaction; 0 = none
    reconnect_max_s: float = 60.0  # the longest pause between connection attempts (real s)


class MetricsSettings(NamedTuple):
    """/metrics for Prometheus on a listener of its own; off without a port."""

    port: int | None = None
    host: str = "127.0.0.1"
    # A bearer token the scraper must send; required when host is not a loopback address.
    token: str | None = None


DEFAULT_PILES = (
    PileConfig(1, "A", Mode.FAST, 30_000),
    PileConfig(2, "B", Mode.FAST, 30_000),
    PileConfig(3, "C", Mode.COMMON, 7_000),
    PileConfig(4, "D", Mode.COMMON, 7_000),
    PileConfig(5, "E", Mode.COMMON, 7_000),
)


class Config(NamedTuple):
    station: StationSettings
    tariff: Tariff
    piles: tuple[PileConfig, ...]
    clock: ClockSettings = ClockSettings()
    server: ServerSettings = ServerSettings()
    accounts: AccountSettings = AccountSettings()
    ocpp: OcppSettings = OcppSettings()
    metrics: MetricsSettings = MetricsSettings()
    site: SiteSettings | None = None  # RULES §9: without it, every session has its rated power


def default_config() -> Config:
    """The brief's station: RULES §1 piles and areas, RULES §6 tariff."""
    return Config(StationSettings(), parse_tariff({}), DEFAULT_PILES)


def load_config(path: str) -> Config:
    """Read and validate a configuration file; ConfigError names the key and the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(path, f"cannot read the file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text ({exc.reason})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"not valid TOML: {exc}") from exc
    return parse_config(data)


# The keys each table accepts (the tables' own, and every [[piles]] table's: PILE_KEYS).
SECTION_KEYS = {"station", "tariff", "piles", "clock", "server", "accounts"}
SECTION_KEYS |= {"ocpp", "metrics", "site"}
CLOCK_KEYS = {"scale"}
ACCOUNT_KEYS = {"bench_registration_code", "token_ttl_s"}
TARIFF_KEYS = {"service_fee", "prices", "periods"}


def parse_config(data: dict[str, Any]) -> Config:
    _no_unknown(data, "", SECTION_KEYS)
    station = parse_station(_table(data, "station", "station"))
    tariff = parse_tariff(_table(data, "tariff", "tariff"))
    piles = parse_piles(data["piles"]) if "piles" in data else DEFAULT_PILES
    clock = _table(data, "clock", "clock")
    _no_unknown(clock, "clock", CLOCK_KEYS)
    scale = float(_to_decimal(clock.get("scale", 1), "clock.scale"))
    if not 0 < scale <= 10_000:
        raise ConfigError("clock.scale", f"{scale} must be above 0 and at most 10000")
    return Config(
        station,
        tariff,
        piles,
        ClockSettings(scale),
        parse_server(_table(data, "server", "server")),
        parse_accounts(_table(data, "accounts", "accounts")),
        parse_ocpp(_table(data, "ocpp", "ocpp")),
        parse_metrics(_table(data, "metrics", "metrics")),
        _site(data),
    )


def _site(data: dict[str, Any]) -> SiteSettings | None:
    if "site" not in data:
        return None
    # Read only when present: a replay without a site limit does not load it.
    from controller.site_config import parse_site

    return parse_site(_table(data, "site", "site"))


def parse_server(table: dict[str, Any]) -> ServerSettings:
    _no_unknown(table, "server", SERVER_KEYS)
    d = ServerSettings()
    host = table.get("host", d.host)
    if not isinstance(host, str) or not host:
        raise ConfigError("server.host", "must be an address to listen on, as 0.0.0.0")
    max_kwh = float(
        _to_decimal(table.get("max_quantity_kwh", d.max_quantity_kwh), "server.max_quantity_kwh")
    )
    if not 0 < max_kwh <= 10_000:
        raise ConfigError("server.max_quantity_kwh", f"{max_kwh} must be above 0 and at most 10000")
    poll_s = float(_to_decimal(table.get("poll_s", d.poll_s), "server.poll_s"))
    if not 0.05 <= poll_s <= 60:
        raise ConfigError("server.poll_s", f"{poll_s} must be from 0.05 to 60 seconds")
    tls_cert = _path(table, "server", "tls_cert")
    tls_key = _path(table, "server", "tls_key")
    if (tls_cert is None) != (tls_key is None):
        missing = "server.tls_key" if tls_key is None else "server.tls_cert"
        raise ConfigError(missing, "is required too: TLS needs both a certificate and its key")
    ready_s = float(
        _to_decimal(table.get("ready_timeout_s", d.ready_timeout_s), "server.ready_timeout_s")
    )
    if not 0 < ready_s <= 3600:
        raise ConfigError("server.ready_timeout_s", f"{ready_s} must be above 0 and at most 3600")
    port = _int(table, "server", "port", d.port, 0, 65535)
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


def _path(table: dict[str, Any], where: str, key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(_key(where, key), "must be the path of a file")
    return value


def parse_accounts(table: dict[str, Any]) -> AccountSettings:
    _no_unknown(table, "accounts", ACCOUNT_KEYS)
    code = table.get("bench_registration_code")
    if code is not None and (not isinstance(code, str) or len(code) < 8):
        raise ConfigError(
            "accounts.bench_registration_code", "must be text of 8 characters or more"
        )
    ttl = _int(table, "accounts", "token_ttl_s", AccountSettings().token_ttl_s, 60, 365 * 24 * 3600)
    return AccountSettings(code, ttl)


OCPP_KEYS = {"url", "charge_point_id", "password", "cafile", "heartbeat_s", "meter_values_s"}
OCPP_KEYS |= {"reconnect_max_s"}
# The identity ends the URL and is the Basic user name: no '/', no ':', nothing to escape.
_CHARGE_POINT_ID = re.compile(r"[A-Za-z0-9._-]{1,48}")


def parse_ocpp(table: dict[str, Any]) -> OcppSettings:
    _no_unknown(table, "ocpp", OCPP_KEYS)
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
    cafile = _path(table, "ocpp", "cafile")
    if cafile is not None and not (url or "").startswith("wss://"):
        raise ConfigError("ocpp.cafile", "is for a wss:// ocpp.url only")
    heartbeat_s = _int(table, "ocpp", "heartbeat_s", d.heartbeat_s, 1, 86_400)
    meter_values_s = _int(table, "ocpp", "meter_values_s", d.meter_values_s, 0, 86_400)
    reconnect_max_s = float(
        _to_decimal(table.get("reconnect_max_s", d.reconnect_max_s), "ocpp.reconnect_max_s")
    )
    if not 0.1 <= reconnect_max_s <= 3600:
        raise ConfigError(
            "ocpp.reconnect_max_s", f"{reconnect_max_s} must be from 0.1 to 3600 seconds"
        )
    return OcppSettings(url, cp_id, password, cafile, heartbeat_s, meter_values_s, reconnect_max_s)


METRICS_KEYS = {"port", "host", "token"}
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def parse_metrics(table: dict[str, Any]) -> MetricsSettings:
    _no_unknown(table, "metrics", METRICS_KEYS)
    d = MetricsSettings()
    port = _int(table, "metrics", "port", None, 0, 65535) if "port" in table else None
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


def parse_station(table: dict[str, Any]) -> StationSettings:
    _no_unknown(table, "station", STATION_KEYS)
    d = StationSettings()
    return StationSettings(
        waiting_area_size=_int(
            table, "station", "waiting_area_size", d.waiting_area_size, 1, 100_000
        ),
        pile_queue_len=_int(table, "station", "pile_queue_len", d.pile_queue_len, 1, 1000),
        fault_policy=_enum(table, "station", "fault_policy", FaultPolicy, d.fault_policy),
        dispatch=_enum(table, "station", "dispatch", Dispatch, d.dispatch),
        plug_timeout_s=_int(table, "station", "plug_timeout_s", d.plug_timeout_s, 0, 86_400),
    )


STATION_KEYS = {"waiting_area_size", "pile_queue_len", "fault_policy", "dispatch"}
STATION_KEYS |= {"plug_timeout_s"}


def parse_piles(value: Any) -> tuple[PileConfig, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError("piles", "must be one or more [[piles]] tables")
    piles: list[PileConfig] = []
    for i, table in enumerate(value):
        where = f"piles[{i}]"
        if not isinstance(table, dict):
            raise ConfigError(where, "must be a table ([[piles]])")
        _no_unknown(table, where, PILE_KEYS)
        for key in ("id", "name", "mode", "power_kw"):
            if key not in table:
                raise ConfigError(f"{where}.{key}", "is required")
        pile_id = _int(table, where, "id", None, 1, 2**31 - 1)
        name = table["name"]
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}.name", "must be a non-empty string")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ConfigError(f"{where}.name", f"{name!r}: use letters, digits, '_', '.' or '-'")
        mode = _enum(table, where, "mode", Mode, None)
        power_kw = _decimal(table, where, "power_kw")
        if not Decimal(0) < power_kw <= MAX_POWER_KW:
            raise ConfigError(f"{where}.power_kw", f"{power_kw} must be above 0 and at most 1000")
        power_w = power_kw * 1000
        if power_w != power_w.to_integral_value():
            raise ConfigError(f"{where}.power_kw", f"{power_kw} must be a whole number of watts")
        for other in piles:
            if other.id == pile_id:
                raise ConfigError(
                    f"{where}.id", f"{pile_id} is already the id of pile {other.name}"
                )
            if other.name == name:
                raise ConfigError(f"{where}.name", f"{name!r} is already used by pile {other.id}")
        min_w = _min_power_w(table, where)
        piles.append(
            PileConfig(
                pile_id, name, mode, int(power_w), *_pile_link(table, where), min_power_w=min_w
            )
        )
    for i, p in enumerate(piles):
        for other in piles[:i]:
            if p.link != "sim" and (p.link, p.unit) == (other.link, other.unit):
                raise ConfigError(
                    f"piles[{i}].unit", f"unit {p.unit} on {p.link} is pile {other.name}'s"
                )
    return tuple(piles)


def _min_power_w(table: dict[str, Any], where: str) -> int:
    if "min_power_kw" not in table:
        return 0
    from controller.site_config import watts  # read only when present, as [site]

    return watts(table, where, "min_power_kw", MAX_POWER_KW)


PILE_KEYS = {"id", "name", "mode", "power_kw", "link", "unit", "profile", "meter_unit", "meter"}
PILE_KEYS |= {"phases", "watchdog_s", "min_power_kw"}


def _pile_link(
    table: dict[str, Any], where: str
) -> tuple[str, int, str, int | None, str, int, int]:
    """link, unit, profile, meter_unit, meter, phases, watchdog_s of one [[piles]] table."""
    link = table.get("link", "sim")
    if not isinstance(link, str):
        raise ConfigError(f"{where}.link", 'must be "sim", "tcp://HOST:PORT" or "rtu:///dev/PORT"')
    if link != "sim":
        from drivers.link_spec import parse_link  # light: no pymodbus

        try:
            parse_link(link)
        except ValueError as exc:
            raise ConfigError(f"{where}.link", str(exc)) from None
    unit = _int(table, where, "unit", 1, 1, 247)
    profile = table.get("profile", "reference")
    if profile not in ("reference", "evse-wb"):
        raise ConfigError(f"{where}.profile", f"{profile!r} is not one of reference, evse-wb")
    meter_unit = _int(table, where, "meter_unit", None, 1, 247) if "meter_unit" in table else None
    if profile == "evse-wb" and link != "sim" and meter_unit is None:
        raise ConfigError(f"{where}.meter_unit", "an evse-wb pile needs the unit id of its meter")
    if meter_unit is not None and meter_unit == unit:
        raise ConfigError(f"{where}.meter_unit", "must differ from the pile's own unit")
    meter = table.get("meter", "sdm630")
    if meter not in ("sdm630", "sdm120"):
        raise ConfigError(f"{where}.meter", f"{meter!r} is not one of sdm630, sdm120")
    phases = _int(table, where, "phases", 3, 1, 3)
    if phases == 2:
        raise ConfigError(f"{where}.phases", "must be 1 or 3")
    watchdog_s = _int(
        table, where, "watchdog_s", PileConfig._field_defaults["watchdog_s"], 0, 0xFFFF
    )
    if "watchdog_s" in table and profile != "reference":
        raise ConfigError(f"{where}.watchdog_s", f"a {profile} pile has no watchdog")
    return link, unit, profile, meter_unit, meter, phases, watchdog_s


def parse_tariff(table: dict[str, Any]) -> Tariff:
    _no_unknown(table, "tariff", TARIFF_KEYS)
    service = _price(table.get("service_fee", DEFAULT_SERVICE_YUAN), "tariff.service_fee")
    prices_table = _table(table, "prices", "tariff.prices") or DEFAULT_PRICES_YUAN
    prices = {name: _price(value, f"tariff.prices.{name}") for name, value in prices_table.items()}
    periods_table = _table(table, "periods", "tariff.periods") or DEFAULT_PERIODS
    periods: list[Period] = []
    for name, ranges in periods_table.items():
        key = f"tariff.periods.{name}"
        if name not in prices:
            raise ConfigError(key, f"no price named {name!r} in tariff.prices")
        if not isinstance(ranges, list) or not ranges:
            raise ConfigError(key, 'must be a list of "HH:MM-HH:MM" ranges')
        for j, text in enumerate(ranges):
            start_s, end_s = _range(text, f"{key}[{j}]")
            # A range across midnight (23:00-07:00) is two pieces of the day.
            if end_s <= start_s:
                periods.append(Period(name, start_s, 86_400, prices[name]))
                if end_s > 0:
                    periods.append(Period(name, 0, end_s, prices[name]))
            else:
                periods.append(Period(name, start_s, end_s, prices[name]))
    problem = check_cover(periods)
    if problem:
        raise ConfigError("tariff.periods", f"must cover the whole day exactly once: {problem}")
    return Tariff(tuple(sorted(periods, key=lambda p: p.start_s)), service)


# -- helpers -----------------------------------------------------------------------------------


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _no_unknown(table: dict[str, Any], where: str, known: set[str]) -> None:
    for key in table:
        if key not in known:
            expected = ", ".join(sorted(known))
            raise ConfigError(_key(where, key), f"unknown key (expected one of: {expected})")


def _table(data: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a table")
    return value


def _int(table: dict[str, Any], where: str, key: str, default: int | None, lo: int, hi: int) -> int:
    if key not in table and default is not None:
        return default
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(_key(where, key), f"must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(_key(where, key), f"{value} is out of range {lo}..{hi}")
    return value


def _enum(table: dict[str, Any], where: str, key: str, kind: Any, default: Any) -> Any:
    if key not in table and default is not None:
        return default
    value = table.get(key)
    choices = [m.value for m in kind]
    if value not in choices:
        raise ConfigError(_key(where, key), f"{value!r} is not one of {', '.join(choices)}")
    return kind(value)


def _decimal(table: dict[str, Any], where: str, key: str) -> Decimal:
    return _to_decimal(table.get(key), _key(where, key))


def _to_decimal(value: Any, key: str) -> Decimal:
    # A TOML float is read back through its shortest repr, so 0.7 is exactly 0.7.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(key, f"must be a number, got {value!r}")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        raise ConfigError(key, f"must be a number, got {value!r}") from None
    if not number.is_finite():
        raise ConfigError(key, f"must be a finite number, got {value!r}")
    return number


def _price(value: Any, key: str) -> int:
    yuan = _to_decimal(value, key)
    if not Decimal(0) <= yuan <= MAX_PRICE_YUAN:
        raise ConfigError(key, f"{yuan} yuan per kWh must be from 0 to {MAX_PRICE_YUAN}")
    units = yuan * PRICE_UNITS_PER_YUAN
    if units != units.to_integral_value():
        raise ConfigError(key, f"{yuan} has more than 4 decimal places")
    return int(units)


_RANGE = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")


def _range(text: Any, key: str) -> tuple[int, int]:
    match = _RANGE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ConfigError(key, f'{text!r} is not a range like "07:00-10:00"')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ConfigError(key, f"{text!r} names a time that does not exist")
    start_s, end_s = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if start_s == end_s:
        raise ConfigError(key, f"{text!r} is empty")
    return start_s, end_s % 86_400
