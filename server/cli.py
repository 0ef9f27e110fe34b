"""`charge-station`: the station's command line: its arguments, and the command they name.

Each command imports only what it uses. `replay` reads its arguments without argparse and imports
the replay alone: no asyncio, Tornado, pymodbus or peewee (docs/performance.md, "Replay
start-up"). The other commands live in server.commands, imported when one of them runs.
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, NamedTuple

from server.exit_codes import EXIT_BAD_INPUT, EXIT_OK

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence


REPLAY_GC_THRESHOLD = 20_000  # objects made between two passes of the collector (default 700)


class ReplayArgs(NamedTuple):
    """The replay's arguments, however they were read."""

    events: str
    config: str | None = None
    json: bool = False


def replay_args(argv: Sequence[str]) -> ReplayArgs | None:
    """`replay [--config FILE] [--json] EVENTS`, in any order, read without argparse: importing
    it and building the parser cost the replay more than replaying a day. None for anything
    else (help, abbreviations, `--config=FILE`, a mistake): argparse reads those, and says what
    is wrong."""
    if not argv or argv[0] != "replay":
        return None
    events = config = None
    as_json = False
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--json":
            as_json = True
        elif arg == "--config" and config is None:
            config = next(rest, None)
            if config is None or config.startswith("-"):
                return None
        elif events is None and not arg.startswith("-"):
            events = arg
        else:
            return None
    return None if events is None else ReplayArgs(events, config, as_json)


