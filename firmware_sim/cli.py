"""`pile-sim`: the pile firmware simulator as a command (docs/simulator.md).

On start it prints one JSON line on stdout with the bound addresses, then serves until SIGINT or
SIGTERM and exits 0. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import termios
from collections.abc import Sequence

from drivers.devices import reference
from firmware_sim.simulator import Simulator
from firmware_sim.spec import MAX_UNIT, PileSpec, parse_pile
from firmware_sim.twins import pile_names

log = logging.getLogger(__name__)

REFERENCE = reference.NAME  # what --count adds

DEFAULT_COUNT_KW = 30.0

EPILOG = """\
pile specs (--pile UNIT:PROFILE:KW[:OPTION]...):
  1:reference:30                    unit 1: reference pile (REF map), 30 kW
  1:reference:7:noplug:watchdog=30  no auto-plug; watchdog 30 s at start (0 = off)
  1:evse-wb:11:meter=2:sdm630       EVSE-WB-DIN on unit 1 (3 phases, 16 A), SDM630 on unit 2
  4:evse-wb:7.4:phases=1:meter=5:sdm120
                                    single-phase EVSE (32 A) with an SDM120 on unit 5
  1:abb-terra-ac:11                 ABB Terra AC on unit 1 (32-bit registers, mA)
  255:keba-p30:11                   KEBA KeContact P30 on unit 255 (Modbus TCP)
  options: meter=UNIT, sdm630|sdm120 (evse-wb, abb-terra-ac), phases=1|3, noplug,
           meter_wh=WH (count at start), watchdog=S (reference; keba-p30: its fail-safe)

examples:
  pile-sim --tcp 127.0.0.1:5020 --pile 1:reference:30 --pile 2:reference:7
  pile-sim --tcp 127.0.0.1:0 --count 50 --port-per-pile --scale 60
  pile-sim --pty --pile 1:evse-wb:11:meter=2:sdm630 --pile 3:reference:22
  pile-sim --serial /dev/ttyUSB0 --baud 9600 --pile 1:evse-wb:11:meter=2
  curl -s localhost:CONTROL_PORT/state
  curl -s -d '{"unit": 1, "kind": "delay", "ms": 500}' localhost:CONTROL_PORT/fault

fault kinds for POST /fault {"unit": U, "kind": KIND, ...} (and sim.inject):
  pile_fault (code), silent, exception (code), delay (ms), meter_frozen,
  meter_backwards (wh), meter_reset, meter_garbage; POST /clear {"unit": U} clears

start-up line (one JSON object on stdout):
  {"tcp": {"host": "127.0.0.1", "port": 5020, "ports": {"1": 5020}}, "serial": null,
   "pty": false, "control": {"host": "127.0.0.1", "port": 40411},
   "units": [{"unit": 1, "profile": "reference", "power_w": 30000}], "scale": 1.0, "pid": 4242}
"""


def host_port(text: str) -> tuple[str, int]:
    """HOST:PORT (PORT 0 = any free port); [::1]:502 for IPv6."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: give HOST:PORT, as in 127.0.0.1:5020 (0: any)")
    return host, int(port_text)


