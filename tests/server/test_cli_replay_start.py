"""`charge-station replay` starts light: what it imports, and its arguments read without argparse
giving what argparse gives (docs/performance.md, "Replay start-up")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import ReplayArgs, build_parser, main, replay_args

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "examples" / "station.toml")
EVENTS = str(ROOT / "examples" / "day.txt")
SCRIPT = Path(sys.executable).parent / "charge-station"

# The replay needs no event loop, network, database or tokens; argparse, hashlib, pathlib and
# shutil are gone from its path because each cost milliseconds of a ~30 ms start.
NOT_IMPORTED = {
    "asyncio",
    "tornado",
    "pymodbus",
    "peewee",
    "jwt",
    "ssl",
    "subprocess",
    "logging",
    "argparse",
    "hashlib",
    "pathlib",
    "shutil",
    "server.commands",
    "server.assembly",
}


def imported_by(*args: str) -> set[str]:
    """Every module the installed command imports to run `args` (-X importtime's list)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "the replay printed nothing"
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    names = {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # lines[0] is the header
    assert "controller.replay.runner" in names  # the list is the replay's own
    return names


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_the_replay_imports_nothing_it_does_not_use(as_json: bool) -> None:
    args = ["replay", "--config", CONFIG, EVENTS] + (["--json"] if as_json else [])
    names = imported_by(*args)
    loaded = {n for n in names if n in NOT_IMPORTED or n.split(".")[0] in NOT_IMPORTED}
    assert loaded == set()


def test_the_other_commands_still_get_their_modules() -> None:
    # The same check on a command that needs argparse, so that the list above means something.
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(SCRIPT), "codes", "issue", "--hours", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "--hours" in done.stderr
    assert "import time:" in done.stderr and " argparse\n" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "day.txt"],
        ["replay", "day.txt", "--json"],
        ["replay", "--json", "day.txt"],
        ["replay", "--config", "s.toml", "day.txt"],
        ["replay", "day.txt", "--config", "s.toml", "--json"],
        ["replay", "--json", "--config", "s.toml", "day.txt", "--json"],
        ["replay", "--config", "", "day.txt"],
        ["replay", "replay"],
    ],
)
def test_plain_arguments_are_read_as_argparse_reads_them(argv: list[str]) -> None:
    plain = replay_args(argv)
    parsed = build_parser().parse_args(argv)
    assert plain == ReplayArgs(parsed.events, parsed.config, parsed.json)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["serve"],
        ["replay"],
        ["replay", "--json"],
        ["replay", "-h"],
        ["replay", "--help"],
        ["replay", "--conf", "s.toml", "day.txt"],  # an abbreviation: argparse's to accept
        ["replay", "--config=s.toml", "day.txt"],
        ["replay", "--config", "s.toml", "--config", "t.toml", "day.txt"],
        ["replay", "--config", "--json", "day.txt"],
        ["replay", "day.txt", "--config"],
        ["replay", "a.txt", "b.txt"],
        ["replay", "-"],
        ["replay", "--", "day.txt"],
        ["replay", "--jsn", "day.txt"],
    ],
)
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert replay_args(argv) is None


def test_both_ways_of_reading_the_arguments_print_the_same(capsys) -> None:
    assert main(["replay", "--config", CONFIG, EVENTS, "--json"]) == 0
    plain = capsys.readouterr().out
    assert main(["replay", f"--config={CONFIG}", EVENTS, "--json"]) == 0  # through argparse
    assert capsys.readouterr().out == plain
    assert plain.startswith('{"snapshots": [')


def test_replay_help_and_mistakes_are_still_argparse_s(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["replay", "--help"])
    assert exit_info.value.code == 0
    assert "--config FILE" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["replay", "a.txt", "b.txt"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: b.txt" in capsys.readouterr().err
