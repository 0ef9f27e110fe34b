"""The [ocpp] and [metrics] sections: off by default, every key checked, errors naming it."""

from __future__ import annotations

import pytest

from controller.config import ConfigError
from server.assembly.config import parse_config

URL = "wss://csms.example.com/ocpp"


def test_both_are_off_by_default() -> None:
    config = parse_config({})
    assert config.ocpp.url is None
    assert config.metrics.port is None


def test_an_uplink_and_metrics_as_configured() -> None:
    config = parse_config(
        {
            "ocpp": {
                "url": URL + "/",
                "charge_point_id": "station-0042",
                "password": "a" * 16,
                "cafile": "/etc/ca.pem",
                "heartbeat_s": 120,
                "meter_values_s": 0,
                "reconnect_max_s": 30,
            },
            "metrics": {"port": 9464, "host": "0.0.0.0", "token": "t" * 16},
        }
    )
    assert config.ocpp.url == URL  # the trailing slash dropped: the id is appended after one
    assert (config.ocpp.heartbeat_s, config.ocpp.meter_values_s) == (120, 0)
    assert config.ocpp.reconnect_max_s == 30.0
    assert (config.metrics.port, config.metrics.host) == (9464, "0.0.0.0")


@pytest.mark.parametrize(
    ("section", "key", "value", "words"),
    [
        ("ocpp", "url", "http://csms/ocpp", "not a WebSocket URL"),
        ("ocpp", "url", "ws://", "not a WebSocket URL"),
        ("ocpp", "url", "ws://csms/ocpp?x=1", "not a WebSocket URL"),
        ("ocpp", "charge_point_id", "a/b", "letters, digits"),
        ("ocpp", "charge_point_id", "", "required with ocpp.url"),
        ("ocpp", "password", "short", "16 to 40"),
        ("ocpp", "cafile", 5, "path of a file"),
        ("ocpp", "heartbeat_s", 0, "out of range"),
        ("ocpp", "meter_values_s", -1, "out of range"),
        ("ocpp", "reconnect_max_s", 0, "from 0.1 to 3600"),
        ("ocpp", "colour", 1, "unknown key"),
        ("metrics", "port", 70000, "out of range"),
        ("metrics", "host", "", "address to listen on"),
        ("metrics", "token", "short", "16 or more"),
        ("metrics", "colour", 1, "unknown key"),
    ],
)
def test_bad_values_name_the_key(section: str, key: str, value: object, words: str) -> None:
    table: dict[str, object] = {"url": URL, "charge_point_id": "cs-1"} if section == "ocpp" else {}
    table[key] = value
    with pytest.raises(ConfigError) as error:
        parse_config({section: table})
    assert error.value.key == f"{section}.{key}"
    assert words in error.value.problem


def test_a_cafile_needs_wss_and_metrics_off_loopback_need_a_token() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"ocpp": {"url": "ws://c/o", "charge_point_id": "x", "cafile": "/ca.pem"}})
    assert error.value.key == "ocpp.cafile"
    with pytest.raises(ConfigError) as error:
        parse_config({"metrics": {"port": 9464, "host": "0.0.0.0"}})
    assert error.value.key == "metrics.token"
    assert "loopback" in error.value.problem
