"""Driver of the station's reference pile (its kind and register map: drivers.devices.reference,
docs/registers.md §1).

One input-register read gives state, power and the meter together, so a poll is one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from drivers.contracts import DeviceState, DeviceStatus
from drivers.device import LinkDevice
from drivers.device_kind import DeviceSettings
from drivers.devices.reference import (
    KIND,
    REF,
    REF_INPUT_COUNT,
    REF_MAGIC,
    RefState,
)
from drivers.energy_guard import EnergyGuard
from drivers.errors import BadResponse
from drivers.registers import Kind, Table, encode, field

if TYPE_CHECKING:
    from drivers.link import ModbusLink


_STATES = {
    RefState.NO_VEHICLE: DeviceState.NO_VEHICLE,
    RefState.CONNECTED: DeviceState.CONNECTED,
    RefState.CHARGING: DeviceState.CHARGING,
    RefState.FINISHED: DeviceState.FINISHED,
    RefState.FAULT: DeviceState.FAULT,
}
_U64_ALL_ONES = (1 << 64) - 1
# Offsets into the input block read from address 0 (the map's addresses, decoded inline: a poll
# is on the hot path of every control-loop tick).
_STATE = REF["state"].address
_FAULT = REF["fault_code"].address
_POWER = REF["power_w"].address
_METER = REF["meter_wh"].address
_SETPOINT = REF["setpoint_w"].address


class ReferencePile(LinkDevice):
    """A reference pile on a link, by unit id. It is its own meter."""

    has_energy_limit = KIND.capabilities.energy_limit
    has_watchdog = KIND.capabilities.watchdog

    def __init__(
        self,
        link: ModbusLink,
        unit: int,
        name: str,
        rated_power_w: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        pause_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(link, unit, name, pause_s=pause_s, timeout_s=timeout_s)
        self.rated_power_w = rated_power_w
        self._clock = clock
        self.guard = EnergyGuard(name, rated_power_w, garbage_wh=_U64_ALL_ONES)
        self._beat = 0

    async def _inputs(self) -> list[int]:
        return await self._read(Table.INPUT, 0, REF_INPUT_COUNT)

    async def identify(self) -> int:
        """Check that the unit is a reference pile; its rated power in W."""
        block = await self._inputs()
        if field(block, 0, REF["magic"]) != REF_MAGIC:
            raise BadResponse(f"{self.name}: unit {self.unit} is not a reference pile")
        return int(field(block, 0, REF["rated_power_w"]))

    async def read_status(self) -> DeviceStatus:
        sent_s = self._clock()
        block = await self._read(Table.INPUT, 0, REF_INPUT_COUNT)
        state = _STATES.get(block[_STATE])  # type: ignore[call-overload]
        if state is None:
            raise BadResponse(f"{self.name}: unknown state {block[_STATE]}")
        m = _METER
        meter = (block[m] << 48) | (block[m + 1] << 32) | (block[m + 2] << 16) | block[m + 3]
        meter_wh = self.guard.check(meter, self._clock(), sent_s)
        if state in (DeviceState.FINISHED, DeviceState.FAULT):
            # A finished or faulted pile has dropped `enable` by itself (docs/registers.md): no
            # second round trip on the way to the next car's session.
            setpoint_w = 0
        else:
            # Read back what the pile was told: the controller repairs drift, it does not trust
            # a cache.
            holding = await self._read(Table.HOLDING, 0, 3)
            setpoint_w = ((holding[_SETPOINT] << 16) | holding[_SETPOINT + 1]) if holding[0] else 0
        return DeviceStatus(
            state, block[_FAULT], (block[_POWER] << 16) | block[_POWER + 1], setpoint_w, meter_wh
        )

    async def read_energy_wh(self) -> int:
        sent_s = self._clock()
        regs = await self._read(Table.INPUT, REF["meter_wh"].address, 4)
        return self.guard.check(
            field(regs, REF["meter_wh"].address, REF["meter_wh"]), self._clock(), sent_s
        )

    async def read_power_w(self) -> int:
        regs = await self._read(Table.INPUT, REF["power_w"].address, 2)
        return int(field(regs, REF["power_w"].address, REF["power_w"]))

    async def enable(self, setpoint_w: int, limit_wh: int | None = None) -> None:
        # One write of enable, setpoint and limit (registers 0-4): the pile applies `enable`
        # last (docs/registers.md), so the session starts with its limit in place, in one
        # round trip.
        values = [1, *encode(Kind.U32, setpoint_w), *encode(Kind.U32, limit_wh or 0)]
        await self._write(REF["enable"].address, values)

    async def stop(self) -> None:
        await self._write(REF["enable"].address, [0])

    async def heartbeat(self) -> None:
        self._beat = (self._beat + 1) & 0xFFFF
        await self._write(REF["heartbeat"].address, [self._beat])

    async def set_watchdog(self, timeout_s: int) -> None:
        await self._write(REF["watchdog_s"].address, [timeout_s])


def build(link: ModbusLink, settings: DeviceSettings) -> ReferencePile:
    return ReferencePile(
        link,
        settings.unit,
        settings.name,
        settings.power_w,
        clock=settings.clock,
        pause_s=settings.timing.pause_s,
        timeout_s=settings.timing.timeout_s,
    )
