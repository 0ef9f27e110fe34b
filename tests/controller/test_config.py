"""Configuration: defaults from RULES §1 and §6, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import ConfigError, default_config, load_config, parse_config
from controller.values import Dispatch, FaultPolicy, Mode

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "station.toml"


def test_defaults_are_the_briefs_station_and_tariff() -> None:
    config = parse_config({})
    assert config == default_config()
    s = config.station
    assert (s.waiting_area_size, s.pile_queue_len) == (6, 2)
    assert (s.fault_policy, s.dispatch) == (FaultPolicy.PRIORITY, Dispatch.SHORTEST)
    assert [(p.name, p.mode, p.power_w) for p in config.piles] == [
        ("A", Mode.FAST, 30_000),
        ("B", Mode.FAST, 30_000),
        ("C", Mode.COMMON, 7_000),
        ("D", Mode.COMMON, 7_000),
        ("E", Mode.COMMON, 7_000),
    ]
    prices = {(p.start_s // 3600, p.end_s // 3600): p.price for p in config.tariff.periods}
    # 1/10000 yuan per kWh: valley 0.4 23-07, flat 0.7, peak 1.0 (RULES §6).
    assert prices == {
        (0, 7): 4000,
        (7, 10): 7000,
        (10, 15): 10000,
        (15, 18): 7000,
        (18, 21): 10000,
        (21, 23): 7000,
        (23, 24): 4000,
    }
    assert config.tariff.service_price == 8000


def test_the_shipped_example_loads() -> None:
    config = load_config(str(EXAMPLE))
    assert [p.name for p in config.piles] == ["F1", "F2", "T1", "T2", "T3"]
    assert config.tariff == default_config().tariff


PILE = {"id": 1, "name": "A", "mode": "fast", "power_kw": 30}


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"stations": {}}, "stations", "unknown key"),
        ({"station": {"waiting_area_size": 0}}, "station.waiting_area_size", "out of range"),
        ({"station": {"waiting_area_size": "6"}}, "station.waiting_area_size", "whole number"),
        ({"station": {"pile_queue_len": True}}, "station.pile_queue_len", "whole number"),
        ({"station": {"fault_policy": "fifo"}}, "station.fault_policy", "priority, time_order"),
        ({"station": {"dispatch": "fastest"}}, "station.dispatch", "shortest"),
        ({"station": {"pile_len": 2}}, "station.pile_len", "unknown key"),
        ({"piles": []}, "piles", "one or more"),
        ({"piles": [{**PILE, "id": "1"}]}, "piles[0].id", "whole number"),
        ({"piles": [{**PILE, "mode": "quick"}]}, "piles[0].mode", "fast, common"),
        ({"piles": [{**PILE, "power_kw": 0}]}, "piles[0].power_kw", "above 0"),
        ({"piles": [{**PILE, "power_kw": -7}]}, "piles[0].power_kw", "above 0"),
        ({"piles": [{**PILE, "power_kw": float("nan")}]}, "piles[0].power_kw", "finite"),
        ({"piles": [{**PILE, "power_kw": 1e9}]}, "piles[0].power_kw", "at most 1000"),
        ({"piles": [{**PILE, "power_kw": 7.0001}]}, "piles[0].power_kw", "whole number of watts"),
        ({"piles": [{**PILE, "name": ""}]}, "piles[0].name", "non-empty"),
        ({"piles": [{k: v for k, v in PILE.items() if k != "mode"}]}, "piles[0].mode", "required"),
        ({"piles": [PILE, {**PILE, "name": "B"}]}, "piles[1].id", "already the id"),
        ({"piles": [PILE, {**PILE, "id": 2}]}, "piles[1].name", "already used"),
        ({"piles": [{**PILE, "colour": 1}]}, "piles[0].colour", "unknown key"),
        ({"tariff": {"service_fee": -1}}, "tariff.service_fee", "from 0"),
        ({"tariff": {"service_fee": 0.12345}}, "tariff.service_fee", "4 decimal places"),
        ({"tariff": {"prices": {"peak": "x"}}}, "tariff.prices.peak", "number"),
        ({"piles": [{**PILE, "link": "udp://x:1"}]}, "piles[0].link", "a link is"),
        ({"piles": [{**PILE, "link": "rtu://"}]}, "piles[0].link", "serial port"),
        ({"piles": [{**PILE, "link": 5}]}, "piles[0].link", "must be"),
        ({"piles": [{**PILE, "unit": 0}]}, "piles[0].unit", "out of range"),
        ({"piles": [{**PILE, "profile": "abb"}]}, "piles[0].profile", "reference, evse-wb"),
        (
            {"piles": [{**PILE, "link": "tcp://h:1", "profile": "evse-wb"}]},
            "piles[0].meter_unit",
            "unit id of its meter",
        ),
        ({"piles": [{**PILE, "meter": "sdm72"}]}, "piles[0].meter", "sdm630, sdm120"),
        ({"piles": [{**PILE, "phases": 2}]}, "piles[0].phases", "1 or 3"),
        (
            {
                "piles": [
                    {**PILE, "link": "rtu:///dev/ttyS0"},
                    {**PILE, "id": 2, "name": "B", "link": "rtu:///dev/ttyS0"},
                ]
            },
            "piles[1].unit",
            "pile A's",
        ),
        ({"clock": {"scale": 0}}, "clock.scale", "above 0"),
        ({"clock": {"speed": 2}}, "clock.speed", "unknown key"),
        (
            {"tariff": {"prices": {"a": 1}, "periods": {"b": ["00:00-24:00"]}}},
            "tariff.periods.b",
            "no price named",
        ),
        (
            {"tariff": {"prices": {"a": 1}, "periods": {"a": ["00:00-12:00"]}}},
            "tariff.periods",
            "nothing covers 12:00-24:00",
        ),
        (
            {"tariff": {"prices": {"a": 1}, "periods": {"a": ["00:00-13:00", "12:00-24:00"]}}},
            "tariff.periods",
            "overlaps",
        ),
        (
            {"tariff": {"prices": {"a": 1}, "periods": {"a": ["7:00-10:00"]}}},
            "tariff.periods.a[0]",
            "range like",
        ),
        (
            {"tariff": {"prices": {"a": 1}, "periods": {"a": ["10:00-25:00"]}}},
            "tariff.periods.a[0]",
            "does not exist",
        ),
    ],
)
def test_bad_values_name_the_key(data: dict, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    assert error.value.key == key
    assert words in error.value.problem
    assert str(error.value).startswith(f"{key}: ")


def test_a_whole_day_period_and_midnight_wrap_are_accepted() -> None:
    one = parse_config({"tariff": {"prices": {"a": 1}, "periods": {"a": ["00:00-24:00"]}}})
    assert [(p.start_s, p.end_s) for p in one.tariff.periods] == [(0, 86_400)]
    wrap = parse_config(
        {
            "tariff": {
                "prices": {"d": 1, "n": 0.5},
                "periods": {"d": ["06:00-22:00"], "n": ["22:00-06:00"]},
            }
        }
    )
    assert [(p.name, p.start_s // 3600, p.end_s // 3600) for p in wrap.tariff.periods] == [
        ("n", 0, 6),
        ("d", 6, 22),
        ("n", 22, 24),
    ]


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[station\nwaiting_area_size = 6\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(bad))


def test_pile_links_and_the_clock() -> None:
    config = parse_config(
        {
            "clock": {"scale": 120},
            "piles": [
                {**PILE, "link": "tcp://127.0.0.1:5020", "unit": 3},
                {
                    **PILE,
                    "id": 2,
                    "name": "B",
                    "link": "rtu:///dev/ttyUSB0?baudrate=9600",
                    "profile": "evse-wb",
                    "meter_unit": 2,
                    "meter": "sdm120",
                    "phases": 1,
                },
            ],
        }
    )
    a, b = config.piles
    assert (a.link, a.unit, a.profile) == ("tcp://127.0.0.1:5020", 3, "reference")
    assert (b.profile, b.unit, b.meter_unit, b.meter, b.phases) == ("evse-wb", 1, 2, "sdm120", 1)
    assert config.clock.scale == 120
    assert default_config().piles[0].link == "sim"
