"""Site power limit in the replay (RULES §9, REPLAY "Site power limit"), worked by hand.

Every expected value is worked out below from the rules, with the arithmetic written down;
the default tariff applies: valley 0.4 before 07:00, flat 0.7 from 07:00 to 10:00, service 0.8.
"""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction as F
from pathlib import Path

from tests.controller.site_kit import bill, bills_of, pile_toml, piles_of, replay, site_of

FAST_30 = pile_toml(1, "F1", "fast", 30) + pile_toml(2, "F2", "fast", 30)


def test_equal_shares_under_the_ratings_and_a_site_event(tmp_path: Path, capsys) -> None:
    """40 kW over F1 30, F2 30, T1 7 (RULES §9 "Sharing"):
    06:00  V1 (F, 33 kWh) -> F1, V2 (F, 66) -> F2 (F1's finish 1.1 h + 2.2 h > F2's 2.2 h),
           V3 (T, 7) -> T1. Equal third 40/3 = 13.33 >= 7: T1 gets 7; F1 and F2 share
           40 - 7 = 33: 16.5 kW each. used = 16.5 + 16.5 + 7 = 40.
    07:00  V3 has 7 kWh after 1 h at 7 kW: it completes first (RULES §5); then the site event:
           the other load is 10 kW, available 40 - 10 = 30: F1, F2 get 15 each.
           V1 and V2 have 16.5 kWh each (1 h at 16.5 kW), all valley.
    08:06  V1 completes: it wanted 33 - 16.5 = 16.5 kWh more at 15 kW: 1.1 h after 07:00.
           V2 has 16.5 + 16.5 = 33 kWh; alone it gets min(30, 30) = 30 kW.
    09:12  V2 completes: 66 - 33 = 33 kWh at 30 kW = 1.1 h after 08:06.
    """
    config = "[site]\nmax_power_kw = 40\n" + FAST_30 + pile_toml(3, "T1", "common", 7)
    events = "06:00 (A,V1,F,33)\n06:00 (A,V2,F,66)\n06:00 (A,V3,T,7)\n07:00 (L,SITE,O,10)\n"
    run = replay(tmp_path, capsys, config, events)
    assert run.code == 0 and run.err == ""
    first = run.snapshot("06:00:00")
    assert site_of(first) == (D("40"), D("40"))
    assert piles_of(first) == {
        "F1": ("working", D("16.5"), [("V1", D(0), D(0), False)]),
        "F2": ("working", D("16.5"), [("V2", D(0), D(0), False)]),
        "T1": ("working", D(7), [("V3", D(0), D(0), False)]),
    }
    second = run.snapshot("07:00:00")
    assert second["events"] == ["(L,SITE,O,10)"]
    assert site_of(second) == (D(30), D(30))
    # 16.5 kWh valley: 16.5 x (0.4 + 0.8) = 19.80 yuan.
    assert piles_of(second) == {
        "F1": ("working", D(15), [("V1", D("16.5"), D("19.8"), False)]),
        "F2": ("working", D(15), [("V2", D("16.5"), D("19.8"), False)]),
        "T1": ("working", D(0), []),
    }
    assert bills_of(run) == [
        bill("V3", "T1", "06:00:00", "07:00:00", F(1), valley=F(7)),
        # 16.5 valley + 16.5 flat: 6.60 + 11.55 = 18.15; service 26.40.
        bill("V1", "F1", "06:00:00", "08:06:00", F(21, 10), valley=F(33, 2), flat=F(33, 2)),
        # 16.5 valley + (16.5 + 33) flat: 6.60 + 34.65 = 41.25; service 52.80.
        bill("V2", "F2", "06:00:00", "09:12:00", F(32, 10), valley=F(33, 2), flat=F(99, 2)),
    ]
    assert run.data["end"] == "09:12"


