"""Site power limit in the replay, its edges: ties, paused sessions billed, nothing
available, sessions left open, malformed site events, and nothing new without [site]."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction as F
from pathlib import Path

import pytest

from tests.controller.site_kit import bill, bills_of, pile_toml, piles_of, replay, site_of

FAST_MIN_20 = pile_toml(1, "F1", "fast", 30, 20) + pile_toml(2, "F2", "fast", 30, 20)


def test_sessions_opened_together_pause_the_pile_listed_last(tmp_path: Path, capsys) -> None:
    """F1, F2 30 kW with min 20 under 30 kW. F2's session opens first in processing order,
    F1's after it, at the same instant; the tie still pauses F2 (RULES §9 "Minimum power"):
    05:00  F1 fails. V0 (F, 30) -> F2, alone: 30 kW until 06:00. V2 (F, 10) queues at F2.
    06:00  V0 completes first (RULES §5): V2 opens at F2. Then F1 recovers: V2 is charging,
           so it stays. Then V3 (F, 10): F1 1/3 h, F2 1/3 + 1/3 h -> F1; it opens at F1.
           Two at 15 < 20, both opened at 06:00: F2, listed last, is paused; F1 draws 30.
    06:20  V3 completes (10 kWh at 30 kW); V2 draws 30: 10 kWh by 06:40.
    """
    config = "[site]\nmax_power_kw = 30\n" + FAST_MIN_20
    events = (
        "05:00 (B,F1,O,0)\n05:00 (A,V0,F,30)\n05:00 (A,V2,F,10)\n"
        "06:00 (B,F1,O,1)\n06:00 (A,V3,F,10)\n"
    )
    run = replay(tmp_path, capsys, config, events)
    assert run.code == 0
    assert piles_of(run.snapshot("06:00:00")) == {
        "F1": ("working", D(30), [("V3", 0, 0, False)]),
        "F2": ("working", D(0), [("V2", 0, 0, True)]),
    }
    assert bills_of(run) == [
        bill("V0", "F2", "05:00:00", "06:00:00", F(1), valley=F(30)),
        bill("V3", "F1", "06:00:00", "06:20:00", F(1, 3), valley=F(10)),
        bill("V2", "F2", "06:00:00", "06:40:00", F(2, 3), valley=F(10)),
    ]


def test_a_paused_session_is_billed_on_cancel_and_on_fault(tmp_path: Path, capsys) -> None:
    """F1, F2, F3 30 kW with min 20 under 30 kW (RULES §9 "Paused"):
    06:00  V1, V2, V3 (F, 30 each) -> F1, F2, F3, all opened at 06:00: 10 kW each < 20: F3
           (listed last) is paused; 15 each < 20: F2 is paused; F1 draws 30.
    06:30  V2 cancels: a bill of 0 kWh over 06:00-06:30 (0.5 h), 0 yuan.
    06:45  F3 fails: V3's bill, 0 kWh over 06:00-06:45 (0.75 h). V3 keeps its number and wants
           all 30 kWh: F1 (V1 has 22.5 kWh: 7.5 left = 0.25 h) + 1 h, F2 empty: 1 h -> F2,
           where it opens paused (15 < 20 and it started after V1).
    07:00  V1 completes; V3 draws 30 kW: 30 kWh flat by 08:00 (1.25 h after 06:45).
    """
    config = "[site]\nmax_power_kw = 30\n" + FAST_MIN_20 + pile_toml(3, "F3", "fast", 30, 20)
    events = (
        "06:00 (A,V1,F,30)\n06:00 (A,V2,F,30)\n06:00 (A,V3,F,30)\n"
        "06:30 (A,V2,O,0)\n06:45 (B,F3,O,0)\n"
    )
    run = replay(tmp_path, capsys, config, events)
    assert run.code == 0
    first = run.snapshot("06:00:00")
    assert [(name, p[1], p[2][0][3]) for name, p in piles_of(first).items()] == [
        ("F1", D(30), False),
        ("F2", D(0), True),
        ("F3", D(0), True),
    ]
    assert piles_of(run.snapshot("06:45:00"))["F2"] == ("working", 0, [("V3", 0, 0, True)])
    assert bills_of(run) == [
        bill("V2", "F2", "06:00:00", "06:30:00", F(1, 2)),
        bill("V3", "F3", "06:00:00", "06:45:00", F(3, 4)),
        bill("V1", "F1", "06:00:00", "07:00:00", F(1), valley=F(30)),
        bill("V3", "F2", "06:45:00", "08:00:00", F(5, 4), flat=F(30)),
    ]


T_PILES = pile_toml(3, "T1", "common", 7) + pile_toml(4, "T2", "common", 7, 8)


def test_nothing_available_then_some(tmp_path: Path, capsys) -> None:
    """T1 7 kW under 10 kW. 06:00 the other load is 12 kW: available max(0, 10 - 12) = 0.
    V1 (T, 7) opens at T1 at 0 kW, not paused (no minimum). 07:00 the other load falls to
    3 kW: 7 available, V1 draws 7: 7 kWh flat by 08:00. Its bill counts the 2 hours."""
    run = replay(
        tmp_path,
        capsys,
        "[site]\nmax_power_kw = 10\n" + T_PILES,
        "06:00 (L,SITE,O,12)\n06:00 (A,V1,T,7)\n07:00 (L,SITE,O,3)\n",
    )
    assert run.code == 0 and run.err == ""
    first = run.snapshot("06:00:00")
    assert site_of(first) == (0, 0)
    assert piles_of(first)["T1"] == ("working", 0, [("V1", 0, 0, False)])
    assert site_of(run.snapshot("07:00:00")) == (7, 7)
    assert bills_of(run) == [bill("V1", "T1", "06:00:00", "08:00:00", F(2), flat=F(7))]


def test_sessions_left_open_get_no_bill_and_are_named(tmp_path: Path, capsys) -> None:
    """T1 7 kW, T2 7 kW with min 8 (above its rating: always paused) under 10 kW, the other
    load 10 kW: nothing available. V1 opens at T1 at 0 kW; V2 (T1 would finish it 1 + 1 h
    later, T2 1 h) opens at T2, paused. No session ever draws: the replay stops, no bill,
    `end` null, both named on standard error."""
    run = replay(
        tmp_path,
        capsys,
        "[site]\nmax_power_kw = 10\n" + T_PILES,
        "06:00 (L,SITE,O,10)\n06:00 (A,V1,T,7)\n06:00 (A,V2,T,7)\n",
    )
    assert run.code == 0
    assert run.data["bills"] == [] and run.data["end"] is None
    assert piles_of(run.snapshot("06:00:00")) == {
        "T1": ("working", 0, [("V1", 0, 0, False)]),
        "T2": ("working", 0, [("V2", 0, 0, True)]),
    }
    lines = run.err.splitlines()
    assert len(lines) == 2
    assert "V1" in lines[0] and "T1" in lines[0] and "0 kW" in lines[0] and "no bill" in lines[0]
    assert "V2" in lines[1] and "T2" in lines[1] and "paused" in lines[1]


def test_the_readable_table_shows_the_site_and_the_powers(tmp_path: Path, capsys) -> None:
    run = replay(
        tmp_path,
        capsys,
        "[site]\nmax_power_kw = 10\n" + T_PILES,
        "06:00 (A,V1,T,7)\n06:00 (A,V2,T,7)\n",
        as_json=False,
    )
    assert run.code == 0
    assert "site: 10.00 kW available, 7.00 kW used" in run.out
    assert "T1       working    7.00 kW V1 0.00 kWh 0.00 yuan" in run.out
    assert "V2 0.00 kWh 0.00 yuan (paused)" in run.out


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("06:00 (L,SITE,O,-1)", "negative"),
        ("06:00 (L,GRID,O,5)", "(L,SITE,O,kW)"),
        ("06:00 (L,SITE,F,5)", "(L,SITE,O,kW)"),
        ("06:00 (L,SITE,O,lots)", "not a number"),
        ("06:00 (L,SITE,O,1.2345)", "whole watts"),
        ("06:00 (L,SITE,O)", "4 fields"),
    ],
)
def test_malformed_site_events(tmp_path: Path, capsys, line: str, words: str) -> None:
    events = f"06:00 (A,V1,T,7)\n# a comment\n{line}\n"
    run = replay(tmp_path, capsys, "[site]\nmax_power_kw = 10\n" + T_PILES, events)
    assert run.code == 2 and run.out == ""
    assert "line 3" in run.err and words in run.err


def test_a_site_event_without_a_site_limit_is_malformed(tmp_path: Path, capsys) -> None:
    events = "06:00 (A,V1,T,7)\n\n06:30 (L,SITE,O,5)\n"
    for config in (T_PILES, "[site]\nreserve_kw = 1\n" + T_PILES):
        run = replay(tmp_path, capsys, config, events)
        assert run.code == 2 and run.out == ""
        assert "line 3" in run.err and "max_power_kw" in run.err


def test_without_a_site_limit_the_output_has_nothing_new(tmp_path: Path, capsys) -> None:
    run = replay(tmp_path, capsys, T_PILES, "06:00 (A,V1,T,7)\n06:00 (A,V2,T,7)\n")
    assert run.code == 0 and run.err == ""
    snap = run.data["snapshots"][0]
    assert set(snap) == {"time", "events", "piles", "priority", "waiting"}
    assert [set(p) for p in snap["piles"]] == [{"name", "state", "cars"}] * 2
    # T2's min_power_kw of 8 has no effect without [site]: V2 charges at 7 kW, 06:00-07:00.
    assert [c for p in snap["piles"] for c in p["cars"]] == [
        {"car": "V1", "charged": 0.0, "fee": 0.0},
        {"car": "V2", "charged": 0.0, "fee": 0.0},
    ]
    assert bills_of(run)[1] == bill("V2", "T2", "06:00:00", "07:00:00", F(1), valley=F(7))
