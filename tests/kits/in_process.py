"""The station as `serve` builds it (server.assembly.composition), in this process, for the
kits: its piles simulated in process on the kit's clock, its control loop ticked by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import tzinfo
from pathlib import Path

from controller.config import Config
from controller.live import PileDevices
from controller.storage import AsyncStorage
from firmware_sim.in_process import SimPile
from server.accounts.accounts import Accounts
from server.assembly.composition import Parts
from server.assembly.config import ServiceConfig
from server.assembly.service import Service


def sim_devices(
    config: Config | ServiceConfig, clock: Callable[[], float]
) -> dict[int, PileDevices]:
    return {p.id: PileDevices(SimPile(p.name, p.power_w, clock)) for p in config.piles}


@asynccontextmanager
async def in_process(
    config: Config | ServiceConfig,
    state_dir: Path,
    clock: Callable[[], float],
    tz: tzinfo,
    accounts: Callable[[AsyncStorage], Accounts] | None = None,
) -> AsyncIterator[Service]:
    """The station on port 0 with `clock`; the test ticks its loop (service.loop.tick()).
    A station's own configuration runs with every component's defaults."""
    if not isinstance(config, ServiceConfig):
        config = ServiceConfig(*config)
    parts = Parts(clock=clock, devices=sim_devices(config, clock), tz=tz, accounts=accounts)
    service = await Service.start(config, state_dir, port=0, parts=parts, drive=False)
    try:
        yield service
    finally:
        await service.stop()