def test_a_minimum_pauses_the_last_started_until_another_completes(tmp_path: Path, capsys) -> None:
    """40 kW; F1 and F2 30 kW with min_power_kw 20; T1 7 kW (RULES §9 "Minimum power"):
    06:00  V1 (F, 30) -> F1 alone: 30 kW.
    06:10  V2 (F, 30) -> F2: 40 / 2 = 20 each, equal to the minimum: enough.
           V1 has 30 x 1/6 = 5 kWh.
    06:20  V3 (T, 7) -> T1: 7, and (40 - 7) / 2 = 16.5 < 20 for V1 and V2: the one that
           started last, V2 (06:10), is paused; again without it: 30 + 7 = 37 <= 40.
           V1 has 5 + 20/6 = 25/3 kWh, V2 has 20/6 = 10/3 kWh (fees valley: x 1.2).
    07:03:20  V1 completes: 30 - 25/3 = 65/3 kWh at 30 kW = 13/18 h = 43 min 20 s.
           V2 resumes: 30 + 7 = 37 <= 40, 30 kW.
    07:10  a refused change gives a snapshot: V2 has 10/3 + 30 x 6:40 min = 10/3 + 10/3 = 20/3
           kWh (10/3 valley, 10/3 flat: 4.00 + 5.00 = 9.00); V3 7 x 50/60 = 35/6 kWh (14/3
           valley: 5.60, 7/6 flat: 1.75; 7.35).
    07:20  V3 completes (7 kWh from 06:20). 07:56:40  V2 completes: 80/3 kWh at 30 kW after
           07:03:20 = 8/9 h = 53 min 20 s.
    """
    config = (
        "[site]\nmax_power_kw = 40\n"
        + pile_toml(1, "F1", "fast", 30, 20)
        + pile_toml(2, "F2", "fast", 30, 20)
        + pile_toml(3, "T1", "common", 7)
    )
    events = "06:00 (A,V1,F,30)\n06:10 (A,V2,F,30)\n06:20 (A,V3,T,7)\n07:10 (C,V9,O,-1)\n"
    run = replay(tmp_path, capsys, config, events)
    assert run.code == 0
    assert site_of(run.snapshot("06:10:00")) == (D(40), D(40))
    assert piles_of(run.snapshot("06:10:00"))["F2"] == ("working", D(20), [("V2", 0, 0, False)])
    paused = run.snapshot("06:20:00")
    assert site_of(paused) == (D(40), D(37))
    assert piles_of(paused) == {
        # 25/3 kWh = 8.33; fee 25/3 x 1.2 = 10.00. 10/3 = 3.33 kWh; 4.00.
        "F1": ("working", D(30), [("V1", D("8.33"), D(10), False)]),
        "F2": ("working", D(0), [("V2", D("3.33"), D(4), True)]),
        "T1": ("working", D(7), [("V3", D(0), D(0), False)]),
    }
    resumed = run.snapshot("07:10:00")
    assert piles_of(resumed) == {
        "F1": ("working", D(0), []),
        "F2": ("working", D(30), [("V2", D("6.67"), D(9), False)]),
        "T1": ("working", D(7), [("V3", D("5.83"), D("7.35"), False)]),
    }
    assert bills_of(run) == [
        # valley 25/3 + 40 min at 30 = 85/3, flat 3 min 20 s at 30 = 5/3: 34/3 + 3.5/3 = 12.50
        bill("V1", "F1", "06:00:00", "07:03:20", F(19, 18), valley=F(85, 3), flat=F(5, 3)),
        bill("V3", "T1", "06:20:00", "07:20:00", F(1), valley=F(14, 3), flat=F(7, 3)),
        # paused 06:20-07:03:20, and its time counts: 06:10-07:56:40 = 1 h 46 min 40 s.
        bill("V2", "F2", "06:10:00", "07:56:40", F(16, 9), valley=F(10, 3), flat=F(80, 3)),
    ]


