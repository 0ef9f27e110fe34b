"""`charge-station replay`: input format, malformed and refused events, and the JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "examples" / "station.toml"
EXAMPLE_EVENTS = ROOT / "examples" / "day.txt"
SCRIPT = Path(sys.executable).parent / "charge-station"


def replay(tmp_path: Path, events: str, capsys, config: str | None = None) -> tuple[int, str, str]:
    path = tmp_path / "events.txt"
    path.write_text(events)
    args = ["replay", str(path), "--json"]
    if config is not None:
        cfg = tmp_path / "station.toml"
        cfg.write_text(config)
        args += ["--config", str(cfg)]
    else:
        args += ["--config", str(EXAMPLE_CONFIG)]
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_shipped_example_replays_through_the_installed_command() -> None:
    done = subprocess.run(
        [str(SCRIPT), "replay", "--config", str(EXAMPLE_CONFIG), str(EXAMPLE_EVENTS), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == {"snapshots", "refused", "bills", "end"}
    times = [s["time"] for s in data["snapshots"]]
    assert times == sorted(times) and len(times) == len(set(times))
    # The readable table is the default.
    table = subprocess.run(
        [str(SCRIPT), "replay", "--config", str(EXAMPLE_CONFIG), str(EXAMPLE_EVENTS)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Bills:" in table.stdout and "T1" in table.stdout


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("06:00 A,V1,T,40", "expected"),
        ("06:00 (A,V1,T)", "4 fields"),
        ("25:00 (A,V1,T,40)", "does not exist"),
        ("06:60 (A,V1,T,40)", "does not exist"),
        ("06:00:61 (A,V1,T,40)", "does not exist"),
        ("06:0 (A,V1,T,40)", "two digits"),
        ("06:00 (A,V1,T,-5)", "negative"),
        ("06:00 (C,V1,T,-2)", "negative"),
        ("06:00 (A,V1,O,5)", "mode F or T"),
        ("06:00 (A,V1,X,5)", "mode letter"),
        ("06:00 (B,T1,O,2)", "pile event"),
        ("06:00 (B,T1,F,0)", "pile event"),
        ("06:00 (D,V1,T,5)", "unknown event letter"),
        ("06:00 (A,V1,T,ten)", "not a number"),
        ("06:00 (A,V1,T,1.2345)", "3 decimal places"),
        ("06:00 (A,,T,5)", "not a car or pile name"),
    ],
)
def test_malformed_input_stops_before_anything_runs(
    tmp_path: Path, capsys, line: str, words: str
) -> None:
    code, out, err = replay(tmp_path, f"06:00 (A,V0,T,10)\n# comment\n\n{line}\n", capsys)
    assert code == 2
    assert out == ""  # nothing ran
    assert "line 4" in err and words in err


def test_time_going_back_is_malformed(tmp_path: Path, capsys) -> None:
    code, out, err = replay(tmp_path, "06:00 (A,V1,T,10)\n05:59:59 (A,V2,T,10)\n", capsys)
    assert code == 2 and out == "" and "line 2" in err and "goes back" in err


def test_refused_events_are_listed_and_change_nothing(tmp_path: Path, capsys) -> None:
    config = """
[station]
waiting_area_size = 1
pile_queue_len = 1
[[piles]]
id = 3
name = "T1"
mode = "common"
power_kw = 7
"""
    events = """
