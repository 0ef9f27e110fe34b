"""The whole configuration file: the station's own sections (controller.config) and each
component's ([server], [accounts], [ocpp], [metrics]), each parsed by its owner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from controller import config as station_config
from controller.config import ClockSettings, PileConfig, StationSettings
from controller.config_values import table_of
from controller.site_config import SiteSettings
from controller.tariff import Tariff
from server.accounts.config import AccountSettings, parse_accounts
from server.http.config import ServerSettings, parse_server
from server.metrics.config import MetricsSettings, parse_metrics
from server.ocpp.config import OcppSettings, parse_ocpp
from server.sections import COMPONENT_SECTIONS


class ServiceConfig(NamedTuple):
    """What `serve` runs on. Its first fields are controller.config.Config's, in order, so
    that it serves wherever the station's own configuration is asked for."""

    station: StationSettings
    tariff: Tariff
    piles: tuple[PileConfig, ...]
    clock: ClockSettings = ClockSettings()
    site: SiteSettings | None = None  # RULES §9
    server: ServerSettings = ServerSettings()
    accounts: AccountSettings = AccountSettings()
    ocpp: OcppSettings = OcppSettings()
    metrics: MetricsSettings = MetricsSettings()


# Each component's section, and its parser (in the order they are checked).
PARSERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "server": parse_server,
    "accounts": parse_accounts,
    "ocpp": parse_ocpp,
    "metrics": parse_metrics,
}
assert set(PARSERS) == COMPONENT_SECTIONS
SECTION_KEYS = station_config.SECTION_KEYS | COMPONENT_SECTIONS


def default_config() -> ServiceConfig:
    """The brief's station (RULES §1, §6) with every component's defaults."""
    return ServiceConfig(*station_config.default_config())


def load_config(path: str) -> ServiceConfig:
    """Read and validate a configuration file; ConfigError names the key and the problem."""
    return parse_config(station_config.read_toml(path))


def parse_config(data: dict[str, Any]) -> ServiceConfig:
    own = station_config.parse_config(data, COMPONENT_SECTIONS)
    if own.site is not None:
        # A limit the live station would not keep is refused rather than ignored: the grid
        # connection's breaker is what it protects (RULES §9 is in the rules and the replay).
        raise station_config.ConfigError(
            "site.max_power_kw",
            "the live station does not share the site's power among the piles yet; "
            "remove it to serve (charge-station replay takes it)",
        )
    sections = {name: parse(table_of(data, name, name)) for name, parse in PARSERS.items()}
    return ServiceConfig(*own, **sections)
