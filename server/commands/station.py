"""The commands that run the station: `serve` on a configuration, and `demo` on simulated piles
(server.cli reads their arguments and imports this module only for them)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from server.exit_codes import EXIT_BAD_INPUT, EXIT_OK


def _load(path: str | None) -> Any:
    from controller.config_values import ConfigError
    from server.assembly.config import default_config, load_config

    try:
        return load_config(path) if path else default_config()
    except ConfigError as exc:
        print(f"charge-station: configuration {exc}", file=sys.stderr)
        return None


async def _serve_until_signal(
    config: Any,
    state_dir: Path,
    banner: Callable[[Any], Awaitable[None]],
    config_digest: str | None = None,
) -> None:
    """Start the station, show its banner, run until SIGINT or SIGTERM, stop cleanly."""
    from server.assembly.service import Service

    service = await Service.start(config, state_dir, config_digest=config_digest)
    service.install_signals()
    await banner(service)
    await service.wait()
    await service.stop()


def serve(args: argparse.Namespace) -> int:
    from server.assembly.service import configure_logging

    config = _load(args.config)
    if config is None:
        return EXIT_BAD_INPUT
    configure_logging(args.verbose)

    async def banner(service: Any) -> None:
        where = f"{service.scheme}://{config.server.host}:{service.port}"
        print(f"station listening on {where}", flush=True)

    # Without --config the station runs on the defaults: the banner digests those instead.
    digest = (
        None if args.config is None else hashlib.sha256(Path(args.config).read_bytes()).hexdigest()
    )
    main = _serve_until_signal(config, Path(args.state), banner, digest)
    return _run_station(main, config.server.port)


def _run_station(main: Any, port: int) -> int:
    """Run the station; a port in use or an unusable state directory is said plainly."""
    try:
        asyncio.run(main)
    except OSError as exc:
        print(f"charge-station: cannot start: {exc.strerror or exc} (port {port})", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as exc:  # a state directory the station cannot use (e.g. a bad secret)
        print(f"charge-station: cannot start: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        from controller.storage import StorageError

        if not isinstance(exc, StorageError):
            raise
        # A database newer than this release, or one that could not be backed up before its
        # upgrade: nothing was changed, and the message says what to do.
        print(f"charge-station: cannot start: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


DEMO_EXAMPLE = """Try it (Python, with the venv's packages):

  .venv/bin/python - <<'PY'
  import asyncio, json, urllib.parse, urllib.request
  from tornado.websocket import websocket_connect
  BASE = "{host}:{port}"
  form = urllib.parse.urlencode({{"username": "demo", "password": "demo-pass", "code": "{code}"}})
  token = json.load(urllib.request.urlopen(f"http://{{BASE}}/register?{{form}}", data=b""))["token"]
  async def charge():
      ws = await websocket_connect(f"ws://{{BASE}}/user/charge?token={{token}}&mode=fast&quantity=5")
      while (msg := await ws.read_message()) is not None:
          print(msg)
  asyncio.run(charge())
  PY
"""


def demo_config(sim: Any, scale: float, port: int) -> Any:
    """The brief's station (RULES §1) on the piles of a running pile-sim: each pile a
    reference pile on its own Modbus TCP port on loopback, as hardware would be reached."""
    from controller.config import ClockSettings, PileConfig
    from server.assembly.config import default_config
    from server.http.config import ServerSettings

    config = default_config()
    # The piles' watchdogs count simulated time: give them at least a real second, so a busy
    # laptop does not trip them at 60x.
    watchdog_s = min(0xFFFF, max(PileConfig._field_defaults["watchdog_s"], math.ceil(scale)))
    piles = tuple(
        p._replace(link=f"{sim.tcp_link(unit)}?timeout=0.5", unit=unit, watchdog_s=watchdog_s)
        for unit, p in enumerate(config.piles, start=1)
    )
    return config._replace(
        piles=piles, clock=ClockSettings(scale=scale), server=ServerSettings(port=port)
    )


DEMO_OPERATOR = "operator"


async def demo_operator(accounts: Any) -> str:
    """The demo's operator account with a fresh password each start (printed for the
    newcomer, so the dashboard can be tried at once); earlier tokens of it end."""
    from server.accounts.accounts import AccountError

    password = secrets.token_urlsafe(9)
    try:
        await accounts.create_user(DEMO_OPERATOR, password, "operator")
    except AccountError as exc:
        if exc.error != "username_taken":
            raise
        await accounts.set_password(DEMO_OPERATOR, password)
    return password


def operator_line(url: str, password: str | None) -> str:
    if password is None:  # the name is taken by a removed user: the operator makes one
        return f"Operator dashboard: {url}/admin  (charge-station user add NAME --operator)"
    return f"Operator dashboard: {url}/admin  (user {DEMO_OPERATOR}, password {password})"


def demo(args: argparse.Namespace) -> int:
    from controller.config import DEFAULT_PILES
    from firmware_sim.launch import LaunchError, PileSimProcess
    from server.accounts.accounts import AccountError
    from server.assembly.service import configure_logging

    configure_logging(args.verbose)
    # The brief's five piles as a pile-sim process on loopback: the station drives them over
    # Modbus TCP with the same drivers as hardware. Time runs `scale` times faster in both.
    specs = [f"{unit}:reference:{p.power_w / 1000:g}" for unit, p in enumerate(DEFAULT_PILES, 1)]
    sim_args = ["--tcp", "127.0.0.1:0", "--port-per-pile", "--scale", f"{args.scale:g}"]
    try:
        sim = PileSimProcess.start([*sim_args, *(a for spec in specs for a in ("--pile", spec))])
    except LaunchError as exc:
        print(f"charge-station: cannot start the simulated piles: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    config = demo_config(sim, args.scale, args.port)

    async def banner(service: Any) -> None:
        code = await service.accounts.issue_code(ttl_s=24 * 3600)
        try:
            password: str | None = await demo_operator(service.accounts)
        except AccountError:
            password = None
        host = config.server.host
        url = f"http://{host}:{service.port}"
        print(f"Charging station demo: open {url} in a browser  (Ctrl-C stops it)")
        print(operator_line(url, password))
        print(f"Registration code (single use, 24 h): {code}")
        print(f"The piles' own state and meters: {sim.control_url}/state")
        print(
            f"Five simulated piles (pile-sim pid {sim.proc.pid}, Modbus TCP on loopback), "
            f"time {config.clock.scale:g}x faster; state in {args.state}/"
        )
        fault = '{"unit": 1, "kind": "pile_fault", "code": 7}'
        print(f"Make pile A fail: curl -d '{fault}' {sim.control_url}/fault  (/clear mends it)")
        print(DEMO_EXAMPLE.format(host=host, port=service.port, code=code), flush=True)

    with sim:
        return _run_station(_serve_until_signal(config, Path(args.state), banner), args.port)
