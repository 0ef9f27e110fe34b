"""The small contracts the controller drives: a pile and a meter, units in every name.

Capabilities differ between devices (an energy limit, a watchdog); a driver says what it has,
and a command it cannot carry out raises NotSupported.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple, Protocol


class DeviceState(StrEnum):
    """After IEC 61851: A no vehicle, B connected, C charging; plus finished and fault."""

    NO_VEHICLE = "no_vehicle"
    CONNECTED = "connected"
    CHARGING = "charging"
    FINISHED = "finished"  # stopped itself at its energy limit, vehicle still connected
    FAULT = "fault"


class DeviceStatus(NamedTuple):
    state: DeviceState
    fault_code: int  # 0 when there is no fault
    power_w: int  # drawn now, as the pile itself reports it
    setpoint_w: int  # what it was told to deliver; 0 = disabled
    meter_wh: int | None  # its own cumulative meter, if it has one (already checked)


class PileDevice(Protocol):
    """A charging pile that can be read and commanded."""

    name: str
    rated_power_w: int
    has_energy_limit: bool  # stops itself at a session energy limit
    has_watchdog: bool  # stops itself if the controller goes silent

    async def read_status(self) -> DeviceStatus: ...

    async def enable(self, setpoint_w: int, limit_wh: int | None = None) -> None:
        """Charge at up to setpoint_w; a fresh session if it was not charging. A limit on a pile
        without one raises NotSupported: the controller must stop it itself."""
        ...

    async def stop(self) -> None: ...

    async def heartbeat(self) -> None:
        """Feed the pile's watchdog (NotSupported without one)."""
        ...

    async def set_watchdog(self, timeout_s: int) -> None:
        """Set how long the pile waits for a heartbeat before it stops a session by itself
        (0 = never; NotSupported without a watchdog)."""
        ...


class Meter(Protocol):
    """A cumulative energy counter."""

    name: str

    async def read_energy_wh(self) -> int:
        """The counter in whole Wh, checked (BadReading if it must not count as energy)."""
        ...

    async def read_power_w(self) -> int: ...
