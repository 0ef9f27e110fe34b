"""`charge-station`: the station's command line.

Each subcommand imports only what it needs, so `replay` starts without Tornado, pymodbus or peewee.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def _replay(args: argparse.Namespace) -> int:
    from controller.config import ConfigError, default_config, load_config
    from controller.replay.output import dumps, to_text
    from controller.replay.runner import replay
    from controller.replay.scenario import ScenarioError, parse_scenario

    try:
        config = load_config(args.config) if args.config else default_config()
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
        events = parse_scenario(text)
    except ScenarioError as exc:
        print(f"charge-station: {args.events}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    result = replay(config, events)
    print(dumps(result) if args.json else to_text(result))
    for req in result.stranded:
        print(
            f"charge-station: car {req.car} ({req.queue_no}) can never be served: "
            f"no working pile can take it",
            file=sys.stderr,
        )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
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
    rp.set_defaults(run=_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
