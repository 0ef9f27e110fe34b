"""The composition root: the one place the station is built, for `serve`, `demo`, the benches
and every test kit alike.

It builds, in order: the state directory and its database, the accounts, the station's clock,
each pile's drivers, the control loop with its runtimes, the door, the ledger (subscribed first,
so a bill is dated and on its way before anyone tells of it), the state saver, the drivers' hub,
the operators' feed, and the optional parts (the OCPP uplink, the metrics), each either whole
or absent. A test kit puts its own clock, drivers or accounts in place through `Parts`; nothing
else is wired by hand anywhere.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from controller import state_dir as state_files
from controller.clock import StationClock
from controller.door import Door
from controller.ledger import Ledger
from controller.live import ControlLoop, PileDevices
from controller.state_saver import StateSaver
from controller.storage import DATABASE_FILENAME, AsyncStorage
from drivers.link import LinkPool
from server.accounts.accounts import Accounts, load_secret
from server.assembly.config import ServiceConfig
from server.assembly.database import open_async_storage
from server.assembly.hardware import build_devices
from server.driver_api.hub import Hub
from server.http.app import make_app
from server.http.handler import AppContext
from server.operator_api.admin_live import OperatorFeed

if TYPE_CHECKING:
    import tornado.web

    from server.ocpp.uplink import Uplink

log = logging.getLogger(__name__)


class Parts(NamedTuple):
    """What a test kit or a bench puts in place of the station's own (None: the real one)."""

    clock: Callable[[], float] | None = None  # the station's seconds (StationClock)
    devices: Mapping[int, PileDevices] | None = None  # each pile's drivers, by pile id
    tz: tzinfo | None = None  # the station's time zone (the system's)
    accounts: Callable[[AsyncStorage], Accounts] | None = None  # how accounts are made


@dataclass
class Components:
    """The station's parts, as the composition root built them."""

    config: ServiceConfig
    storage: AsyncStorage
    accounts: Accounts
    pool: LinkPool
    clock: Callable[[], float]
    tz: tzinfo
    loop: ControlLoop
    door: Door
    ledger: Ledger
    saver: StateSaver
    hub: Hub
    feed: OperatorFeed
    app: tornado.web.Application
    uplink: Uplink | None = None


def local_tz() -> tzinfo:
    tz = datetime.now().astimezone().tzinfo
    assert tz is not None
    return tz


async def assemble(
    config: ServiceConfig, state_dir: Path, parts: Parts | None = None
) -> Components:
    """Build the station on `state_dir` (nothing runs yet: see server.assembly.service)."""
    parts = parts or Parts()
    state_files.prepare(state_dir)  # 0700: the database and the signing key are in it
    storage = await open_async_storage(state_dir / DATABASE_FILENAME)
    if parts.accounts is not None:
        accounts = parts.accounts(storage)
    else:
        accounts = Accounts(
            storage,
            load_secret(state_dir),
            token_ttl_s=config.accounts.token_ttl_s,
            bench_code=config.accounts.bench_registration_code,
        )
    await accounts.load_users()  # before the first request: tokens are checked on it
    if config.accounts.bench_registration_code:
        log.warning("bench configuration: a fixed registration code is accepted")
    tz = parts.tz or local_tz()
    clock = parts.clock or StationClock(config.clock.scale)
    pool = LinkPool()
    devices = parts.devices if parts.devices is not None else build_devices(config, clock, pool)
    loop = ControlLoop(config, devices, clock)
    door = Door(loop)
    ledger = Ledger(storage, loop.units, tz)
    ledger.attach(door)  # first: a bill is dated and on its way before it is told
    saver = StateSaver(loop, storage)
    saver.attach(door)
    saver.waits_for(ledger.all_stored)  # a saved state never tells of an unstored bill
    saved = await storage.run(lambda s: s.load_state())
    if saved is not None:
        loop.restore(json.loads(saved))
        log.info("carrying on: %d requests restored", door.request_count())
    hub = Hub(ledger, door, tz)
    hub.persisted = saver.persisted
    feed = OperatorFeed(door, storage, tz, hub.now)
    uplink = None
    if config.ocpp.url is not None:
        from server.ocpp.uplink import Uplink  # the ocpp library only where it is used

        uplink = Uplink(config.ocpp, door, storage, config.clock.scale)
        saver.waits_for(uplink.flushed)  # ... nor of a transaction whose messages are not
    ctx = AppContext(
        accounts,
        storage,
        tz,
        hub=hub,
        max_quantity_kwh=config.server.max_quantity_kwh,
        cors_origins=config.server.cors_origins,
    )
    app = make_app(ctx, feed)
    return Components(
        config=config,
        storage=storage,
        accounts=accounts,
        pool=pool,
        clock=clock,
        tz=tz,
        loop=loop,
        door=door,
        ledger=ledger,
        saver=saver,
        hub=hub,
        feed=feed,
        app=app,
        uplink=uplink,
    )
