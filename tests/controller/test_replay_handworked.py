"""A scenario replay worked out by hand from RULES.md and REPLAY.md, run through the real CLI.

Every expected value below is derived from the rules with the arithmetic written down (exact
Fractions, rounded half up only for comparison), never copied from the program's output.

Station (a smaller config than examples/station.toml, written by the test):
    F1 (id 1) fast 30 kW, F2 (id 2) fast 30 kW, T1 (id 3) common 7 kW;
    N = waiting_area_size = 2, M = pile_queue_len = 2, fault_policy "priority",
    dispatch "shortest", default tariff (no [tariff] table): valley 0.4 (23:00-07:00),
    flat 0.7 (07:00-10:00, 15:00-18:00, 21:00-23:00), peak 1.0 (10:00-15:00, 18:00-21:00),
    service fee 0.8 on every kWh.
A fast pile delivers 30 kWh per hour = 0.5 kWh per minute; the common pile 7 kWh per hour.
Queue numbers are written #F1, #T1, ... so they are not confused with the pile names.

Hand-worked timeline (finish = wait + own, RULES §2; "rem" = remaining energy of the car now
charging at that pile):

06:00 (A,V1,T,14)  #T1. Common piles: T1 only, empty: finish 14/7 = 2 h -> T1 [V1].
                   V1 charges from 06:00 (would end 08:00).
06:00 (A,V2,T,7)   #T2. T1: 2 h + 1 h = 3 h, T1 has a free place -> T1 [V1, V2] (full).
06:00 (A,V3,T,7)   #T3. T1 is the only candidate and is full -> V3 waits. waiting [V3].
06:00 (A,V4,F,15)  #F1. F1: 0 + 0.5 h, F2: 0 + 0.5 h: tie -> F1, listed first. F1 [V4],
                   charging 06:00-06:30.
06:00 (A,V5,F,90)  #F2. F1: 0.5 + 3 = 3.5 h, F2: 0 + 3 = 3 h -> F2 [V5], charging from 06:00
                   (would end 09:00).
06:00 (A,V6,F,15)  #F3. F1: 0.5 + 0.5 = 1 h, F2: 3 + 0.5 = 3.5 h -> F1 [V4, V6] (full).
06:00 (A,V7,F,30)  #F4. F1: 0.5 + 0.5 + 1 = 2 h, F2: 3 + 1 = 4 h. F1 finishes V7 soonest but
                   is full: V7 waits although F2 has a free place (RULES §2).
                   waiting [V3, V7]: the waiting area holds N = 2 cars.
06:00 (A,V8,F,5)   REFUSED: the waiting area is full (RULES §1). Nothing changes, no number
                   is used.
06:10 (C,V7,O,45)  V7 is in the waiting area: amount 30 -> 45, keeps #F4 and its place
                   (RULES §3). Dispatch: F1: rem(V4) = 15 - 5 = 10 kWh = 1/3 h, + 0.5 (V6)
                   + 1.5 (own) = 7/3 h; F2: rem(V5) = 90 - 5 = 85 kWh = 17/6 h, + 1.5 = 13/3 h.
                   F1 is soonest and full: V7 keeps waiting.
06:10 (C,V3,F,-1)  V3 changes mode T -> F: new number #F5 (F1..F4 are taken; V8 took none), at
                   the end of the fast line, behind V7 (#F4), although V3 stays first in the
                   waiting list (arrival order, REPLAY.md). Fast line: V7, V3. Both wait.
06:30              Completion first (RULES §5): V4 ends at F1 (bill 1). V6 starts at F1
                   (06:30-07:00). Dispatch, fast line head V7 (45 kWh): F1: 0.5 + 1.5 = 2 h,
                   F2: rem(V5) = 90 - 15 = 75 kWh = 2.5 h, + 1.5 = 4 h -> F1 [V6, V7].
                   Next head V3 (7 kWh): F1: 0.5 + 1.5 + 7/30 h, F2: 2.5 + 7/30 h -> F1 is
                   soonest and full: V3 waits, F2's free place notwithstanding.
06:30 (C,V7,O,20)  REFUSED: V7 is already in F1's queue (RULES §3), since completions and
                   dispatch come before user events of the same instant.
06:40 (A,V3,O,0)   V3 leaves from the waiting area: no bill. waiting [].
07:00              V6 ends at F1 (bill 2, 06:30-07:00, all valley: 07:00 belongs to flat).
                   V7 starts at F1 (45 kWh, would end 08:30).
07:10 (A,V9,F,30)  #F6. F1: rem(V7) = 45 - 5 = 40 kWh = 4/3 h, + 1 = 7/3 h = 14/6 h;
                   F2: rem(V5) = 90 - 35 = 55 kWh = 11/6 h, + 1 = 17/6 h -> F1 [V7, V9] (full).
07:30 (A,V1,O,0)   V1 is charging at T1: stopped and billed (bill 3, 06:00-07:30, 10.5 kWh,
                   crossing valley -> flat at 07:00). V2 starts at T1 (7 kWh, 07:30-08:30).
07:40 (B,F2,O,0)   F2 fails (RULES §4, priority): V5 stopped and billed (bill 4, 06:00-07:40,
                   50 kWh, valley -> flat). V5 keeps #F2 and still wants 90 - 50 = 40 kWh; it is
                   the only car of F2's queue: priority line (fast) [V5]. Dispatch: the only
                   candidate is F1, which is full: V5 waits in the priority line.
08:30              V7 ends at F1 (bill 5) and V2 ends at T1 (bill 6): settled in configuration
                   order, F1 before T1. V9 starts at F1 (30 kWh, 08:30-09:30). Dispatch: the
                   priority line head V5 (40 kWh) -> F1, the only candidate, now with a free
                   place: F1 [V9, V5]. Priority line empty.
08:40 (C,V5,O,20)  REFUSED: V5 is in F1's queue (RULES §3).
08:45 (B,F2,O,1)   F2 recovers (RULES §4): the cars not yet charging in the other working fast
                   piles (V5 at F1) are taken out into the priority line [V5]. Dispatch:
                   F1: rem(V9) = 30 - 7.5 = 22.5 kWh = 0.75 h, + 4/3 h = 25/12 h;
                   F2: 0 + 40/30 = 4/3 h -> F2 [V5], charging 08:45-10:05. F1 [V9].
After the last event the replay runs on:
09:30              V9 ends at F1 (bill 7, all flat).
10:05              V5 ends at F2 (bill 8, crossing flat -> peak at 10:00). end = "10:05".
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

CONFIG = """\
[station]
waiting_area_size = 2
pile_queue_len = 2
fault_policy = "priority"
dispatch = "shortest"

