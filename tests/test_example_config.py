"""examples/charge-station.toml, the station box's configuration template: it loads, and it
shows every key the configuration accepts, with piles as real hardware is reached."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from controller import config as station_config
from controller import site_config
from server.accounts import config as accounts_config
from server.assembly import config as cfg
from server.http import config as server_config
from server.metrics import config as metrics_config
from server.ocpp import config as ocpp_config

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "charge-station.toml"

# Keys the template shows only as a comment, because setting them is wrong on a station box.
COMMENTED_ONLY = {"accounts": {"bench_registration_code"}}
# The uplink and /metrics are off by default: their switches are shown commented out.
COMMENTED_ONLY |= {
    "ocpp": {"url", "charge_point_id", "password", "cafile"},
    "metrics": {"port", "token"},
}
# No site limit by default (RULES §9): the limit and the grid meter are shown commented out.
COMMENTED_ONLY |= {"site": {"max_power_kw", "grid_meter", "fallback_kw"}}


@pytest.fixture(scope="module")
def data() -> dict:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def accepted() -> dict[str, set[str]]:
    """The keys the configuration accepts, table by table: its parsers' own key sets, so a key
    added there and forgotten here fails this test."""
    return {
        "": cfg.SECTION_KEYS,
        "station": station_config.STATION_KEYS,
        "tariff": station_config.TARIFF_KEYS,
        "piles": station_config.PILE_KEYS,
        "clock": station_config.CLOCK_KEYS,
        "server": server_config.SERVER_KEYS,
        "accounts": accounts_config.ACCOUNT_KEYS,
        "ocpp": ocpp_config.OCPP_KEYS,
        "metrics": metrics_config.METRICS_KEYS,
        "site": site_config.SITE_KEYS,
    }


def test_the_example_loads_as_a_station_configuration() -> None:
    config = cfg.load_config(str(EXAMPLE))
    assert config.server.tls_cert == "/etc/charge-station/tls/server.crt"
    assert config.server.tls_key == "/etc/charge-station/tls/server.key"
    assert config.accounts.bench_registration_code is None  # never on a station box
    assert config.clock.scale == 1


def test_every_accepted_key_is_in_the_example(data: dict) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for table, keys in accepted().items():
        if table == "":
            shown = set(data)
        elif table == "piles":
            shown = {key for pile in data["piles"] for key in pile}
        else:
            shown = set(data.get(table, {}))
        for key in keys - shown:
            assert key in COMMENTED_ONLY.get(table, set()), f"{table}.{key} is not in {EXAMPLE}"
            assert re.search(rf"^# {key} = ", text, flags=re.M), f"{table}.{key} is not shown"


def test_the_example_piles_are_reached_as_hardware_with_both_profiles() -> None:
    piles = cfg.load_config(str(EXAMPLE)).piles
    assert {p.link.split("://")[0] for p in piles} == {"tcp", "rtu"}
    assert {p.profile for p in piles} == {"reference", "evse-wb"}
    assert {p.meter for p in piles if p.profile == "evse-wb"} == {"sdm630", "sdm120"}
    # Every device on one bus has a unit id of its own, the meters' included.
    for link in {p.link for p in piles}:
        ids = [u for p in piles if p.link == link for u in (p.unit, p.meter_unit) if u is not None]
        assert len(ids) == len(set(ids)), f"unit ids clash on {link}: {ids}"