06:00 (A,V1,T,7)      # charging at T1 until 07:00
06:00 (A,V2,T,7)      # waiting
06:01 (A,V3,T,7)      # refused: the waiting area holds N = 1
06:02 (A,V2,F,9)      # refused: V2 is already in the station
06:03 (C,V1,O,5)      # refused: V1 is in a pile queue
06:04 (C,V9,O,5)      # refused: no such car
06:05 (A,V9,O,0)      # refused: no such car to cancel
06:06 (C,V2,O,0)      # refused: a change to 0 kWh
06:07 (B,X9,O,0)      # refused: unknown pile
06:08 (B,T1,O,1)      # refused: T1 is working
06:09 (B,T1,O,0)      # T1 fails: V1 to the priority line
06:10 (B,T1,O,0)      # refused: already faulted
06:11 (C,V1,T,5)      # refused: V1 is in the priority line
06:12 ( C , V2 , O , -1 )  # changes nothing, and is not refused
"""
    code, out, _ = replay(tmp_path, events, capsys, config)
    assert code == 0
    data = json.loads(out)
    refused = [(r["time"], r["event"]) for r in data["refused"]]
    assert refused == [
        ("06:01:00", "(A,V3,T,7)"),
        ("06:02:00", "(A,V2,F,9)"),
        ("06:03:00", "(C,V1,O,5)"),
        ("06:04:00", "(C,V9,O,5)"),
        ("06:05:00", "(A,V9,O,0)"),
        ("06:06:00", "(C,V2,O,0)"),
        ("06:07:00", "(B,X9,O,0)"),
        ("06:08:00", "(B,T1,O,1)"),
        ("06:10:00", "(B,T1,O,0)"),
        ("06:11:00", "(C,V1,T,5)"),
    ]
    assert all(r["reason"] for r in data["refused"])
    last = data["snapshots"][-1]
    assert last["events"] == ["(C,V2,O,-1)"]
    assert last["waiting"] == [{"car": "V2", "mode": "T", "quantity": 7.0}]
    # V1 charged 06:00-06:09 at 7 kW: 1.05 kWh; it still wants 7 - 1.05 = 5.95 kWh.
    assert last["priority"] == [{"car": "V1", "mode": "T", "quantity": 5.95}]
    assert last["piles"] == [{"name": "T1", "state": "fault", "cars": []}]


def test_output_conventions(tmp_path: Path, capsys) -> None:
    events = """
22:00 (A,V1,T,30)
22:30 (A,V2,F,10)
"""
    code, out, err = replay(tmp_path, events, capsys)
    assert code == 0 and err == ""
    data = json.loads(out)
    first = data["snapshots"][0]
    assert first["time"] == "22:00:00"
    assert [p["name"] for p in first["piles"]] == ["F1", "F2", "T1", "T2", "T3"]
    snap = data["snapshots"][1]
    # At 22:30 V1 has 7 kW * 0.5 h = 3.5 kWh, all flat (21-23): 3.5 * (0.7 + 0.8) = 5.25 yuan.
    assert snap["piles"][2]["cars"] == [{"car": "V1", "charged": 3.5, "fee": 5.25}]
    assert snap["piles"][0]["cars"] == [{"car": "V2", "charged": 0.0, "fee": 0.0}]
    v2, v1 = data["bills"]
    # V2: 10 kWh at 30 kW, 22:30-22:50, flat: 7 + 8 = 15 yuan.
    assert v2 == {
        "car": "V2",
        "stationId": 1,
        "pile": "F1",
        "quantity": 10.0,
        "timeOfUse": 0.3333,
        "startTime": "22:30:00",
        "endTime": "22:50:00",
        "costOfCharge": 7.0,
        "costOfService": 8.0,
        "cost": 15.0,
    }
    # V1: 30 kWh at 7 kW = 30/7 h = 4 h 17 min 8.57 s from 22:00: ends 02:17:09 the next day.
    # flat 22-23: 7 kWh * 0.7 = 4.9; valley from 23:00: 23 kWh * 0.4 = 9.2; service 30 * 0.8 = 24.
    assert v1["startTime"] == "22:00:00" and v1["endTime"] == "02:17:09+1"
    assert v1["timeOfUse"] == 4.2857
    assert (v1["costOfCharge"], v1["costOfService"], v1["cost"]) == (14.1, 24.0, 38.1)
    assert data["end"] == "02:17+1"  # floored to the minute


def test_end_is_null_when_no_session_ran(tmp_path: Path, capsys) -> None:
    code, out, _ = replay(tmp_path, "06:00 (A,V1,O,0)\n", capsys)
    assert code == 0 and json.loads(out)["end"] is None


def test_cars_that_can_never_be_served_are_reported(tmp_path: Path, capsys) -> None:
    code, out, err = replay(
        tmp_path, "06:00 (B,F1,O,0)\n06:00 (B,F2,O,0)\n06:01 (A,V1,F,10)\n", capsys
    )
    assert code == 0
    assert json.loads(out)["snapshots"][-1]["waiting"][0]["car"] == "V1"
    assert "V1" in err and "never be served" in err


def test_bad_config_exits_2_naming_the_key(tmp_path: Path, capsys) -> None:
    code, out, err = replay(
        tmp_path, "06:00 (A,V1,T,10)\n", capsys, "[station]\npile_queue_len = 0\n"
    )
    assert code == 2 and out == ""
    assert "station.pile_queue_len" in err


def test_missing_events_file(tmp_path: Path, capsys) -> None:
    assert main(["replay", str(tmp_path / "nope.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err
