"""Builds each configured pile's drivers from its `link`, `unit` and `profile` settings, through
the device registry (drivers.registry)."""

from __future__ import annotations

from collections.abc import Callable

from controller.config import Config, PileConfig
from controller.live import PileDevices
from drivers.device_kind import DeviceSettings, Timing
from drivers.link import LinkPool
from drivers.registry import meter_kind, pile_kind
from firmware_sim.in_process import SimPile


def build_devices(
    config: Config, clock: Callable[[], float], pool: LinkPool
) -> dict[int, PileDevices]:
    """pile id -> its drivers. Piles on one bus share one link (LinkPool)."""
    devices: dict[int, PileDevices] = {}
    for p in config.piles:
        if p.link == "sim":  # the simulator's pile model in process: no wire, no device kind
            devices[p.id] = PileDevices(SimPile(p.name, p.power_w, clock))
            continue
        link = pool.get(p.link)
        kind = pile_kind(p.profile)
        assert kind is not None  # the configuration checked it
        options = {key: getattr(p, key) for key in kind.keys}
        pile = kind.build(link, settings(p, kind.timing, p.unit, p.name, clock, options))
        meter = None
        if p.meter_unit is not None:  # a separate meter (the configuration checked the kind)
            meter_of = meter_kind(p.meter)
            assert meter_of is not None
            meter_name = f"{p.name} meter"
            meter_settings = settings(p, meter_of.timing, p.meter_unit, meter_name, clock, {})
            meter = meter_of.build(link, meter_settings)
        devices[p.id] = PileDevices(pile, meter)
    return devices


def settings(
    p: PileConfig,
    timing: Timing,
    unit: int,
    name: str,
    clock: Callable[[], float],
    options: dict[str, object],
) -> DeviceSettings:
    """What a device with `timing` on pile `p` is built from: the pile's own `pause_s` and
    `timeout_s` where it sets them (they apply to its meter too), the device kind's otherwise."""
    pause_s = timing.pause_s if p.pause_s is None else p.pause_s
    timeout_s = timing.timeout_s if p.timeout_s is None else p.timeout_s
    return DeviceSettings(name, unit, p.power_w, options, Timing(pause_s, timeout_s), clock)
