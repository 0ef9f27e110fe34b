"""The whole configuration file: the station's sections parsed by the controller, each
component's by its owner, and nothing else accepted; the replay reads the same file."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller import config as station_config
from controller.config import ConfigError
from server.assembly.config import PARSERS, ServiceConfig, default_config, parse_config
from server.cli import main
from server.sections import COMPONENT_SECTIONS

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "examples" / "day.txt"
ALL_SECTIONS = "accounts, clock, metrics, ocpp, piles, server, site, station, tariff"


def test_every_component_section_has_its_parser_and_the_station_fields_come_first() -> None:
    assert set(PARSERS) == COMPONENT_SECTIONS
    own = station_config.Config._fields
    assert ServiceConfig._fields[: len(own)] == own
    assert set(ServiceConfig._fields[len(own) :]) == COMPONENT_SECTIONS


def test_the_defaults_are_the_stations_and_each_components() -> None:
    config = parse_config({})
    assert config == default_config()
    own = len(station_config.Config._fields)  # the station's own sections come first
    assert tuple(config[:own]) == tuple(station_config.default_config())
    assert (config.server.port, config.ocpp.url, config.metrics.port) == (8080, None, None)


def test_a_site_limit_the_live_station_cannot_keep_is_refused_naming_its_key() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"site": {"max_power_kw": 40}})
    assert error.value.key == "site.max_power_kw"
    assert "does not share" in error.value.problem
    # Without a limit the section's other keys are the template's, and accepted.
    assert parse_config({"site": {"reserve_kw": 0}}).site is None


def test_an_unknown_section_is_refused_naming_it_and_every_known_one() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"sever": {"port": 1}})
    assert error.value.key == "sever"
    assert error.value.problem == f"unknown key (expected one of: {ALL_SECTIONS})"


def test_the_station_parser_leaves_only_the_sections_it_is_told_of() -> None:
    data = {"server": {"port": 70000}, "metrics": {"colour": 1}}
    # Alone, it knows its own sections only.
    with pytest.raises(ConfigError) as error:
        station_config.parse_config(data)
    assert error.value.key in {"server", "metrics"}
    # Told that they are the components', it accepts them without reading them...
    assert station_config.parse_config(data, COMPONENT_SECTIONS) == station_config.default_config()
    # ...and their owners refuse what is wrong in them.
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    assert error.value.key == "server.port"


def replay(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> tuple[int, str]:
    config = tmp_path / "station.toml"
    config.write_text(text)
    code = main(["replay", "--config", str(config), str(EVENTS)])
    return code, capsys.readouterr().err


def test_the_replay_reads_a_file_with_the_servers_sections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = '[server]\nport = 8443\n[accounts]\ntoken_ttl_s = 3600\n[ocpp]\nurl = "ws://c/o"\n'
    assert replay(tmp_path, capsys, text) == (0, "")


def test_the_replay_refuses_a_section_nobody_owns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = replay(tmp_path, capsys, "[sever]\nport = 8443\n")
    assert code == 2
    assert (
        err
        == f"charge-station: configuration sever: unknown key (expected one of: {ALL_SECTIONS})\n"
    )
