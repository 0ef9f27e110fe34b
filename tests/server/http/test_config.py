"""The [server] section: every key checked, errors naming it, as the whole file is read."""

from __future__ import annotations

import pytest

from controller.config import ConfigError
from server.assembly.config import parse_config


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"server": {"cors_origins": "http://a:3000"}}, "server.cors_origins", "must be a list"),
        ({"server": {"cors_origins": [3000]}}, "server.cors_origins", "is not an origin"),
        ({"server": {"cors_origins": ["a.example"]}}, "server.cors_origins", "is not an origin"),
        ({"server": {"cors_origins": ["ws://a:3000"]}}, "server.cors_origins", "scheme://host"),
        ({"server": {"cors_origins": ["http://"]}}, "server.cors_origins", "is not an origin"),
        ({"server": {"cors_origins": ["http://a/app"]}}, "server.cors_origins", "'http://a/app'"),
        ({"server": {"cors_origins": ["http://a:3000/"]}}, "server.cors_origins", "not an origin"),
        ({"server": {"cors_origins": ["http://*.example"]}}, "server.cors_origins", "not an"),
        ({"server": {"cors_origin": []}}, "server.cors_origin", "unknown key"),
    ],
)
def test_bad_values_name_the_key(data: dict, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    assert error.value.key == key
    assert words in error.value.problem
    assert str(error.value).startswith(f"{key}: ")


def test_cors_origins_default_to_none_and_are_kept_as_browsers_send_them() -> None:
    assert parse_config({}).server.cors_origins == ()
    table = {"cors_origins": ["http://192.168.1.20:3000", "https://Front.Example"]}
    origins = parse_config({"server": table}).server.cors_origins
    assert origins == ("http://192.168.1.20:3000", "https://front.example")
