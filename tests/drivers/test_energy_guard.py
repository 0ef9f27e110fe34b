"""Meter plausibility: backwards, jumps, resets and garbage never pass as energy."""

from __future__ import annotations

import math

import pytest

from drivers.energy_guard import EnergyGuard
from drivers.errors import BadReading
from drivers.link import parse_link


def guard() -> EnergyGuard:
    return EnergyGuard("pile A", max_power_w=7000, garbage_wh=(1 << 32) - 1)


def test_plausible_readings_pass_and_become_the_baseline() -> None:
    g = guard()
    assert g.check(1000.0, 0.0) == 1000
    # 7 kW for one hour is at most 7000 Wh more.
    assert g.check(8000.4, 3600.0) == 8000
    assert g.last_wh == 8000


def test_a_jump_beyond_what_the_pile_can_deliver_is_bad() -> None:
    g = guard()
    g.check(1000, 0.0)
    # In 60 s a 7 kW pile delivers at most 7000 * 60 / 3600 = 116.7 Wh (+ 2 Wh of rounding).
    assert g.check(1118, 60.0) == 1118
    with pytest.raises(BadReading) as bad:
        g.check(1118 + 200, 120.0)
    assert bad.value.kind == "jump"
    assert g.last_wh == 1118  # the bad value did not become the baseline


def test_backwards_and_reset() -> None:
    g = guard()
    g.check(50_000, 0.0)
    with pytest.raises(BadReading) as back:
        g.check(49_990, 10.0)
    assert back.value.kind == "backwards"
    with pytest.raises(BadReading) as reset:
        g.check(3, 20.0)
    assert reset.value.kind == "reset"
    assert reset.value.value_wh == 3
    # The restarted counter is the new baseline: it counts on from 3 Wh (7 kW for 10 s is at
    # most 19.4 Wh + 2 Wh of rounding), and the old count would now be a jump.
    assert g.check(20, 30.0) == 20
    with pytest.raises(BadReading) as back_up:
        g.check(50_000, 40.0)
    assert back_up.value.kind == "jump"


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, float((1 << 32) - 1)])
def test_garbage(value: float) -> None:
    g = guard()
    with pytest.raises(BadReading) as bad:
        g.check(value, 0.0)
    assert bad.value.kind == "garbage"
    assert g.last_wh is None


def test_link_urls() -> None:
    tcp = parse_link("tcp://192.168.1.20:5020?timeout=0.5")
    assert (tcp.kind, tcp.host, tcp.port, tcp.timeout_s) == ("tcp", "192.168.1.20", 5020, 0.5)
    rtu = parse_link("rtu:///dev/ttyUSB0?baudrate=19200&parity=e&pause=0.2")
    assert (rtu.device, rtu.baudrate, rtu.parity, rtu.pause_s) == ("/dev/ttyUSB0", 19200, "E", 0.2)
    assert parse_link("rtu:///dev/ttyUSB0").baudrate == 9600


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("udp://1.2.3.4:502", "a link is"),
        ("tcp://:502", "needs a host"),
        ("tcp://host:99999", "port"),
        ("rtu://", "serial port"),
        ("rtu:///dev/ttyS0?parity=X", "parity"),
        ("rtu:///dev/ttyS0?baudrate=fast", "baudrate must be a number"),
        ("rtu:///dev/ttyS0?speed=9600", "unknown option"),
        ("tcp://h:1?timeout=0", "timeout must be from"),
    ],
)
def test_bad_link_urls_say_what_is_wrong(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_link(url)


def test_a_counter_that_stood_still_may_catch_up_by_what_the_pile_could_deliver() -> None:
    g = guard()
    g.check(1000, 0.0)
    g.check(1000, 600.0)  # frozen (or idle) for ten minutes
    # Since it last moved, 600 s at 7 kW = 1166.7 Wh could have been delivered.
    assert g.check(2166, 600.0) == 2166
    with pytest.raises(BadReading):
        g.check(2166 + 50, 601.0)  # 1 s later, 50 Wh more is not possible at 7 kW


def test_the_time_a_reading_took_counts_for_the_pile() -> None:
    g = guard()
    # Asked at 0 s, answered at 10 s (a slow bus, or a bench speed-up): the device read its
    # counter somewhere in between.
    assert g.check(1000, 10.0, sent_s=0.0) == 1000
    # Asked at 60 s, answered at 60 s: the counter may have moved for up to 60 s since the
    # last question, not only the 50 s since the last answer:
    # 7000 W * 60 s / 3600 = 116.7 Wh (+ 2 Wh of rounding) > 110 Wh.
    assert g.check(1110, 60.0, sent_s=60.0) == 1110
    # Measured from the answer alone it would be too much: 7000 W * 50 s / 3600 = 97.2 Wh.
    g2 = guard()
    g2.check(1000, 10.0)
    with pytest.raises(BadReading):
        g2.check(1110, 60.0)
