"""`charge-client`: the command line, its options and exit codes (docs/client.md).

The station's address and CA file come from the options, else the environment, else what the
last login remembered; the token is the one remembered for that address.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TextIO

from server.client import admin, charge, driver, follow
from server.client.api import Station, Target, normalize_url
from server.client.errors import EXIT_CODES_HELP, Exit, Failure
from server.client.store import Remembered, Store, config_dir

ENV_URL = "CHARGE_STATION_URL"
ENV_CAFILE = "CHARGE_STATION_CAFILE"
DEFAULT_TIMEOUT_S = 10.0
MAX_CODES = 100

EPILOG = f"""{EXIT_CODES_HELP}

environment:
  {ENV_URL}     the station's address, when --server is not given
  {ENV_CAFILE}  a CA file, when --cafile is not given
  XDG_CONFIG_HOME        where charge-client/client.json is kept (default ~/.config)

The station's address, its CA file and the login are remembered after login and
register (file mode 0600). See docs/client.md."""


# -- argument types -------------------------------------------------------------------------------
def positive_arg(unit: str) -> Callable[[str], Decimal]:
    """A decimal above 0 (kWh, hours): exact, as the station counts it."""

    def parse(text: str) -> Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {unit} above 0")
        return value

    return parse


kwh_arg = positive_arg("kWh")


def seconds_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 3600):
        raise argparse.ArgumentTypeError(f"{text!r}: seconds above 0, at most 3600")
    return value


def count_arg(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"\d+", text) or not 1 <= int(text) <= limit:
            raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 1 to {limit}")
        return int(text)

    return parse


def date_arg(text: str) -> str:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None
    return text


def pile_arg(text: str) -> int:
    if not re.fullmatch(r"\d+", text):
        raise argparse.ArgumentTypeError(f"{text!r}: a pile's number (charge-client piles)")
    return int(text)


# -- the parser -----------------------------------------------------------------------------------
def _common(defaults: bool) -> argparse.ArgumentParser:
    """The connection options, taken before or after the command. After it, they default to
    SUPPRESS so that they do not undo what was given before it."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    group.add_argument(
        "--server",
        metavar="URL",
        default=default(None),
        help=f"the station, http://HOST:PORT or https://HOST:PORT (env {ENV_URL}; "
        "remembered after login)",
    )
    group.add_argument(
        "--cafile",
        metavar="FILE",
        default=default(None),
        help="trust this CA (PEM) for the station's certificate instead of the system's CAs "
        f"(env {ENV_CAFILE}; remembered after login)",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds_arg,
        default=default(DEFAULT_TIMEOUT_S),
        help=f"wait this long for the station (default {DEFAULT_TIMEOUT_S:g})",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="charge-client",
        description="The charging station's client. Drivers: charge, follow, change or cancel\n"
        "a request, read your bills. Operators: piles, queues, reports, codes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(True)],
    )
    after = [_common(False)]
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, parents=after)

    rg = command("register", "create an account with a registration code, and log in")
    rg.add_argument("username")
    rg.add_argument("--code", required=True, help="the registration code from the operator")
    lg = command("login", "log in; the password is read from the terminal or standard input")
    lg.add_argument("username")
    command("logout", "forget the login for the station")

    ch = command(
        "charge",
        "ask for a charge and follow it to the bill; without --mode and --quantity, follow "
        "the request already in the station",
    )
    ch.add_argument("--mode", choices=("fast", "common"))
    ch.add_argument("--quantity", metavar="KWH", type=kwh_arg, help="kWh to charge")
    ch.add_argument("--capacity", metavar="KWH", type=kwh_arg, help="the battery's kWh")
    ch.add_argument(
        "--on-interrupt",
        choices=[c.value for c in follow.OnInterrupt],
        help="what Ctrl-C does to the request: cancel it, or leave it queued; without it, "
        "asked on a terminal, and leave when standard input is not a terminal",
    )
    rv = command("revise", "change your request while it is in the waiting area")
    rv.add_argument("--mode", choices=("fast", "common"))
    rv.add_argument("--quantity", metavar="KWH", type=kwh_arg)
    command("cancel", "cancel your request (a charging car is billed first)")
    st = command("status", "your request in the station")
    st.add_argument("--json", action="store_true", help="the station's message as it came")
    lo = command("log", "your bills, newest first")
    lo.add_argument("--num", type=count_arg(100), default=10, help="how many (default 10)")
    lo.add_argument("--json", action="store_true", help="the station's /user/log answer")

    pl = command("piles", "operators: every pile, its totals and its queue")
    pl.add_argument("--json", action="store_true")
    po = command("pile", "operators: switch a pile on or off, or stop its session")
    po.add_argument("action", choices=("on", "off", "stop"))
    po.add_argument("pile_id", metavar="ID", type=pile_arg, help="the pile's number")
    qu = command("queue", "operators: the waiting area and the priority lines")
    qu.add_argument("--json", action="store_true")
    rp = command("report", "operators: per-pile totals for a day, week or month")
    rp.add_argument("--period", choices=("day", "week", "month"), required=True)
    rp.add_argument("--date", type=date_arg, help="a day of the period (default today)")
    fmt = rp.add_mutually_exclusive_group()
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv")
    fmt.add_argument("--json", dest="format", action="store_const", const="json")
    cd = command("codes", "operators: registration codes")
    cd_actions = cd.add_subparsers(dest="codes_action", required=True, metavar="ACTION")
    ci = cd_actions.add_parser(
        "issue", help="issue single-use registration codes, one a line", parents=after
    )
    ci.add_argument(
        "count", nargs="?", type=count_arg(MAX_CODES), default=1, metavar="N", help="default 1"
    )
    ci.add_argument(
        "--hours", type=positive_arg("hours"), help="valid for this long (default: a week)"
    )
    return parser