def pile_spec(text: str) -> PileSpec:
    try:
        return parse_pile(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def baud_rate(text: str) -> int:
    if not text.isdigit() or not hasattr(termios, f"B{text}"):
        raise argparse.ArgumentTypeError(f"{text!r}: not a standard baud rate (9600, 19200, ...)")
    return int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pile-sim",
        description=(
            "Simulated charging-pile firmware: reference piles, EVSE-WB-DIN controllers with\n"
            "Eastron SDM meters, ABB Terra AC and KEBA KeContact P30 wallboxes, served over\n"
            "Modbus TCP and/or Modbus RTU, with fault injection through an HTTP control channel\n"
            "(docs/simulator.md)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    wire = parser.add_argument_group("transports (at least one)")
    wire.add_argument(
        "--tcp",
        type=host_port,
        metavar="HOST:PORT",
        help="serve every unit as a unit id on one Modbus TCP port, e.g. 127.0.0.1:5020 "
        "(port 0: a free port, see the start-up line)",
    )
    wire.add_argument(
        "--port-per-pile",
        action="store_true",
        help="with --tcp: give each pile (with its meter) its own port instead: PORT, PORT+1, "
        "... in pile order, or a free port each if PORT is 0",
    )
    wire.add_argument(
        "--serial",
        metavar="PATH",
        help="serve every unit on one Modbus RTU bus on this existing serial device, "
        "e.g. /dev/ttyUSB0",
    )
    wire.add_argument(
        "--baud", type=baud_rate, default=9600, help="--serial: baud rate (default 9600)"
    )
    wire.add_argument(
        "--parity", choices=("N", "E", "O"), default="N", help="--serial: parity (default N)"
    )
    wire.add_argument(
        "--stopbits", type=int, choices=(1, 2), default=1, help="--serial: stop bits (default 1)"
    )
    wire.add_argument(
        "--pty",
        action="store_true",
        help="create a pty pair and serve one RTU bus on its master; the start-up line's "
        '"serial" is the path a driver opens (rtu:///dev/pts/N): a serial pair without hardware',
    )
    piles = parser.add_argument_group("piles")
    piles.add_argument(
        "--pile",
        type=pile_spec,
        action="append",
        default=[],
        metavar="UNIT:PROFILE:KW[:OPT]...",
        help=f"a pile (repeatable); profiles: {', '.join(pile_names())}; see the spec examples "
        "below",
    )
    piles.add_argument(
        "--count",
        type=int,
        default=0,
        metavar="N",
        help="add N reference piles on the lowest free unit ids (for benches), e.g. --count 50",
    )
    piles.add_argument(
        "--count-kw",
        type=positive_float,
        default=DEFAULT_COUNT_KW,
        metavar="KW",
        help=f"power of the --count piles in kW (default {DEFAULT_COUNT_KW:g})",
    )
    parser.add_argument(
        "--scale",
        type=positive_float,
        default=1.0,
        metavar="X",
        help="simulated time runs X times faster than real time, e.g. --scale 60: "
        "a minute a second (default 1)",
    )
    parser.add_argument(
        "--no-auto-plug",
        action="store_true",
        help="no vehicle plugs in when a session starts; plug one in with POST /vehicle",
    )
    parser.add_argument(
        "--control",
        type=host_port,
        default=("127.0.0.1", 0),
        metavar="HOST:PORT",
        help="address of the HTTP control channel (default 127.0.0.1:0, a free port)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log to stderr: -v info, -vv debug"
    )
    return parser


def counted_piles(specs: Sequence[PileSpec], count: int, kw: float) -> list[PileSpec]:
    """`count` reference piles on the lowest unit ids the given piles leave free."""
    taken = {unit for spec in specs for unit in spec.units}
    free = [u for u in range(1, MAX_UNIT + 1) if u not in taken][:count]
    if len(free) < count:
        raise ValueError(f"--count {count}: only {len(free)} unit ids (1..{MAX_UNIT}) are free")
    return [PileSpec(u, REFERENCE, round(kw * 1000)) for u in free]


async def serve(args: argparse.Namespace, piles: list[PileSpec]) -> dict[str, object]:
    """Start the simulator and its transports; wait for SIGINT/SIGTERM; stop."""
    sim = Simulator(piles, scale=args.scale, auto_plug=not args.no_auto_plug)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        line = await start(sim, args)
        print(json.dumps(line), flush=True)
        await stop.wait()
    finally:
        await sim.stop()
    return line


async def start(sim: Simulator, args: argparse.Namespace) -> dict[str, object]:
    """Start every transport asked for; the start-up line."""
    tcp: dict[str, object] | None = None
    if args.tcp:
        host, port = args.tcp
        if args.port_per_pile:
            ports = await sim.start_tcp_per_pile(host, port)
            tcp = {"host": host, "port": None, "ports": {str(u): p for u, p in ports.items()}}
        else:
            host, bound = await sim.start_tcp(host, port)
            tcp = {"host": host, "port": bound, "ports": {str(u): bound for u in sim.units}}
    serial: str | None = None
    if args.serial:
        await sim.start_serial(args.serial, args.baud, args.parity, args.stopbits)
        serial = args.serial
    if args.pty:
        serial = await sim.start_pty()
    control_host, control_port = await sim.start_control(*args.control)
    return {
        "tcp": tcp,
        "serial": serial,
        "pty": bool(args.pty),
        "control": {"host": control_host, "port": control_port},
        "units": sim.describe_units(),
        "scale": sim.clock.scale,
        "pid": os.getpid(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.tcp or args.serial or args.pty):
        parser.error("give a transport: --tcp HOST:PORT, --serial PATH or --pty")
    if args.serial and args.pty:
        parser.error("--serial and --pty are two buses; give one of them")
    if args.port_per_pile and not args.tcp:
        parser.error("--port-per-pile goes with --tcp HOST:PORT")
    if args.count < 0:
        parser.error("--count must not be negative")
    try:
        piles = [*args.pile, *counted_piles(args.pile, args.count, args.count_kw)]
        if not piles:
            parser.error("no piles: give --pile UNIT:PROFILE:KW or --count N")
        Simulator(piles)  # check unit clashes before anything is bound
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level={0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(serve(args, piles))
    except OSError as exc:  # a port in use, a serial device missing or busy
        print(f"pile-sim: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
