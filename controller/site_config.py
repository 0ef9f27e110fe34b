"""The [site] section of the configuration (RULES §9: the site's power limit), read and checked.

No limit until `max_power_kw` is set. The replay uses only that; `reserve_kw`, `raise_after_s`,
`fallback_kw` and `grid_meter` are the live station's (REPLAY "Site power limit") and are
checked all the same.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from controller.config_values import ConfigError, key_name, no_unknown, to_decimal

# No grid connection of a charging station is above 100 MW.
MAX_SITE_KW = Decimal(100_000)
MAX_RAISE_AFTER_S = 3600


class SiteSettings(NamedTuple):
    """The site's grid connection: the power the piles may share (RULES §9)."""

    max_power_w: int
    reserve_w: int = 0  # live: kept back from the limit, for what the grid meter cannot see
    raise_after_s: float = 10.0  # live: headroom must hold this long before setpoints rise
    fallback_w: int | None = None  # live: shared while the grid meter does not answer
    grid_meter: str | None = None  # live: the link of the meter at the grid connection


SITE_KEYS = {"max_power_kw", "reserve_kw", "raise_after_s", "fallback_kw", "grid_meter"}


def parse_site(table: dict[str, Any]) -> SiteSettings | None:
    """The site's settings; None (no limit) without max_power_kw."""
    no_unknown(table, "site", SITE_KEYS)
    limited = "max_power_kw" in table
    most_kw = MAX_SITE_KW
    if limited:
        max_w = watts(table, "site", "max_power_kw", MAX_SITE_KW)
        most_kw = Decimal(max_w) / 1000
    reserve_w = watts(table, "site", "reserve_kw", most_kw) if "reserve_kw" in table else 0
    raise_after_s = SiteSettings._field_defaults["raise_after_s"]
    if "raise_after_s" in table:
        raise_after_s = float(to_decimal(table["raise_after_s"], "site.raise_after_s"))
        if not 0 <= raise_after_s <= MAX_RAISE_AFTER_S:
            raise ConfigError(
                "site.raise_after_s", f"{raise_after_s} must be from 0 to {MAX_RAISE_AFTER_S} s"
            )
    fallback_w = watts(table, "site", "fallback_kw", most_kw) if "fallback_kw" in table else None
    grid_meter = table.get("grid_meter")
    if grid_meter is not None:
        if not isinstance(grid_meter, str):
            raise ConfigError(
                "site.grid_meter", 'must be a link, as "tcp://HOST:PORT" or "rtu:///dev/PORT"'
            )
        from drivers.link_spec import parse_link  # light: no pymodbus

        try:
            parse_link(grid_meter)
        except ValueError as exc:
            raise ConfigError("site.grid_meter", str(exc)) from None
        if fallback_w is None:
            # RULES §9: what the piles share while the grid meter does not answer.
            raise ConfigError("site.fallback_kw", "is required with site.grid_meter")
    if not limited:
        if grid_meter is not None or fallback_w is not None:
            given = "site.grid_meter" if grid_meter is not None else "site.fallback_kw"
            raise ConfigError("site.max_power_kw", f"is required with {given}")
        return None
    return SiteSettings(max_w, reserve_w, raise_after_s, fallback_w, grid_meter)


def watts(table: dict[str, Any], where: str, key: str, most_kw: Decimal) -> int:
    """A power given in kW (`key` ends in _kw), from 0 to most_kw, as whole watts."""
    name = key_name(where, key)
    kw = to_decimal(table.get(key), name)
    if not Decimal(0) <= kw <= most_kw:
        raise ConfigError(name, f"{kw} must be from 0 to {most_kw}")
    power_w = kw * 1000
    if power_w != power_w.to_integral_value():
        raise ConfigError(name, f"{kw} must be a whole number of watts (3 decimals at most)")
    return int(power_w)