# -- running a command ----------------------------------------------------------------------------
@dataclass
class Context:
    args: argparse.Namespace
    store: Store
    remembered: Remembered
    target: Target
    station: Station
    out: TextIO


def resolve_target(args: argparse.Namespace, remembered: Remembered) -> Target:
    text = args.server or os.environ.get(ENV_URL) or remembered.current
    if not text:
        raise Failure(
            Exit.USAGE,
            "which station?",
            f"give --server URL (or set {ENV_URL}); login remembers it",
        )
    url = normalize_url(text)
    cafile = args.cafile or os.environ.get(ENV_CAFILE)
    cafile = os.path.abspath(cafile) if cafile else remembered.login(url).cafile
    return Target(url, cafile, args.timeout)


async def _charge(ctx: Context) -> int:
    a = ctx.args
    if (a.mode is None) != (a.quantity is None):
        raise Failure(
            Exit.USAGE,
            "give both --mode and --quantity for a new request, or neither to follow yours",
        )
    on_interrupt = follow.OnInterrupt(a.on_interrupt) if a.on_interrupt else None
    return await follow.follow(
        ctx.station, a.mode, a.quantity, a.capacity, on_interrupt=on_interrupt, out=ctx.out
    )


async def _revise(ctx: Context) -> int:
    if ctx.args.mode is None and ctx.args.quantity is None:
        raise Failure(Exit.USAGE, "nothing to change: give --mode, --quantity or both")
    return await charge.revise(ctx.station, ctx.args.mode, ctx.args.quantity, ctx.out)


COMMANDS: dict[str, Callable[[Context], Awaitable[int]]] = {
    "register": lambda c: driver.register(
        c.station, c.args.username, c.args.code, c.store, c.remembered, c.out
    ),
    "login": lambda c: driver.login(c.station, c.args.username, c.store, c.remembered, c.out),
    "charge": _charge,
    "revise": _revise,
    "cancel": lambda c: charge.cancel(c.station, c.out),
    "status": lambda c: driver.status(c.station, c.args.json, c.out),
    "log": lambda c: driver.history(c.station, c.args.num, c.args.json, c.out),
    "piles": lambda c: admin.piles(c.station, c.args.json, c.out),
    "pile": lambda c: admin.pile(c.station, c.args.action, c.args.pile_id, c.out),
    "queue": lambda c: admin.queue(c.station, c.args.json, c.out),
    "report": lambda c: admin.report(
        c.station, c.args.period, c.args.date, c.args.format or "table", c.out
    ),
    "codes": lambda c: admin.codes_issue(c.station, c.args.count, c.args.hours, c.out),
}


async def run(args: argparse.Namespace, out: TextIO) -> int:
    store = Store(config_dir())
    remembered = store.load()
    target = resolve_target(args, remembered)
    if args.command == "logout":
        return driver.logout(target.url, store, remembered, out)
    station = Station(target, remembered.login(target.url).token)
    try:
        return await COMMANDS[args.command](Context(args, store, remembered, target, station, out))
    finally:
        station.close()


def _say(failure: Failure) -> None:
    print(f"charge-client: {failure.message}", file=sys.stderr)
    if failure.hint:
        print(f"  {failure.hint}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        # Lines reach a pipe as they are written (scripts wait on them); a terminal that cannot
        # show a character (the station's Chinese) gets an escape, not a crash.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True, errors="backslashreplace")
    # Tornado logs a failed TLS handshake or a dropped connection itself; here each failure is
    # said once, as a sentence (api.unreachable).
    tornado_log = logging.getLogger("tornado")
    tornado_log.addHandler(logging.NullHandler())
    tornado_log.propagate = False
    args = build_parser().parse_args(argv)
    try:
        return int(asyncio.run(run(args, sys.stdout)))
    except Failure as failure:
        _say(failure)
        return int(failure.code)
    except KeyboardInterrupt:
        hint = ""
        if args.command == "charge":
            hint = "; charge-client status shows whether a request was made"
        print(f"\ncharge-client: interrupted{hint}", file=sys.stderr)
        return int(Exit.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (| head): nothing more to say, and nowhere to say it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(Exit.OK)


if __name__ == "__main__":
    sys.exit(main())
