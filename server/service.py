"""The live station in one process: storage, accounts, the control loop over the configured
piles, the hub and the HTTP/WebSocket API, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import ssl
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from controller.clock import StationClock
from controller.config import Config
from controller.events import Event
from controller.live import ControlLoop
from controller.storage import DATABASE_FILENAME, AsyncStorage
from drivers.link import LinkPool
from server.accounts import Accounts, load_secret
from server.app import AppContext, make_app
from server.hardware import build_links
from server.hub import Hub, utc_now

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0  # real seconds between `progress` messages (PROTOCOL.md)
SAVE_EVERY_S = 5.0  # the state is saved at least this often while meters move
SAVE_MIN_GAP_S = 0.05  # and at most this often: a burst of events is one save


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # peewee's debug lines carry SQL parameters (registration codes, password hashes).
    logging.getLogger("peewee").setLevel(logging.WARNING)
    logging.getLogger("pymodbus").setLevel(logging.WARNING)


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context from server.tls_cert and server.tls_key, or None for plain
    HTTP. A file that cannot be used stops the start with a ValueError naming the key."""
    cert, key = config.server.tls_cert, config.server.tls_key
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ValueError(f"server.tls_cert/tls_key: no such file: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"server.tls_cert/tls_key: cannot load {cert} with {key}: {exc}") from None
    return context


class Service:
    """Start with `await Service.start(...)`, stop with `await service.stop()`."""

    def __init__(self) -> None:
        self.storage: AsyncStorage
        self.accounts: Accounts
        self.loop: ControlLoop
        self.hub: Hub
        self.http: HTTPServer
        self.pool = LinkPool()
        self.port = 0
        self.scheme = "http"
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    @classmethod
    async def start(cls, config: Config, state_dir: Path, *, port: int | None = None) -> Service:
        self = cls()
        # Listen first: a port in use is found before anything is opened.
        sockets = bind_sockets(config.server.port if port is None else port, config.server.host)
        tls = tls_context(config)
        state_dir.mkdir(parents=True, exist_ok=True)
        self.storage = await AsyncStorage.open(state_dir / DATABASE_FILENAME)
        self.accounts = Accounts(
            self.storage,
            load_secret(state_dir),
            token_ttl_s=config.accounts.token_ttl_s,
            bench_code=config.accounts.bench_registration_code,
        )
        if config.accounts.bench_registration_code:
            log.warning("bench configuration: a fixed registration code is accepted")
        tz = datetime.now().astimezone().tzinfo
        clock = StationClock(config.clock.scale)
        self.hub = Hub(self.storage, tz, utc_now)
        links = build_links(config, clock, self.pool)
        self.loop = ControlLoop(config, links, clock, self._published)
        self.hub.attach(self.loop)
        saved = await self.storage.load_state()
        if saved is not None:
            self.loop.restore(json.loads(saved))
            log.info("carrying on: %d requests restored", len(self.loop.station.requests))
        ctx = AppContext(self.accounts, self.storage, tz, self.hub, config.server.max_quantity_kwh)
        self.http = HTTPServer(make_app(ctx), ssl_options=tls)
        self.http.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self.scheme = "http" if config.server.tls_cert is None else "https"
        self._tasks = [
            asyncio.create_task(
                self.loop.run(self._stop, config.server.poll_s, config.clock.scale),
                name="control loop",
            ),
            asyncio.create_task(self._progress(), name="progress"),
            asyncio.create_task(self._saver(), name="state saver"),
        ]
        log.info(
            "station up on %s:%d: %d piles, scale %g",
            config.server.host,
            self.port,
            len(config.piles),
            config.clock.scale,
        )
        return self

    def _published(self, event: Event) -> None:
        self._changed.set()
        self.hub.publish(event)

    async def _save(self) -> None:
        state = json.dumps(self.loop.snapshot(), separators=(",", ":"))
        await self.storage.save_state(state)

    async def _saver(self) -> None:
        """Save the queue state soon after it changes, and now and then for meter progress."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), SAVE_EVERY_S)
            self._changed.clear()
            try:
                await self._save()
            except Exception:  # task boundary: log, and try again at the next change
                log.exception("saving the station's state failed")
            await asyncio.sleep(SAVE_MIN_GAP_S)

    async def _progress(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), PROGRESS_EVERY_S)
            try:
                self.hub.progress()
            except Exception:  # task boundary: log, and keep telling the drivers
                log.exception("progress messages failed")

    async def stop(self) -> None:
        self._stop.set()
        self.http.stop()
        for task in self._tasks:
            await task
        await self.http.close_all_connections()
        await self.hub.drain()
        await self._save()  # the last word: requests and open sessions as they are now
        await self.pool.close()
        await self.storage.close()

    async def wait(self) -> None:
        await self._stop.wait()

    def install_signals(self, on_signal: Callable[[], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal or self._stop.set)
