"""The live station in one process: the parts the composition root built (server.composition),
listening, their background work running, and stopped together (the safe stop)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from server.accounts.user_directory import REFRESH_EVERY_S
from server.assembly.composition import Components, Parts, assemble
from server.assembly.config import ServiceConfig
from server.assembly.sd_notify import Notifier
from server.http import log_redaction
from server.http.app import make_server
from server.http.tls import tls_context

if TYPE_CHECKING:
    from server.metrics.metrics import StationMetrics

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0  # real seconds between `progress` messages (PROTOCOL.md)
SAFE_STOP_TIMEOUT_S = 10.0  # piles that have not confirmed their stop by then are logged


def log_banner(config: ServiceConfig, scheme: str, port: int, config_digest: str | None) -> None:
    """One start-up banner: what runs, on which configuration, reaching which piles how.
    No secrets: links and names only."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("charge-station")
    except PackageNotFoundError:
        release = "unknown"
    digest = config_digest or hashlib.sha256(repr(config).encode()).hexdigest()
    settings = config.station  # the configured rules, not the rules object
    dispatch = settings.dispatch.value
    log.info(
        "charge-station %s on %s://%s:%d, config sha256 %s, %d piles, scale %g, dispatch %s",
        release,
        scheme,
        config.server.host,
        port,
        digest[:12],
        len(config.piles),
        config.clock.scale,
        dispatch,
    )
    for p in config.piles:
        unit = "" if p.link == "sim" else f" unit {p.unit}"
        meter = "" if p.meter_unit is None else f", {p.meter} meter unit {p.meter_unit}"
        log.info(
            "pile %s (stationId %d): %s %g kW, %s on %s%s%s",
            p.name,
            p.id,
            p.mode.value,
            p.power_w / 1000,
            p.profile,
            p.link,
            unit,
            meter,
        )


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Tornado's lines print request targets, and with them tokens and passwords.
    log_redaction.install(*logging.getLogger().handlers)
    # peewee's debug lines carry SQL parameters (registration codes, password hashes).
    logging.getLogger("peewee").setLevel(logging.WARNING)
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    # The ocpp library logs every message it sends or receives at INFO.
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    if not verbose:
        logging.getLogger("server.ocpp.wire").setLevel(logging.WARNING)


