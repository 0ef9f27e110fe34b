"""[[piles]] tables read through the device registry: each kind's keys, defaults and timing,
and errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest

from controller.config import PILE_KEYS, ConfigError, PileConfig, parse_config
from drivers.registry import PILES, device_keys

PILE = {"id": 1, "name": "A", "mode": "fast", "power_kw": 11}
TCP = "tcp://192.168.10.30:502"
RTU = "rtu:///dev/ttyUSB0?baudrate=9600"


def pile(**table: Any) -> PileConfig:
    return parse_config({"piles": [{**PILE, **table}]}).piles[0]


def test_each_kind_brings_its_own_defaults() -> None:
    keba = pile(link=TCP, profile="keba-p30")
    # KEBA answers as unit 255 over TCP; three phases and a 10 s fail-safe unless told.
    assert (keba.profile, keba.unit, keba.phases, keba.watchdog_s) == ("keba-p30", 255, 3, 10)
    abb = pile(link=RTU, profile="abb-terra-ac", phases=1)
    assert (abb.profile, abb.unit, abb.phases, abb.meter_unit) == ("abb-terra-ac", 1, 1, None)
    assert pile(profile="ref").profile == "reference"  # an alias is stored as the kind's name
    assert (keba.pause_s, keba.timeout_s) == (None, None)  # the kind's own timing


def test_every_key_a_kind_declares_is_read_into_the_pile() -> None:
    assert set(device_keys()) <= PILE_KEYS
    for kind in PILES:
        # A kind with a separate meter needs its unit id on a Modbus link.
        table = {"unit": 3, "meter_unit": 5} if "meter_unit" in kind.keys else {}
        for key, default in kind.keys.items():
            value = table.get(key, default)
            p = pile(link=TCP, profile=kind.name, **{**table, key: value})
            assert getattr(p, key) == value, (kind.name, key)


def test_pause_and_timeout_per_pile() -> None:
    p = pile(link=TCP, profile="keba-p30", pause_s=0.25, timeout_s=2)
    assert (p.pause_s, p.timeout_s) == (0.25, 2.0)


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"phases": 1}, "piles[0].phases", "a reference pile takes no phases"),
        ({"profile": "abb-terra-ac", "watchdog_s": 5}, "piles[0].watchdog_s", "has no watchdog"),
        (
            {"profile": "keba-p30", "link": TCP, "meter_unit": 2},
            "piles[0].meter_unit",
            "has its own meter",
        ),
        ({"profile": "keba-p30", "link": RTU}, "piles[0].link", "tcp:// only"),
        ({"link": RTU, "unit": 255}, "piles[0].unit", "out of range 1..247"),
        ({"link": TCP, "unit": 256}, "piles[0].unit", "out of range 1..255"),
        (
            {"profile": "abb-terra-ac", "link": TCP, "meter_unit": 1},
            "piles[0].meter_unit",
            "must differ",
        ),
        ({"profile": "abb", "link": TCP}, "piles[0].profile", "abb-terra-ac, keba-p30"),
        ({"pause_s": 11}, "piles[0].pause_s", "from 0 to 10"),
        ({"pause_s": -1}, "piles[0].pause_s", "from 0 to 10"),
        ({"timeout_s": 0}, "piles[0].timeout_s", "from 0.01 to 60"),
        ({"timeout_s": "soon"}, "piles[0].timeout_s", "must be a number"),
    ],
)
def test_bad_device_keys_name_the_key(table: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        pile(**table)
    assert error.value.key == key
    assert words in error.value.problem


def test_an_abb_counts_its_own_energy_or_a_separate_meter() -> None:
    own = pile(link=TCP, profile="abb-terra-ac")
    assert own.meter_unit is None  # no meter needed: it counts its sessions
    metered = pile(link=RTU, profile="abb-terra-ac", meter_unit=2, meter="sdm630")
    assert (metered.meter_unit, metered.meter) == (2, "sdm630")