def run_replay(args: ReplayArgs) -> int:
    from controller.config import ConfigError, default_config, load_config
    from controller.replay.output import dumps, to_text
    from controller.replay.runner import replay
    from controller.replay.scenario import ScenarioError, parse_scenario
    from server.sections import COMPONENT_SECTIONS

    try:
        # The server's sections are its components' (not the replay's): accepted, left alone.
        config = load_config(args.config, COMPONENT_SECTIONS) if args.config else default_config()
    except ConfigError as exc:
        print(f"charge-station: configuration {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with open(args.events, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"charge-station: cannot read {args.events}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        events = parse_scenario(text, site_limit=config.site is not None)
    except ScenarioError as exc:
        print(f"charge-station: {args.events}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    result = replay(config, events)
    print(dumps(result) if args.json else to_text(result))
    for held in result.open_sessions:
        how = "paused" if held.paused else "at 0 kW"
        print(
            f"charge-station: car {held.car} ({held.queue_no}) stays at pile {held.pile} with "
            f"its session open ({how}) when no session draws power any more: no bill",
            file=sys.stderr,
        )
    for req in result.stranded:
        print(
            f"charge-station: car {req.car} ({req.queue_no}) can never be served: "
            f"no working pile can take it",
            file=sys.stderr,
        )
    return EXIT_OK


def _replay_namespace(args: argparse.Namespace) -> int:
    return run_replay(ReplayArgs(args.events, args.config, args.json))


def _command(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """The handler `name` of server.commands.`module`, imported when its command runs (they
    import asyncio)."""

    def run(args: argparse.Namespace) -> int:
        from server.commands import state, station, users

        commands = {"station": station, "users": users, "state": state}[module]
        handler: Callable[[argparse.Namespace], int] = getattr(commands, name)
        return handler(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="charge-station", description="The EV charging station's controller."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rp = commands.add_parser(
        "replay",
        help="run a scripted scenario on the station's rules with simulated piles",
        description="Replay a scenario on a virtual clock and print the station after each "
        "event time and every bill.",
    )
    rp.add_argument(
        "--config",
        metavar="FILE",
        help="station configuration (TOML); default: the brief's station",
    )
    rp.add_argument("events", metavar="EVENTS", help="scenario file, one event a line")
    rp.add_argument("--json", action="store_true", help="print one JSON object")
    rp.set_defaults(run=_replay_namespace)

    sv = commands.add_parser(
        "serve", help="run the station: the piles of the configuration and the API"
    )
    sv.add_argument("--config", metavar="FILE", help="station configuration (TOML)")
    sv.add_argument(
        "--state", metavar="DIR", default="state", help="state directory (default ./state)"
    )
    sv.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sv.set_defaults(run=_command("station", "serve"))

    dm = commands.add_parser("demo", help="the brief's station on simulated piles, ready to try")
    dm.add_argument(
        "--state", metavar="DIR", default="state", help="state directory (default ./state)"
    )
    dm.add_argument(
        "--port", type=int, default=8080, help="HTTP port (default 8080; 0: a free one)"
    )
    dm.add_argument("--scale", type=float, default=60.0, help="time speed-up (default 60)")
    dm.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    dm.set_defaults(run=_command("station", "demo"))

    us = commands.add_parser("user", help="station users: operators, passwords, revocations")
    us_commands = us.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    ua = us_commands.add_parser(
        "add", help="create a user; the password is read from standard input"
    )
    ua.add_argument("username")
    ua.add_argument(
        "--operator",
        dest="role",
        action="store_const",
        const="operator",
        default="driver",
        help="an operator (the /admin API); without it a driver",
    )
    ua.add_argument(
        "--state", metavar="DIR", default="state", help="state directory (default ./state)"
    )
    ua.set_defaults(run=_command("users", "user_add"))
    for action, run, text in (
        (
            "passwd",
            "user_passwd",
            "set a user's password (from standard input); earlier tokens end",
        ),
        ("revoke", "user_revoke", "end every token of a user (a leaked token); the password stays"),
        (
            "remove",
            "user_remove",
            "remove a user: no logins, every token ends; bills and name kept",
        ),
    ):
        change = us_commands.add_parser(action, help=text)
        change.add_argument("username")
        change.add_argument(
            "--state", metavar="DIR", default="state", help="state directory (default ./state)"
        )
        change.set_defaults(run=_command("users", run))

    cd = commands.add_parser("codes", help="registration codes for drivers")
    cd_commands = cd.add_subparsers(dest="code_command", required=True, metavar="ACTION")
    ci = cd_commands.add_parser("issue", help="issue N single-use registration codes, one a line")
    ci.add_argument(
        "count", nargs="?", type=int, default=1, metavar="N", help="how many (default 1)"
    )
    ci.add_argument(
        "--hours", type=float, default=24 * 7, help="valid for this long (default a week)"
    )
    ci.add_argument(
        "--state", metavar="DIR", default="state", help="state directory (default ./state)"
    )
    ci.set_defaults(run=_command("users", "code_issue"))

    bk = commands.add_parser(
        "backup",
        help="write a consistent copy of the station's database to FILE (safe while it runs)",
    )
    bk.add_argument("file", metavar="FILE", help="the backup file to write")
    bk.add_argument(
        "--state", metavar="DIR", default="state", help="state directory (default ./state)"
    )
    bk.add_argument("--force", action="store_true", help="replace FILE if it exists")
    bk.set_defaults(run=_command("state", "take_backup"))

    rs = commands.add_parser(
        "restore",
        help="replace the station's database with the backup FILE (the station must be stopped)",
    )
    rs.add_argument("file", metavar="FILE", help="a file written by `charge-station backup`")
    rs.add_argument(
        "--state", metavar="DIR", default="state", help="state directory (default ./state)"
    )
    rs.add_argument(
        "--keep-queue",
        action="store_true",
        help="also restore the queue saved in the backup (only for a backup made just now)",
    )
    rs.set_defaults(run=_command("state", "restore_backup"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; argv None: this process's own arguments, as the installed command and
    `python -m server.cli` run it."""
    words = sys.argv[1:] if argv is None else list(argv)
    plain = replay_args(words)
    if plain is None:
        args = build_parser().parse_args(words)
        return args.run(args)
    if argv is None:
        # The replay's modules and its run make thousands of objects that live until the exit,
        # and the collector would walk them again and again while they are made (a few passes
        # cost about 3% of the replay's start, docs/performance.md). Rarer passes still bound
        # what a long scenario's garbage may hold. Not when called in process (tests).
        gc.set_threshold(REPLAY_GC_THRESHOLD)
    code = run_replay(plain)
    if argv is None:
        # The process ends with the replay, and the collector's passes at exit would walk the
        # 11,000 objects of its modules and output only to free what the exit frees anyway:
        # 3 ms, a tenth of the replay's start (docs/performance.md). It holds no file that
        # needs closing (stdout is flushed at exit). Not when called in process (tests).
        gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
