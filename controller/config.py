"""The station's own sections of the TOML configuration ([station], [tariff], [[piles]],
[clock]): loaded once, validated, every error naming its key.

Defaults are the brief's station (RULES §1) and tariff (RULES §6). The server's components
parse their own sections (server.assembly.config reads the whole file).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

# The readers of one value, under the short names the parsers below have always used.
from controller.config_values import ConfigError
from controller.config_values import decimal_of as _decimal
from controller.config_values import key_name as _key
from controller.config_values import no_unknown as _no_unknown
from controller.config_values import one_of as _enum
from controller.config_values import table_of as _table
from controller.config_values import to_decimal as _to_decimal
from controller.config_values import whole_number as _int
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
from drivers.device_kind import Metering
from drivers.registry import device_keys, meter_kind, meter_names, pile_kind, pile_names

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
    unit: int = 1  # Modbus unit id on the link (by default, its device kind's)
    profile: str = "reference"  # its device kind (drivers.registry, docs/devices.md)
    # The device keys; each kind takes some of them (drivers.registry).
    meter_unit: int | None = None  # its separate meter's unit id, if it has one
    meter: str = "sdm630"  # that meter's kind
    phases: int = 3  # a current-controlled pile's phases: power = current x 230 V x phases
    # A pile with a watchdog stops a session by itself if no heartbeat comes for this long
    # (station seconds; 0 turns its watchdog off). The EVSE-WB-DIN has none (docs/reliability.md).
    watchdog_s: int = 10
    # The link's quiet time before each transaction with the pile's devices and their answer
    # timeout, real seconds; None: each device kind's own (its Timing).
    pause_s: float | None = None
    timeout_s: float | None = None
    # RULES §9: a session whose share of the site's power would be below this is paused.
    min_power_w: int = 0


class ClockSettings(NamedTuple):
    scale: float = 1.0  # the station's time runs this many times faster (bench runs)


DEFAULT_PILES = (
    PileConfig(1, "A", Mode.FAST, 30_000),
    PileConfig(2, "B", Mode.FAST, 30_000),
    PileConfig(3, "C", Mode.COMMON, 7_000),
    PileConfig(4, "D", Mode.COMMON, 7_000),
    PileConfig(5, "E", Mode.COMMON, 7_000),
)


class Config(NamedTuple):
    """The station's own sections; the server's components own theirs (server.assembly.config)."""

    station: StationSettings
    tariff: Tariff
    piles: tuple[PileConfig, ...]
    clock: ClockSettings = ClockSettings()
    site: SiteSettings | None = None  # RULES §9: without it, every session has its rated power


def default_config() -> Config:
    """The brief's station: RULES §1 piles and areas, RULES §6 tariff."""
    return Config(StationSettings(), parse_tariff({}), DEFAULT_PILES)


def load_config(path: str, others: frozenset[str] = frozenset()) -> Config:
    """Read and validate a configuration file's station sections (the sections named in
    `others` are other components': accepted and left alone); ConfigError names the key."""
    return parse_config(read_toml(path), others)


