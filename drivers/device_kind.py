"""What a device kind declares in the registry (drivers.registry): its name, configuration keys,
capabilities, timing, register map, and how it is built on a link.

Plain values, and the driver named by its module: the configuration and the simulator read a
kind without loading its driver, and the driver (with pymodbus behind its link) loads only when
a pile is built.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, NamedTuple

from drivers.registers import Reg


class Metering(StrEnum):
    """Where a pile's cumulative energy count comes from."""

    OWN = "own"  # its own status carries it
    SEPARATE = "separate"  # a separate meter on `meter_unit`, required on a Modbus link
    OWN_OR_SEPARATE = "own or separate"  # its own, unless a `meter_unit` is configured


class Capabilities(NamedTuple):
    energy_limit: bool  # stops itself at a session energy limit
    watchdog: bool  # stops itself when the station goes silent (set_watchdog, heartbeat)
    metering: Metering
    setpoint_unit: str  # the unit of the setpoint it is written: "W", "A", "mA"


class Timing(NamedTuple):
    """A device's own time on its link; a pile's `pause_s` and `timeout_s` keys override it."""

    pause_s: float = 0.0  # the link keeps quiet this long before each transaction with it
    timeout_s: float | None = None  # how long an answer may take; None: the link's `timeout`


class DeviceSettings(NamedTuple):
    """What a factory builds a device from: the pile's configuration, resolved."""

    name: str  # the pile's name (a meter: "<pile> meter"), in every message
    unit: int  # its Modbus unit id
    power_w: int  # the pile's rated power (a meter: the most it may count per hour)
    options: Mapping[str, Any]  # the values of the device keys the kind takes
    timing: Timing
    clock: Callable[[], float]  # monotonic seconds, for the meter checks


class PileKind(NamedTuple):
    """A kind of charging pile (a `profile`)."""

    name: str  # the configuration's `profile`, pile-sim's spec
    aliases: tuple[str, ...]  # other spellings accepted for it
    title: str  # the device's name for people
    keys: Mapping[str, Any]  # the [[piles]] device keys it takes, with their defaults
    default_unit: int  # its Modbus unit id as it ships (the pile's `unit` by default)
    transports: frozenset[str]  # the link kinds it is reached over: "tcp", "rtu"
    capabilities: Capabilities
    timing: Timing
    registers: Mapping[str, Reg]
    driver: str  # the module of its driver, whose build(link, settings) makes a PileDevice

    def build(self, link: Any, settings: DeviceSettings) -> Any:
        """Its driver (drivers.contracts.PileDevice) on `link` (a drivers.link.ModbusLink)."""
        builder: Callable[[Any, DeviceSettings], Any] = _driver(self.driver).build
        return builder(link, settings)


class MeterKind(NamedTuple):
    """A kind of separate energy meter (a pile's `meter`)."""

    name: str
    title: str
    timing: Timing
    registers: Mapping[str, Reg]
    driver: str  # the module of its driver, whose build(link, settings, name) makes a Meter

    def build(self, link: Any, settings: DeviceSettings) -> Any:
        """Its driver (drivers.contracts.Meter) on `link`."""
        builder: Callable[[Any, DeviceSettings, str], Any] = _driver(self.driver).build
        return builder(link, settings, self.name)


def _driver(module: str) -> Any:
    """The driver module named `module`, loaded on first use. The builtin __import__, because
    importlib itself would cost every configuration check (the replay's start) its import."""
    __import__(module)
    return sys.modules[module]
