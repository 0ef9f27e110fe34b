"""The systemd units in systemd/: they parse, say what the station needs (notify, watchdog, a
start limit that trips, a stop timeout past the safe stop, hardening that keeps serial ports),
and every program, option, path and environment file they name exists; `systemd-analyze
verify` accepts them where systemd is installed. docs/deploy.md's commands are real ones."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.cli import build_parser as pile_sim_parser
from server.cli import build_parser as station_parser

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"
DEPLOY = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
VENV = "/opt/charge-station"
PARSERS = {"charge-station": station_parser, "pile-sim": pile_sim_parser}

Unit = dict[str, list[tuple[str, str]]]


def parse_unit(text: str) -> Unit:
    """systemd's unit syntax: [Section], Key=Value, # and ; comments, a trailing backslash
    continues a line, and a key may repeat (each assignment is kept, in order)."""
    unit: Unit = {}
    section: list[tuple[str, str]] | None = None
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None, f"line {number}: not Key=Value in a section: {raw!r}"
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key.strip()), f"line {number}: key {key!r}"
        section.append((key.strip(), value.strip()))
    assert not pending, "the file ends in a continuation"
    return unit


def values(unit: Unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: Unit, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= is set {len(found)} times, expected once"
    return found[0]


def seconds(text: str) -> float:
    """A systemd time span: 30, 30s, 2min, 1min 30s."""
    factors = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+)\s*([a-z]*)", text)
    assert parts, text
    return float(sum(int(n) * factors[u] for n, u in parts))


def env_file(path: Path) -> dict[str, str]:
    """An EnvironmentFile: KEY=VALUE lines, # comments; values may be quoted."""
    env = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f"{path.name}: {line!r}"
        words = shlex.split(value)
        env[key] = " ".join(words)
    return env


def repo_env_file(installed: str) -> Path:
    """The file under systemd/ that an EnvironmentFile= path is installed from:
    /etc/charge-station/pile-sim-%i.env comes from systemd/pile-sim.env."""
    name = Path(installed.lstrip("-")).name.replace("-%i", "")
    return UNITS / name