def read_toml(path: str) -> dict[str, Any]:
    """A configuration file's tables; ConfigError when it cannot be read or is not TOML."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(path, f"cannot read the file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text ({exc.reason})") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"not valid TOML: {exc}") from exc


# The keys each table accepts (the tables' own, and every [[piles]] table's: PILE_KEYS).
SECTION_KEYS = {"station", "tariff", "piles", "clock", "site"}
CLOCK_KEYS = {"scale"}
TARIFF_KEYS = {"service_fee", "prices", "periods"}


def parse_config(data: dict[str, Any], others: frozenset[str] = frozenset()) -> Config:
    """The station's sections of a configuration's tables. The sections named in `others`
    belong to other components (server.sections): accepted here, and left to them."""
    _no_unknown(data, "", SECTION_KEYS | others)
    station = parse_station(_table(data, "station", "station"))
    tariff = parse_tariff(_table(data, "tariff", "tariff"))
    piles = parse_piles(data["piles"]) if "piles" in data else DEFAULT_PILES
    clock = _table(data, "clock", "clock")
    _no_unknown(clock, "clock", CLOCK_KEYS)
    scale = float(_to_decimal(clock.get("scale", 1), "clock.scale"))
    if not 0 < scale <= 10_000:
        raise ConfigError("clock.scale", f"{scale} must be above 0 and at most 10000")
    return Config(station, tariff, piles, ClockSettings(scale), _site(data))


def _site(data: dict[str, Any]) -> SiteSettings | None:
    if "site" not in data:
        return None
    # Read only when present: a replay without a site limit does not load it.
    from controller.site_config import parse_site

    return parse_site(_table(data, "site", "site"))


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


PILE_KEYS = {"id", "name", "mode", "power_kw", "link", "unit", "profile", "pause_s", "timeout_s"}
PILE_KEYS |= {"min_power_kw"} | set(device_keys())


def _meter(table: dict[str, Any], where: str) -> str:
    meter = table["meter"]
    if not isinstance(meter, str) or meter_kind(meter) is None:
        raise ConfigError(f"{where}.meter", f"{meter!r} is not one of {', '.join(meter_names())}")
    return meter


def _phases(table: dict[str, Any], where: str) -> int:
    phases = _int(table, where, "phases", None, 1, 3)
    if phases == 2:
        raise ConfigError(f"{where}.phases", "must be 1 or 3")
    return phases


# How each device key is read, and what a pile of a kind that does not take it is told.
_DEVICE_KEYS: dict[str, Callable[[dict[str, Any], str], Any]] = {
    "meter_unit": lambda table, where: _int(table, where, "meter_unit", None, 1, 247),
    "meter": _meter,
    "phases": _phases,
    "watchdog_s": lambda table, where: _int(table, where, "watchdog_s", None, 0, 0xFFFF),
}
_NOT_TAKEN = {
    "meter_unit": "has its own meter and takes no separate one",
    "meter": "has its own meter and takes no separate one",
    "phases": "takes no phases",
    "watchdog_s": "has no watchdog",
}
MAX_TCP_UNIT = 255  # Modbus TCP devices may use every unit id (KEBA answers as 255)
MAX_RTU_UNIT = 247  # on a serial bus 1..247 (0 is broadcast)


def _pile_link(
    table: dict[str, Any], where: str
) -> tuple[str, int, str, int | None, str, int, int, float | None, float | None]:
    """link, unit, profile, meter_unit, meter, phases, watchdog_s, pause_s, timeout_s of one
    [[piles]] table; the profile's keys and defaults come from the device registry."""
    link = table.get("link", "sim")
    if not isinstance(link, str):
        raise ConfigError(f"{where}.link", 'must be "sim", "tcp://HOST:PORT" or "rtu:///dev/PORT"')
    if link != "sim":
        from drivers.link_spec import parse_link  # light: no pymodbus

        try:
            parse_link(link)
        except ValueError as exc:
            raise ConfigError(f"{where}.link", str(exc)) from None
    profile = table.get("profile", "reference")
    kind = pile_kind(profile) if isinstance(profile, str) else None
    if kind is None:
        names = ", ".join(pile_names())
        raise ConfigError(f"{where}.profile", f"{profile!r} is not one of {names}")
    transport = link.partition("://")[0]
    if link != "sim" and transport not in kind.transports:
        over = " or ".join(f"{t}://" for t in sorted(kind.transports))
        raise ConfigError(f"{where}.link", f"{_a(kind.name)} pile is reached over {over} only")
    top = MAX_TCP_UNIT if transport == "tcp" else MAX_RTU_UNIT
    unit = _int(table, where, "unit", kind.default_unit, 1, top)
    given = {key: read(table, where) for key, read in _DEVICE_KEYS.items() if key in table}
    for key in given:
        if key not in kind.keys:
            raise ConfigError(f"{where}.{key}", f"{_a(kind.name)} pile {_NOT_TAKEN[key]}")
    device = {**PileConfig._field_defaults, **kind.keys, **given}
    meter_unit = device["meter_unit"]
    if kind.capabilities.metering is Metering.SEPARATE and link != "sim" and meter_unit is None:
        raise ConfigError(
            f"{where}.meter_unit", f"{_a(kind.name)} pile needs the unit id of its meter"
        )
    if meter_unit is not None and meter_unit == unit:
        raise ConfigError(f"{where}.meter_unit", "must differ from the pile's own unit")
    pause_s = _seconds(table, where, "pause_s", 0, 10)
    timeout_s = _seconds(table, where, "timeout_s", 0.01, 60)
    return (
        link,
        unit,
        kind.name,
        meter_unit,
        device["meter"],
        device["phases"],
        device["watchdog_s"],
        pause_s,
        timeout_s,
    )


def _a(name: str) -> str:
    """`name` with its article: "an evse-wb", "a keba-p30"."""
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _seconds(table: dict[str, Any], where: str, key: str, lo: float, hi: float) -> float | None:
    if key not in table:
        return None
    value = float(_to_decimal(table[key], _key(where, key)))
    if not lo <= value <= hi:
        raise ConfigError(_key(where, key), f"{value} s must be from {lo} to {hi}")
    return value


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
