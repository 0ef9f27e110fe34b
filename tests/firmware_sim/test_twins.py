"""pile-sim's `--pile` specs for every device kind: the registry's names and aliases, the options
each kind takes, and the twin it builds."""

from __future__ import annotations

import pytest

from firmware_sim.simulator import Simulator
from firmware_sim.spec import parse_pile
from tests.firmware_sim.fakes import FakeClock


def test_specs_of_the_new_kinds_and_the_old_spellings() -> None:
    abb = parse_pile("1:abb-terra-ac:11")
    assert (abb.unit, abb.profile, abb.power_w, abb.phases) == (1, "abb-terra-ac", 11_000, 3)
    keba = parse_pile("255:keba-p30:7.4:phases=1:watchdog=20")
    assert (keba.unit, keba.profile, keba.phases, keba.watchdog_s) == (255, "keba-p30", 1, 20)
    assert parse_pile("1:REF:30").profile == "reference"
    assert parse_pile("1:evse-wb-din:11:meter=2").profile == "evse-wb"
    metered = parse_pile("1:abb-terra-ac:11:meter=2:sdm630")
    assert metered.units == [1, 2]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1:keba-p30:11:meter=2", "a keba-p30 pile takes no meter"),
        ("1:reference:7:phases=1", "a reference pile takes no phases"),
        ("1:evse-wb:11:watchdog=5", "takes no watchdog"),
        ("250:reference:7", "a unit id is 1..247"),
        ("256:keba-p30:11", "a unit id is 1..247"),
        ("1:abb:11", "unknown profile 'abb' (known: reference, evse-wb, abb-terra-ac, keba-p30)"),
        ("1:abb-terra-ac:11:sdm120", "sdm630/sdm120 needs meter=UNIT"),
    ],
)
def test_bad_specs_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_pile(text)
    assert words in str(error.value)


def test_the_simulator_builds_each_kinds_twin_on_its_units() -> None:
    sim = Simulator(
        ["1:abb-terra-ac:11:meter=2", "255:keba-p30:11", "3:reference:7"], clock=FakeClock()
    )
    assert sim.describe_units() == [
        {"unit": 1, "profile": "abb-terra-ac", "power_w": 11_000, "meter_unit": 2},
        {"unit": 2, "profile": "sdm630", "pile_unit": 1},
        {"unit": 3, "profile": "reference", "power_w": 7_000},
        {"unit": 255, "profile": "keba-p30", "power_w": 11_000},
    ]
    # 3 kW on 3 phases is 4.3 A: below the 6 A a wallbox needs to charge at all.
    with pytest.raises(ValueError, match="below 6 A"):
        Simulator(["1:abb-terra-ac:3"], clock=FakeClock())