def test_a_site_event_mid_session_and_the_tariff_boundary(tmp_path: Path, capsys) -> None:
    """F1 30 kW under 20 kW; the split at 07:00 follows the power actually drawn (RULES §6):
    06:00  V1 (F, 30 kWh): 20 kW.           06:30  other load 8 kW: 12 kW from now on.
    07:00  valley -> flat: V1 has 20 x 0.5 + 12 x 0.5 = 16 kWh, all valley.
    07:30  the same load again is still an event: a snapshot, nothing changes. V1 has
           16 + 6 = 22 kWh; fee 16 x 0.4 + 6 x 0.7 + 22 x 0.8 = 6.4 + 4.2 + 17.6 = 28.20.
    08:10  V1 completes: 14 kWh at 12 kW = 7/6 h after 07:00.
    Bill: 16 valley + 14 flat = 6.40 + 9.80 = 16.20, service 24.00. (Spread in proportion
    to time instead, 60 of its 130 minutes would be valley: 13.85 kWh; not what it drew.)
    """
    config = "[site]\nmax_power_kw = 20\n" + pile_toml(1, "F1", "fast", 30)
    events = "06:00 (A,V1,F,30)\n06:30 (L, SITE, O, 8)\n07:30 (l,site,o,8.000)\n"
    run = replay(tmp_path, capsys, config, events)
    assert run.code == 0
    assert [s["events"] for s in run.data["snapshots"]] == [
        ["(A,V1,F,30)"],
        ["(L,SITE,O,8)"],
        ["(l,site,o,8.000)"],
    ]
    assert piles_of(run.snapshot("06:30:00"))["F1"] == ("working", D(12), [("V1", 10, 12, False)])
    assert site_of(run.snapshot("07:30:00")) == (D(12), D(12))
    assert piles_of(run.snapshot("07:30:00"))["F1"] == (
        "working",
        D(12),
        [("V1", D(22), D("28.2"), False)],
    )
    assert bills_of(run) == [
        bill("V1", "F1", "06:00:00", "08:10:00", F(13, 6), valley=F(16), flat=F(14))
    ]


def test_dispatch_looks_again_after_a_refused_event(tmp_path: Path, capsys) -> None:
    """F1, F2 30 kW with min 20 under 30 kW (one session at a time draws), M = 2 (RULES §9
    "Dispatch is unchanged": estimates at rated power, dispatch after every event):
    06:00  V1 (F, 60) -> F1, 30 kW. V2 (F, 3): F1 2 + 0.1 h, F2 0.1 h -> F2; two sessions at
           15 < 20, opened together: F2, listed last, is paused. V3 (F, 3): F1 2.1 h, F2 0.1
           (V2's 3 kWh at rated) + 0.1 h -> F2, now full. V4 (F, 6): F1 2 + 0.2 = 2.2 h,
           F2 0.1 + 0.1 + 0.2 = 0.4 h: F2 is soonest but full: V4 waits.
           F1's finish stays 08:12 (V1 draws its rating); F2's grows with the clock while V2 is
           paused: 06:24 + t. From 07:48 on F1 is soonest (a tie at 07:48 goes to F1).
    07:50  a refused change: dispatch looks again, and V4 joins F1's queue.
           V1 has 30 x 11/6 = 55 kWh: 30 valley (36.00) + 25 flat (37.50) = 73.50 yuan.
    08:00  V1 completes (60 kWh); V4 opens at F1; F1 and F2 at 15 < 20: the later start, V4
           (08:00, V2 06:00), is paused; V2 draws 30: 3 kWh by 08:06. V3 opens at F2 at 08:06,
           later than V4: paused; V4 draws 30: 6 kWh by 08:18. V3: 3 kWh by 08:24.
    """
    config = (
        "[station]\npile_queue_len = 2\n[site]\nmax_power_kw = 30\n"
        + pile_toml(1, "F1", "fast", 30, 20)
        + pile_toml(2, "F2", "fast", 30, 20)
    )
    events = (
        "06:00 (A,V1,F,60)\n06:00 (A,V2,F,3)\n06:00 (A,V3,F,3)\n06:00 (A,V4,F,6)\n"
        "07:50 (C,V9,O,5)\n"
    )
    run = replay(tmp_path, capsys, config, events)
    assert run.code == 0
    first = run.snapshot("06:00:00")
    assert [c["car"] for c in first["waiting"]] == ["V4"]
    assert piles_of(first)["F2"] == ("working", 0, [("V2", 0, 0, True), ("V3", 0, 0, False)])
    later = run.snapshot("07:50:00")
    assert later["waiting"] == []
    assert piles_of(later)["F1"] == (
        "working",
        D(30),
        [("V1", D(55), D("73.5"), False), ("V4", 0, 0, False)],
    )
    assert [r["event"] for r in run.data["refused"]] == ["(C,V9,O,5)"]
    assert bills_of(run) == [
        bill("V1", "F1", "06:00:00", "08:00:00", F(2), valley=F(30), flat=F(30)),
        bill("V2", "F2", "06:00:00", "08:06:00", F(21, 10), flat=F(3)),
        bill("V4", "F1", "08:00:00", "08:18:00", F(3, 10), flat=F(6)),
        bill("V3", "F2", "08:06:00", "08:24:00", F(3, 10), flat=F(3)),
    ]
    assert run.data["end"] == "08:24"