def console_scripts() -> dict[str, str]:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    lines = setup["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)  # type: ignore[misc]


def exec_start(unit: Unit) -> tuple[str, list[str]]:
    """ExecStart's program (the console script's name) and its arguments, with $VARS taken
    from the unit's environment files as systemd would (an unbraced $VAR splits into words)."""
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    program = Path(argv[0])
    assert program.parent == Path(VENV, "bin"), f"{argv[0]} is not in the venv {VENV}"
    env: dict[str, str] = {}
    for path in values(unit, "Service", "EnvironmentFile"):
        env.update(env_file(repo_env_file(path)))
    args: list[str] = []
    for word in argv[1:]:
        if word.startswith("$"):
            name = word.strip("${}")
            assert name in env, f"{word} is set in no environment file of the unit"
            args.extend(env[name].split())
        else:
            args.append(word)
    return program.name, args


@pytest.fixture(scope="module")
def station() -> Unit:
    return parse_unit((UNITS / "charge-station.service").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pile_sim() -> Unit:
    return parse_unit((UNITS / "pile-sim@.service").read_text(encoding="utf-8"))


def test_the_station_unit_is_a_notify_service_with_a_watchdog(station: Unit) -> None:
    assert one(station, "Service", "Type") == "notify"
    assert one(station, "Service", "NotifyAccess") == "main"
    assert seconds(one(station, "Service", "WatchdogSec")) == 30
    # Readiness may take [server] ready_timeout_s (30 s by default) after the database opens.
    assert seconds(one(station, "Service", "TimeoutStartSec")) > 30
    assert one(station, "Install", "WantedBy") == "multi-user.target"


def test_a_crash_loop_really_stops(station: Unit) -> None:
    assert one(station, "Service", "Restart") == "on-failure"
    interval_s = seconds(one(station, "Unit", "StartLimitIntervalSec"))
    burst = int(one(station, "Unit", "StartLimitBurst"))
    restart_s = seconds(one(station, "Service", "RestartSec"))
    # The limit trips only if `burst` restarts fit in the interval; with systemd's default
    # (5 in 10 s) and RestartSec=5 they never would, and the loop would go on for ever.
    assert interval_s > 0 and burst > 1
    assert burst * restart_s < interval_s


def test_the_stop_timeout_leaves_room_for_the_safe_stop(station: Unit) -> None:
    # The station stops and bills every session in about 10 s on a healthy bus.
    assert seconds(one(station, "Service", "TimeoutStopSec")) >= 20
    assert values(station, "Service", "KillSignal") in ([], ["SIGTERM"])
    assert values(station, "Service", "KillMode") in ([], ["control-group"], ["mixed"])


def test_the_station_runs_as_its_own_user_with_serial_access(station: Unit) -> None:
    assert one(station, "Service", "User") == "charge-station"
    assert "dialout" in " ".join(values(station, "Service", "SupplementaryGroups")).split()
    assert one(station, "Service", "StateDirectory") == "charge-station"
    assert one(station, "Service", "ConfigurationDirectory") == "charge-station"
    assert values(station, "Service", "StandardOutput") in ([], ["journal"])
    assert values(station, "Service", "StandardError") in ([], ["journal"], ["inherit"])


def test_hardening_that_keeps_the_serial_ports(station: Unit) -> None:
    service = dict(station["Service"])
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
    }.items():
        assert service.get(key) == value, f"{key}={service.get(key)}, expected {value}"
    # These would hide /dev/ttyUSB* or strip the dialout group.
    assert service.get("PrivateDevices", "no") == "no"
    assert service.get("PrivateUsers", "no") == "no"
    assert service.get("DynamicUser", "no") == "no"
    # With any DeviceAllow= (ProtectClock= adds one) only the listed devices open: the usual
    # serial drivers must be among them.
    allowed = {v.split()[0] for v in values(station, "Service", "DeviceAllow")}
    if allowed or service.get("ProtectClock") == "yes" or service.get("DevicePolicy") == "closed":
        assert {"char-ttyUSB", "char-ttyS", "char-ttyACM"} <= allowed
    # A serial port is a file: the address families only limit sockets (AF_UNIX for journald
    # and sd_notify, AF_INET/AF_INET6 for the API and Modbus TCP).
    families = set(one(station, "Service", "RestrictAddressFamilies").split())
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= families


def test_the_station_command_and_its_paths_exist(station: Unit) -> None:
    program, args = exec_start(station)
    assert program in console_scripts()
    parsed = PARSERS[program]().parse_args(args)  # an unknown option exits here
    assert parsed.command == "serve"
    assert parsed.state == "/var/lib/" + one(station, "Service", "StateDirectory")
    config_dir = "/etc/" + one(station, "Service", "ConfigurationDirectory")
    assert Path(parsed.config).parent == Path(config_dir)
    assert parsed.config in DEPLOY  # the guide installs the configuration there
    for path in values(station, "Service", "EnvironmentFile"):
        assert repo_env_file(path).is_file(), f"{path} has no file under systemd/"
        assert path.lstrip("-") in DEPLOY, f"docs/deploy.md does not install {path}"
    assert "/etc/systemd/system/charge-station.service" in DEPLOY


def test_the_bench_unit_runs_pile_sim_from_its_instance_env_file(pile_sim: Unit) -> None:
    (env_path,) = values(pile_sim, "Service", "EnvironmentFile")
    assert "%i" in env_path  # the instance name picks the piles
    assert repo_env_file(env_path).is_file()
    installed = env_path.lstrip("-").replace("%i", "bench")
    assert installed in DEPLOY, f"docs/deploy.md does not install {installed}"
    program, args = exec_start(pile_sim)
    assert program in console_scripts()
    parsed = PARSERS[program]().parse_args(args)
    # The station's configuration needs a fixed address: a TCP port or a serial device.
    assert parsed.tcp is not None or parsed.serial is not None
    assert parsed.pile, "the example env file names no piles"
    assert one(pile_sim, "Service", "Restart") == "on-failure"
    assert one(pile_sim, "Unit", "Before") == "charge-station.service"
    assert one(pile_sim, "Service", "NoNewPrivileges") == "yes"
    assert one(pile_sim, "Service", "ProtectSystem") == "strict"


def shell_blocks(markdown: str) -> list[str]:
    """The text of every fenced block marked sh, or not marked (the crontab line)."""
    blocks, current, lang = [], [], None
    for line in markdown.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang = line[3:].strip()
                current = []
            else:
                if lang in ("sh", ""):
                    blocks.append("\n".join(current))
                lang = None
        elif lang is not None:
            current.append(line)
    return blocks


def deploy_commands() -> list[tuple[str, list[str]]]:
    """Every charge-station and pile-sim command in docs/deploy.md's shell blocks."""
    commands = []
    for block in shell_blocks(DEPLOY):
        text = re.sub(r"\\\n\s*", " ", block)  # join continued lines
        for raw in text.splitlines():
            line = "" if raw.lstrip().startswith("#") else raw.split(" #")[0]
            line = re.sub(r"\$\([^)]*\)", "X", line)  # $(date +%F) is one word to us
            try:
                words = shlex.split(line)
            except ValueError:
                continue  # not a shell line (a TOML or Python line in a heredoc)
            for i, word in enumerate(words):
                name = Path(word).name
                if name in PARSERS and word in (f"{VENV}/bin/{name}", name if i == 0 else ""):
                    rest = []
                    for arg in words[i + 1 :]:
                        if arg in ("&&", "||", "|", ";") or arg.startswith((">", "<")):
                            break
                        rest.append(arg)
                    commands.append((name, rest))
    return commands


def test_every_command_in_the_deploy_guide_exists() -> None:
    commands = deploy_commands()
    used = {args[0] for name, args in commands if name == "charge-station" and args}
    assert {"user", "codes", "backup", "restore", "replay"} <= used
    for name, args in commands:
        if args == ["--help"]:
            continue
        try:
            PARSERS[name]().parse_args(args)
        except SystemExit:
            pytest.fail(f"docs/deploy.md: `{name} {' '.join(args)}` is not a valid command")


def test_the_deploy_guide_covers_what_a_technician_needs() -> None:
    for needed in (
        "python3 -m venv /opt/charge-station",
        "useradd --system",
        "--groups dialout",
        "systemctl enable --now charge-station",
        "journalctl -u charge-station -f",
        "systemctl status charge-station",
        "subjectAltName",
        "charge-client --cafile",
        "120 Ω",
        "EVSE-WB-DIN",
        "SDM630",
        "--keep-queue",
    ):
        assert needed in DEPLOY, f"docs/deploy.md says nothing of {needed!r}"
    for source in re.findall(r"(?:systemd|examples)/[\w@.-]+\.(?:service|env|toml)", DEPLOY):
        assert (ROOT / source).is_file(), f"docs/deploy.md names {source}, which does not exist"


def verify_copies(tmp_path: Path) -> list[Path]:
    """Copies of the units whose programs are this venv's, so that systemd-analyze, which
    checks that ExecStart= can run, sees real programs; the template as an instance."""
    bin_dir = str(Path(sys.executable).parent) + "/"
    copies = []
    for source, name in (
        ("charge-station.service", "charge-station.service"),
        ("pile-sim@.service", "pile-sim@bench.service"),
    ):
        text = (UNITS / source).read_text(encoding="utf-8").replace(f"{VENV}/bin/", bin_dir)
        copy = tmp_path / name
        copy.write_text(text, encoding="utf-8")
        copies.append(copy)
    return copies


def systemd_analyze(*units: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here; the parser tests above still run")
    return subprocess.run(
        ["systemd-analyze", "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def complaints(done: subprocess.CompletedProcess[str], units: list[Path]) -> list[str]:
    names = [u.name for u in units]
    return [line for line in done.stderr.splitlines() if any(n in line for n in names)]


def test_systemd_analyze_verify_accepts_both_units(tmp_path: Path) -> None:
    units = verify_copies(tmp_path)
    done = systemd_analyze(*units)
    assert done.returncode == 0, done.stderr
    # verify exits 0 on an unknown key or a bad value, but says so: no word about our units.
    assert complaints(done, units) == [], done.stderr


def test_systemd_analyze_would_catch_a_mistake(tmp_path: Path) -> None:
    (unit, _) = verify_copies(tmp_path)
    text = unit.read_text(encoding="utf-8").replace("WatchdogSec=", "WatchdgSec=")
    unit.write_text(text.replace("ProtectHome=yes", "ProtectHome=maybe"), encoding="utf-8")
    done = systemd_analyze(unit)
    found = "\n".join(complaints(done, [unit]))
    assert "WatchdgSec" in found and "maybe" in found