class Service:
    """Start with `await Service.start(...)`, stop with `await service.stop()`."""

    def __init__(self, parts: Components, notifier: Notifier) -> None:
        self.parts = parts
        self.config = parts.config
        self.storage = parts.storage
        self.accounts = parts.accounts
        self.loop = parts.loop
        self.door = parts.door
        self.ledger = parts.ledger
        self.saver = parts.saver
        self.hub = parts.hub
        self.feed = parts.feed
        self.uplink = parts.uplink  # the OCPP uplink, when [ocpp] has a url
        self.pool = parts.pool
        self.notifier = notifier
        self.http: HTTPServer
        self.port = 0
        self.scheme = "http"
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._answered = asyncio.Event()
        self.metrics: StationMetrics | None = None  # /metrics, when [metrics] has a port
        self.metrics_http: HTTPServer | None = None
        self.metrics_port = 0

    @classmethod
    async def start(
        cls,
        config: ServiceConfig,
        state_dir: Path,
        *,
        port: int | None = None,
        config_digest: str | None = None,
        notifier: Notifier | None = None,
        parts: Parts | None = None,
        drive: bool = True,
    ) -> Service:
        """Build the station (server.composition) and run it. `drive=False` leaves the control
        loop's ticks and the progress messages to the caller (a test kit's own clock)."""
        # Listen first: a port in use is found before anything is opened.
        sockets = bind_sockets(config.server.port if port is None else port, config.server.host)
        metrics_sockets = []
        if config.metrics.port is not None:
            metrics_sockets = bind_sockets(config.metrics.port, config.metrics.host)
        tls = tls_context(config.server)
        self = cls(await assemble(config, state_dir, parts or Parts()), notifier or Notifier())
        if self.uplink is not None:
            await self.uplink.start()
        if metrics_sockets:
            self._serve_metrics(config, self.parts.app, metrics_sockets)
        self.http = make_server(self.parts.app, ssl_options=tls)
        self.http.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self.scheme = "http" if config.server.tls_cert is None else "https"
        tasks = [
            (self._ready(config.server.ready_timeout_s), "readiness"),
            (self.saver.run(self._stop), "state saver"),
            (self._users(), "users"),
        ]
        if drive:
            run = self.loop.run(
                self._stop, config.server.poll_s, config.clock.scale, on_tick=self._ticked
            )
            tasks += [(run, "control loop"), (self._progress(), "progress")]
        self._tasks = [asyncio.create_task(work, name=name) for work, name in tasks]
        log_banner(config, self.scheme, self.port, config_digest)
        return self

    def _serve_metrics(self, config: ServiceConfig, app: Any, sockets: list[Any]) -> None:
        from server.metrics.metrics import (  # prometheus_client only here
            StationMetrics,
            metrics_app,
        )

        metrics = self.metrics = StationMetrics(self.door, self.loop)
        metrics.watch_links(config, self.pool)
        metrics.watch_http(app)
        metrics.uplink = self.uplink
        feed = self.feed

        def websockets() -> dict[str, int]:
            drivers = sum(len(group) for group in self.hub.sockets.values())
            return {"driver": drivers, "operator": len(feed.sockets)}

        metrics.websockets = websockets
        self.metrics_http = make_server(metrics_app(metrics, config.metrics))
        self.metrics_http.add_sockets(sockets)
        self.metrics_port = sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics", config.metrics.host, self.metrics_port)

    def _ticked(self) -> None:
        """After every control-loop tick: systemd's watchdog is fed only by a loop that runs."""
        self.notifier.watchdog()
        if not self._answered.is_set() and self.loop.all_answered:
            self._answered.set()

    async def _ready(self, timeout_s: float) -> None:
        """Tell systemd the station is ready once every pile has answered, or after timeout_s
        with the silent piles named (they are faulted by the rules meanwhile: RULES §4)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._answered.wait(), timeout_s)
        silent = self.loop.silent()
        if silent:
            log.warning("ready after %g s without an answer from: %s", timeout_s, ", ".join(silent))
            self.notifier.ready(f"serving; no answer from {', '.join(silent)}")
        else:
            log.info("ready: every pile answered")
            self.notifier.ready(f"serving on port {self.port}: every pile answered")

    async def _users(self) -> None:
        """Changes to users made by another process (`charge-station user passwd`, `remove`,
        `revoke` while the station runs) count within REFRESH_EVERY_S."""
        failing = False  # logged once per outage, not every second
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), REFRESH_EVERY_S)
            try:
                await self.accounts.refresh_users()
            except Exception:  # task boundary: log, and look again next time
                if not failing:
                    log.exception("reading the users again failed; trying every second")
                failing = True
            else:
                if failing:
                    log.info("users read again")
                failing = False

    async def _progress(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), PROGRESS_EVERY_S)
            try:
                self.door.progress()
            except Exception:  # task boundary: log, and keep telling the drivers
                log.exception("progress messages failed")

    async def stop(self) -> None:
        """The safe stop (SIGTERM): every session billed, every pile stopped, every request
        kept for what it still wants, the bills stored and the database closed."""
        self.notifier.stopping()
        self._stop.set()
        self.http.stop()
        if self.metrics_http is not None:
            self.metrics_http.stop()
        for task in self._tasks:
            # The saver may be waiting for its next turn (or for a locked database): the last
            # save below replaces it.
            if task.get_name() in ("readiness", "state saver", "users"):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.loop.shutdown(SAFE_STOP_TIMEOUT_S)
        stored = await self.ledger.drain()  # the bills of the stopped sessions, stored
        if self.uplink is not None:
            await self.uplink.close()  # their StopTransactions are stored, sent after the restart
        await asyncio.sleep(0)  # let the sockets write them before they close
        await self.http.close_all_connections()
        await self.feed.close()
        if stored:
            await self.saver.save()  # the last word: requests and open sessions as they are now
        else:
            # The last saved state still has those sessions open: after the restart the piles'
            # meters bill them, so the energy is billed once, not lost.
            log.error("the state is not saved: bills are still waiting for the database")
        await self.pool.close()
        await self.storage.close()
        self.notifier.close()
        log.info("station stopped")

    async def wait(self) -> None:
        await self._stop.wait()

    def install_signals(self, on_signal: Callable[[], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal or self._stop.set)
