"""The [site] section and the piles' min_power_kw (RULES §9): values, defaults, errors naming
the key, and a configuration without them unchanged."""

from __future__ import annotations

import pytest

from controller.config import ConfigError, default_config, parse_config
from controller.site_config import SiteSettings

PILE = {"id": 1, "name": "A", "mode": "fast", "power_kw": 30}


def test_without_site_nothing_is_added() -> None:
    config = parse_config({})
    assert config.site is None
    assert config == default_config()
    assert all(p.min_power_w == 0 for p in config.piles)


def test_no_limit_until_max_power_kw_is_set() -> None:
    # RULES §9: "With [site] max_power_kw set ..."; the live-only keys alone limit nothing.
    assert parse_config({"site": {}}).site is None
    assert parse_config({"site": {"reserve_kw": 1, "raise_after_s": 5}}).site is None


def test_site_values_in_whole_watts() -> None:
    config = parse_config(
        {
            "site": {
                "max_power_kw": 40.5,
                "reserve_kw": 2,
                "raise_after_s": 30,
                "fallback_kw": 11.04,
                "grid_meter": "tcp://192.168.1.30:502",
            },
            "piles": [{**PILE, "min_power_kw": 4.14}],
        }
    )
    # 40.5 kW = 40,500 W; 11.04 kW = 11,040 W; 4.14 kW = 4,140 W.
    assert config.site == SiteSettings(40_500, 2_000, 30.0, 11_040, "tcp://192.168.1.30:502")
    assert config.piles[0].min_power_w == 4_140


def test_site_defaults_and_a_limit_of_zero() -> None:
    site = parse_config({"site": {"max_power_kw": 0}}).site
    assert site == SiteSettings(0, 0, 10.0, None, None)


def test_a_minimum_above_the_rated_power_is_accepted() -> None:
    # REPLAY: such a pile's sessions are always paused; that is not a configuration error.
    config = parse_config({"piles": [{**PILE, "min_power_kw": 31}]})
    assert config.piles[0].min_power_w == 31_000


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        (
            {"site": {"fallback_kw": 5, "grid_meter": "tcp://10.0.0.5:502"}},
            "site.max_power_kw",
            "required with site.grid_meter",
        ),
        ({"site": {"fallback_kw": 5}}, "site.max_power_kw", "required with site.fallback_kw"),
        ({"site": {"max_power_kw": -1}}, "site.max_power_kw", "from 0"),
        ({"site": {"max_power_kw": "lots"}}, "site.max_power_kw", "number"),
        ({"site": {"max_power_kw": 10.0005}}, "site.max_power_kw", "whole number of watts"),
        ({"site": {"max_power_kw": 40, "limit": 3}}, "site.limit", "unknown key"),
        ({"site": {"max_power_kw": 40, "reserve_kw": 41}}, "site.reserve_kw", "from 0 to 40"),
        ({"site": {"max_power_kw": 40.5, "fallback_kw": 50}}, "site.fallback_kw", "0 to 40.5"),
        ({"site": {"max_power_kw": 40, "raise_after_s": -1}}, "site.raise_after_s", "from 0"),
        (
            {"site": {"max_power_kw": 40, "grid_meter": "tcp://10.0.0.5:502"}},
            "site.fallback_kw",
            "required with site.grid_meter",
        ),
        (
            {"site": {"max_power_kw": 40, "fallback_kw": 5, "grid_meter": "http://x"}},
            "site.grid_meter",
            "http://x",
        ),
        ({"site": {"max_power_kw": 40, "grid_meter": 7}}, "site.grid_meter", "link"),
        ({"site": 40}, "site", "table"),
        ({"piles": [{**PILE, "min_power_kw": -2}]}, "piles[0].min_power_kw", "from 0"),
        ({"piles": [{**PILE, "min_power_kw": "x"}]}, "piles[0].min_power_kw", "number"),
        (
            {"piles": [{**PILE, "min_power_kw": 1.2345}]},
            "piles[0].min_power_kw",
            "whole number of watts",
        ),
    ],
)
def test_bad_values_name_the_key(data: dict, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    assert error.value.key == key
    assert words in error.value.problem
    assert str(error.value).startswith(f"{key}: ")
