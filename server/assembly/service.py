"""The live station in one process: storage, accounts, the control loop over the configured
piles, the hub and the HTTP/WebSocket API, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from controller import state_dir as state_files
from controller.clock import StationClock
from controller.door import Door, Progress, StreamEvent
from controller.live import ControlLoop
from controller.storage import DATABASE_FILENAME, AsyncStorage
from drivers.link import LinkPool
from server.accounts.accounts import Accounts, load_secret
from server.accounts.user_directory import REFRESH_EVERY_S
from server.assembly.config import ServiceConfig
from server.assembly.database import open_async_storage
from server.assembly.hardware import build_links
from server.assembly.sd_notify import Notifier
from server.driver_api.hub import Hub, utc_now
from server.http import log_redaction
from server.http.app import make_app, make_server
from server.http.handler import AppContext
from server.http.tls import tls_context

if TYPE_CHECKING:
    from server.metrics.metrics import StationMetrics
    from server.ocpp.uplink import Uplink

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0  # real seconds between `progress` messages (PROTOCOL.md)
SAVE_EVERY_S = 5.0  # the state is saved at least this often while meters move
SAVE_MIN_GAP_S = 0.05  # and at most this often: a burst of events is one save
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

    def __init__(self) -> None:
        self.storage: AsyncStorage
        self.accounts: Accounts
        self.loop: ControlLoop
        self.hub: Hub
        self.door: Door
        self.http: HTTPServer
        self.pool = LinkPool()
        self.port = 0
        self.scheme = "http"
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()
        self._generation = 0  # changes asked to be saved (`persisted`)
        self._saved_generation = 0  # ... of which saved
        self._saved = asyncio.Condition()
        self._waiting = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self.notifier = Notifier()
        self._answered = asyncio.Event()
        self.uplink: Uplink | None = None  # the OCPP uplink, when [ocpp] has a url
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
    ) -> Service:
        self = cls()
        if notifier is not None:
            self.notifier = notifier
        # Listen first: a port in use is found before anything is opened.
        sockets = bind_sockets(config.server.port if port is None else port, config.server.host)
        metrics_sockets = []
        if config.metrics.port is not None:
            metrics_sockets = bind_sockets(config.metrics.port, config.metrics.host)
        tls = tls_context(config.server)
        state_files.prepare(state_dir)  # 0700: the database and the signing key are in it
        self.storage = await open_async_storage(state_dir / DATABASE_FILENAME)
        self.accounts = Accounts(
            self.storage,
            load_secret(state_dir),
            token_ttl_s=config.accounts.token_ttl_s,
            bench_code=config.accounts.bench_registration_code,
        )
        await self.accounts.load_users()  # before the first request: tokens are checked on it
        if config.accounts.bench_registration_code:
            log.warning("bench configuration: a fixed registration code is accepted")
        tz = datetime.now().astimezone().tzinfo
        clock = StationClock(config.clock.scale)
        self.hub = Hub(self.storage, tz, utc_now)
        links = build_links(config, clock, self.pool)
        self.loop = ControlLoop(config, links, clock)
        self.door = Door(self.loop)
        self.door.subscribe(self._changed_state)
        self.hub.attach(self.door)
        self.hub.persisted = self.persisted
        saved = await self.storage.load_state()
        if saved is not None:
            self.loop.restore(json.loads(saved))
            log.info("carrying on: %d requests restored", self.door.request_count())
        if config.ocpp.url is not None:
            from server.ocpp.uplink import Uplink  # the ocpp library only where it is used

            self.uplink = Uplink(config.ocpp, self.door, self.storage, config.clock.scale)
            await self.uplink.start()
        ctx = AppContext(
            self.accounts,
            self.storage,
            tz,
            self.hub,
            config.server.max_quantity_kwh,
            config.server.cors_origins,
        )
        app = make_app(ctx)
        if metrics_sockets:
            self._serve_metrics(config, app, metrics_sockets)
        self.http = make_server(app, ssl_options=tls)
        self.http.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self.scheme = "http" if config.server.tls_cert is None else "https"
        self._tasks = [
            asyncio.create_task(
                self.loop.run(
                    self._stop, config.server.poll_s, config.clock.scale, on_tick=self._ticked
                ),
                name="control loop",
            ),
            asyncio.create_task(self._ready(config.server.ready_timeout_s), name="readiness"),
            asyncio.create_task(self._progress(), name="progress"),
            asyncio.create_task(self._saver(), name="state saver"),
            asyncio.create_task(self._users(), name="users"),
        ]
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
        feeds = [
            r.target_kwargs["feed"] for r in app.wildcard_router.rules if "feed" in r.target_kwargs
        ]

        def websockets() -> dict[str, int]:
            drivers = sum(len(group) for group in self.hub.sockets.values())
            return {"driver": drivers, "operator": sum(len(f.sockets) for f in feeds)}

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
        silent = [
            link.pile.name for pid, link in self.loop.links.items() if pid not in self.loop.answered
        ]
        if silent:
            log.warning("ready after %g s without an answer from: %s", timeout_s, ", ".join(silent))
            self.notifier.ready(f"serving; no answer from {', '.join(silent)}")
        else:
            log.info("ready: every pile answered")
            self.notifier.ready(f"serving on port {self.port}: every pile answered")

    def _changed_state(self, seq: int, event: StreamEvent) -> None:
        if not isinstance(event, Progress):  # progress is saved with the meters, now and then
            self._changed.set()

    async def _save(self) -> None:
        state = json.dumps(self.loop.snapshot(), separators=(",", ":"))
        await self.storage.save_state(state)

    async def _saver(self) -> None:
        """Save the queue state soon after it changes, and now and then for meter progress.
        A burst of changes is one save; a reply waiting in `persisted` skips the pause."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), SAVE_EVERY_S)
            self._changed.clear()
            # A saved state never tells of a session ended whose bill is not stored yet: after
            # a crash meanwhile the session is still open in the saved state, and the pile's
            # meter bills it again, once, when the station is back.
            await self.hub.bills_stored()
            if self.uplink is not None:
                # ... nor of a transaction whose messages are not stored yet.
                await self.uplink.flushed()
            generation = self._generation
            try:
                await self._save()
            except Exception:  # task boundary: log, and try again at the next change
                log.exception("saving the station's state failed")
                await asyncio.sleep(SAVE_MIN_GAP_S)
                continue
            async with self._saved:
                self._saved_generation = generation
                self._saved.notify_all()
            if not self._waiting:
                await asyncio.sleep(SAVE_MIN_GAP_S)

    async def persisted(self) -> None:
        """Return once the state as it is now is on disk."""
        self._generation += 1
        generation = self._generation
        self._changed.set()
        self._waiting += 1
        try:
            async with self._saved:
                await self._saved.wait_for(lambda: self._saved_generation >= generation)
        finally:
            self._waiting -= 1

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
        stored = await self.hub.drain()  # the bills of the stopped sessions, stored and sent
        if self.uplink is not None:
            await self.uplink.close()  # their StopTransactions are stored, sent after the restart
        await asyncio.sleep(0)  # let the sockets write them before they close
        await self.http.close_all_connections()
        if stored:
            await self._save()  # the last word: requests and open sessions as they are now
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