[[piles]]
id = 1
name = "F1"
mode = "fast"
power_kw = 30

[[piles]]
id = 2
name = "F2"
mode = "fast"
power_kw = 30

[[piles]]
id = 3
name = "T1"
mode = "common"
power_kw = 7
"""

EVENTS = """\
# hand-worked scenario, see the module docstring
06:00 (A,V1,T,14)
06:00 (A,V2,T,7)
06:00 (A,V3,T,7)
06:00 (A,V4,F,15)
06:00 (A,V5,F,90)
06:00 (A,V6,F,15)
06:00 (A,V7,F,30)
06:00 (A,V8,F,5)       # refused: waiting area full
06:10 (C,V7,O,45)      # amount change in the waiting area
06:10 (C,V3,F,-1)      # mode change T -> F: new number F5
06:30 (C,V7,O,20)      # refused: V7 is in F1's queue
06:40 (A,V3,O,0)       # cancel from the waiting area
07:10 (A, V9, F, 30)
07:30 (A,V1,O,0)       # cancel while charging: billed
07:40 (B,F2,O,0)       # fault
08:40 (C,V5,O,20)      # refused: V5 is in F1's queue
08:45 (B,F2,O,1)       # recovery
"""

FAST_KW = 30  # kWh per hour
COMMON_KW = 7

# Default tariff, yuan per kWh (RULES §6).
VALLEY = Fraction(4, 10)
FLAT = Fraction(7, 10)
PEAK = Fraction(10, 10)
SERVICE = Fraction(8, 10)


def half_up(x: Fraction, places: int) -> Decimal:
    """Round an exact non-negative Fraction half up to `places` decimals."""
    scale = 10**places
    return Decimal(math.floor(x * scale + Fraction(1, 2))) / scale


def r2(x: Fraction) -> Decimal:
    return half_up(x, 2)


def dec(value: float) -> Decimal:
    """A number from the JSON output, as the decimal it was printed as."""
    return Decimal(str(value))


def charge_fee(valley: Fraction, flat: Fraction, peak: Fraction) -> Fraction:
    return valley * VALLEY + flat * FLAT + peak * PEAK


def expected_bill(
    car: str,
    pile: str,
    station_id: int,
    start: str,
    end: str,
    hours: Fraction,
    *,
    valley: Fraction = Fraction(0),
    flat: Fraction = Fraction(0),
    peak: Fraction = Fraction(0),
) -> dict[str, Any]:
    kwh = valley + flat + peak
    charge = r2(charge_fee(valley, flat, peak))
    service = r2(kwh * SERVICE)
    return {
        "car": car,
        "pile": pile,
        "stationId": station_id,
        "quantity": r2(kwh),
        "timeOfUse": half_up(hours, 4),
        "startTime": start,
        "endTime": end,
        "costOfCharge": charge,
        "costOfService": service,
        "cost": charge + service,  # the sum of the two shown parts (REPLAY.md)
    }


# --- the bills, in the order the sessions ended ----------------------------------------------
BILLS = [
    # 1. V4 at F1 06:00-06:30: 30 kW x 1/2 h = 15 kWh, all valley.
    #    charge 15 x 0.4 = 6.00, service 15 x 0.8 = 12.00, total 18.00.
    expected_bill(
        "V4", "F1", 1, "06:00:00", "06:30:00", Fraction(1, 2), valley=FAST_KW * Fraction(30, 60)
    ),
    # 2. V6 at F1 06:30-07:00: 15 kWh, valley (07:00 itself belongs to flat, which starts there).
    expected_bill(
        "V6", "F1", 1, "06:30:00", "07:00:00", Fraction(1, 2), valley=FAST_KW * Fraction(30, 60)
    ),
    # 3. V1 cancelled while charging at T1, 06:00-07:30 = 1.5 h: 7 x 1.5 = 10.5 kWh;
    #    valley 06:00-07:00: 7 kWh, flat 07:00-07:30: 3.5 kWh.
    #    charge 7 x 0.4 + 3.5 x 0.7 = 2.80 + 2.45 = 5.25, service 10.5 x 0.8 = 8.40, total 13.65.
    expected_bill(
        "V1",
        "T1",
        3,
        "06:00:00",
        "07:30:00",
        Fraction(90, 60),
        valley=COMMON_KW * Fraction(60, 60),
        flat=COMMON_KW * Fraction(30, 60),
    ),
    # 4. V5 interrupted by F2's fault, 06:00-07:40 = 100 min: 30 x 100/60 = 50 kWh;
    #    valley 06:00-07:00: 30 kWh, flat 07:00-07:40: 20 kWh.
    #    charge 30 x 0.4 + 20 x 0.7 = 12 + 14 = 26.00, service 50 x 0.8 = 40.00, total 66.00.
    expected_bill(
        "V5",
        "F2",
        2,
        "06:00:00",
        "07:40:00",
        Fraction(100, 60),
        valley=FAST_KW * Fraction(60, 60),
        flat=FAST_KW * Fraction(40, 60),
    ),
    # 5. V7 at F1 07:00-08:30: 45 kWh (its changed amount), all flat.
    #    charge 45 x 0.7 = 31.50, service 36.00, total 67.50.
    expected_bill(
        "V7", "F1", 1, "07:00:00", "08:30:00", Fraction(90, 60), flat=FAST_KW * Fraction(90, 60)
    ),
    # 6. V2 at T1 07:30-08:30: 7 kWh flat; charge 4.90, service 5.60, total 10.50.
    #    Same instant as bill 5; F1 is configured before T1, so it comes after.
    expected_bill(
        "V2", "T1", 3, "07:30:00", "08:30:00", Fraction(1), flat=COMMON_KW * Fraction(60, 60)
    ),
    # 7. V9 at F1 08:30-09:30: 30 kWh flat; charge 21.00, service 24.00, total 45.00.
    expected_bill(
        "V9", "F1", 1, "08:30:00", "09:30:00", Fraction(1), flat=FAST_KW * Fraction(60, 60)
    ),
    # 8. V5's second session, its remaining 90 - 50 = 40 kWh at F2 from the recovery at 08:45:
    #    40/30 h = 80 min -> 10:05. flat 08:45-10:00 = 75 min: 37.5 kWh; peak 10:00-10:05: 2.5 kWh.
    #    charge 37.5 x 0.7 + 2.5 x 1.0 = 26.25 + 2.50 = 28.75, service 40 x 0.8 = 32.00,
    #    total 60.75.
    expected_bill(
        "V5",
        "F2",
        2,
        "08:45:00",
        "10:05:00",
        Fraction(90 - 50, FAST_KW),
        flat=FAST_KW * Fraction(75, 60),
        peak=FAST_KW * Fraction(5, 60),
    ),
]

REFUSED = [
    ("06:00:00", "(A,V8,F,5)"),  # waiting area full (N = 2: V3, V7)
    ("06:30:00", "(C,V7,O,20)"),  # V7 is in F1's queue since the 06:30 dispatch
    ("08:40:00", "(C,V5,O,20)"),  # V5 is in F1's queue since the 08:30 dispatch
]


def car(name: str, charged: Fraction = Fraction(0), fee: Fraction = Fraction(0)) -> tuple:
    """A car in a pile queue: (name, kWh received in this session, fee so far), rounded."""
    return (name, r2(charged), r2(fee))


def session(
    kw: int, *, valley_min: int = 0, flat_min: int = 0, peak_min: int = 0
) -> tuple[Fraction, Fraction]:
    """(kWh, charging + service fee) of a session that has run so many minutes per period."""
    valley = kw * Fraction(valley_min, 60)
    flat = kw * Fraction(flat_min, 60)
    peak = kw * Fraction(peak_min, 60)
    kwh = valley + flat + peak
    return kwh, charge_fee(valley, flat, peak) + kwh * SERVICE


# --- key snapshots: pile states and queues (charging car first), priority line, waiting area ----
SNAPSHOTS: dict[str, dict[str, Any]] = {
    # After all the 06:00 arrivals: V7 waits although F2 has a free place.
    "06:00:00": {
        "events": [
            "(A,V1,T,14)",
            "(A,V2,T,7)",
            "(A,V3,T,7)",
            "(A,V4,F,15)",
            "(A,V5,F,90)",
            "(A,V6,F,15)",
            "(A,V7,F,30)",
            "(A,V8,F,5)",
        ],
        "piles": {
            "F1": ("working", [car("V4"), car("V6")]),
            "F2": ("working", [car("V5")]),
            "T1": ("working", [car("V1"), car("V2")]),
        },
        "priority": [],
        "waiting": [("V3", "T", r2(Fraction(7))), ("V7", "F", r2(Fraction(30)))],
    },
    # 10 minutes in: 5 kWh on each fast pile, 7/6 kWh on T1, all valley (0.4 + 0.8 = 1.2).
    # V3 is now fast but keeps its place in the waiting list; V7 wants 45.
    "06:10:00": {
        "events": ["(C,V7,O,45)", "(C,V3,F,-1)"],
        "piles": {
            "F1": ("working", [car("V4", *session(FAST_KW, valley_min=10)), car("V6")]),
            "F2": ("working", [car("V5", *session(FAST_KW, valley_min=10))]),
            "T1": ("working", [car("V1", *session(COMMON_KW, valley_min=10)), car("V2")]),
        },
        "priority": [],
        "waiting": [("V3", "F", r2(Fraction(7))), ("V7", "F", r2(Fraction(45)))],
    },
    # V4 done; V6 just started (0 kWh); V7 (#F4) was called before V3 (#F5); V3 waits.
    "06:30:00": {
        "events": ["(C,V7,O,20)"],
        "piles": {
            "F1": ("working", [car("V6"), car("V7")]),
            "F2": ("working", [car("V5", *session(FAST_KW, valley_min=30))]),
            "T1": ("working", [car("V1", *session(COMMON_KW, valley_min=30)), car("V2")]),
        },
        "priority": [],
        "waiting": [("V3", "F", r2(Fraction(7)))],
    },
    "06:40:00": {
        "events": ["(A,V3,O,0)"],
        "piles": {
            "F1": ("working", [car("V6", *session(FAST_KW, valley_min=10)), car("V7")]),
            "F2": ("working", [car("V5", *session(FAST_KW, valley_min=40))]),
            "T1": ("working", [car("V1", *session(COMMON_KW, valley_min=40)), car("V2")]),
        },
        "priority": [],
        "waiting": [],
    },
    # V9 goes to F1 (7/3 h) rather than F2 (17/6 h).
    "07:10:00": {
        "events": ["(A,V9,F,30)"],
        "piles": {
            "F1": ("working", [car("V7", *session(FAST_KW, flat_min=10)), car("V9")]),
            "F2": ("working", [car("V5", *session(FAST_KW, valley_min=60, flat_min=10))]),
            "T1": (
                "working",
                [car("V1", *session(COMMON_KW, valley_min=60, flat_min=10)), car("V2")],
            ),
        },
        "priority": [],
        "waiting": [],
    },
    # V1 cancelled and billed; V2 just started at T1.
    "07:30:00": {
        "events": ["(A,V1,O,0)"],
        "piles": {
            "F1": ("working", [car("V7", *session(FAST_KW, flat_min=30)), car("V9")]),
            "F2": ("working", [car("V5", *session(FAST_KW, valley_min=60, flat_min=30))]),
            "T1": ("working", [car("V2")]),
        },
        "priority": [],
        "waiting": [],
    },
    # F2 faulted: V5 billed, its remaining 90 - 50 = 40 kWh in the fast priority line.
    "07:40:00": {
        "events": ["(B,F2,O,0)"],
        "piles": {
            "F1": ("working", [car("V7", *session(FAST_KW, flat_min=40)), car("V9")]),
            "F2": ("fault", []),
            "T1": ("working", [car("V2", *session(COMMON_KW, flat_min=10))]),
        },
        "priority": [("V5", "F", r2(Fraction(90) - FAST_KW * Fraction(100, 60)))],
        "waiting": [],
    },
    # Since 08:30: V9 charging at F1, V5 called from the priority line into F1's second place.
    "08:40:00": {
        "events": ["(C,V5,O,20)"],
        "piles": {
            "F1": ("working", [car("V9", *session(FAST_KW, flat_min=10)), car("V5")]),
            "F2": ("fault", []),
            "T1": ("working", []),
        },
        "priority": [],
        "waiting": [],
    },
    # Recovery: V5 (not yet charging at F1) regrouped and sent to F2 (4/3 h < 25/12 h).
    "08:45:00": {
        "events": ["(B,F2,O,1)"],
        "piles": {
            "F1": ("working", [car("V9", *session(FAST_KW, flat_min=15))]),
            "F2": ("working", [car("V5")]),
            "T1": ("working", []),
        },
        "priority": [],
        "waiting": [],
    },
}


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("handworked")
    config = folder / "station.toml"
    events = folder / "events.txt"
    config.write_text(CONFIG, encoding="utf-8")
    events.write_text(EVENTS, encoding="utf-8")
    command = Path(sys.executable).parent / "charge-station"
    done = subprocess.run(
        [str(command), "replay", "--config", str(config), str(events), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_snapshot_times_are_the_distinct_event_times(replay: dict[str, Any]) -> None:
    times = [s["time"] for s in replay["snapshots"]]
    assert times == [
        "06:00:00",
        "06:10:00",
        "06:30:00",
        "06:40:00",
        "07:10:00",
        "07:30:00",
        "07:40:00",
        "08:40:00",
        "08:45:00",
    ]


@pytest.mark.parametrize("time", list(SNAPSHOTS))
def test_key_snapshot(replay: dict[str, Any], time: str) -> None:
    want = SNAPSHOTS[time]
    (snap,) = [s for s in replay["snapshots"] if s["time"] == time]
    assert snap["events"] == want["events"]
    got_piles = {
        p["name"]: (p["state"], [(c["car"], dec(c["charged"]), dec(c["fee"])) for c in p["cars"]])
        for p in snap["piles"]
    }
    assert list(got_piles) == ["F1", "F2", "T1"]  # configuration order
    assert got_piles == want["piles"]
    got_priority = [(c["car"], c["mode"], dec(c["quantity"])) for c in snap["priority"]]
    assert got_priority == want["priority"]
    got_waiting = [(c["car"], c["mode"], dec(c["quantity"])) for c in snap["waiting"]]
    assert got_waiting == want["waiting"]


def test_bills(replay: dict[str, Any]) -> None:
    got = replay["bills"]
    assert [(b["car"], b["pile"]) for b in got] == [(b["car"], b["pile"]) for b in BILLS]
    for bill, want in zip(got, BILLS, strict=True):
        for key in ("car", "pile", "stationId", "startTime", "endTime"):
            assert bill[key] == want[key], (want["car"], key)
        for key in ("quantity", "costOfCharge", "costOfService", "cost"):
            assert dec(bill[key]).quantize(Decimal("0.01")) == want[key], (want["car"], key)
        assert dec(bill["timeOfUse"]).quantize(Decimal("0.0001")) == want["timeOfUse"], want["car"]


def test_spot_check_of_the_worked_sums() -> None:
    """The bills' totals as worked in the comments, so a slip in the helpers would show."""
    assert [b["cost"] for b in BILLS] == [
        Decimal("18.00"),
        Decimal("18.00"),
        Decimal("13.65"),
        Decimal("66.00"),
        Decimal("67.50"),
        Decimal("10.50"),
        Decimal("45.00"),
        Decimal("60.75"),
    ]


def test_refused(replay: dict[str, Any]) -> None:
    assert [(r["time"], r["event"]) for r in replay["refused"]] == REFUSED
    assert all(r["reason"] for r in replay["refused"])


def test_end(replay: dict[str, Any]) -> None:
    # The last session (V5's second, at F2) ends at 08:45 + 80 min = 10:05.
    assert replay["end"] == "10:05"
