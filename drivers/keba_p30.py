"""Driver of the KEBA KeContact P30 wallbox (hardware notes 4b; its kind and register map:
drivers.devices.keba_p30).

Over Modbus TCP as unit 255. It reads one 32-bit value a request (at most 2 registers) and wants
0.5 s between requests (its Timing), so a poll is three or four reads: state (1000), cable (1004)
unless charging, power (1020, mW) and the total energy (1036, 0.1 Wh), its own meter. It takes a
maximum current in mA (5004) and an enable (5014), each written with FC06 and not readable: the
setpoint it reports is what it was last told, while its state says it is enabled. It has no
session energy limit (the station stops it at the amount) and a fail-safe timeout (5018) that
the station feeds as its watchdog, every half timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from drivers.ac_current import current_watts, rated_current_ma, setpoint_current_ma
from drivers.contracts import DeviceState, DeviceStatus
from drivers.device import LinkDevice
from drivers.device_kind import DeviceSettings
from drivers.devices.keba_p30 import (
    CABLE_EV_BIT,
    ENERGY_PER_WH,
    KEBA,
    KIND,
    PAUSE_S,
    POWER_PER_W,
    KebaState,
)
from drivers.energy_guard import EnergyGuard
from drivers.errors import BadResponse, NotSupported
from drivers.registers import Table

if TYPE_CHECKING:
    from drivers.link import ModbusLink

_U32_ALL_ONES = (1 << 32) - 1
_U16_MAX = 0xFFFF  # the current register (5004) is 16 bits wide

_STATE = KEBA["state"].address  # 1000
_CABLE = KEBA["cable"].address  # 1004
_POWER = KEBA["power_mw"].address  # 1020, mW
_ENERGY = KEBA["energy_dwh"].address  # 1036, 0.1 Wh
_FAILSAFE = KEBA["failsafe_timeout_s"].address  # 1602, s
_SET_CURRENT = KEBA["set_current_ma"].address  # 5004, mA
_SET_ENABLE = KEBA["set_enable"].address  # 5014
_SET_FAILSAFE = KEBA["set_failsafe_timeout_s"].address  # 5018, s
_ENABLED_STATES = (KebaState.READY, KebaState.CHARGING)
_KNOWN_STATES = frozenset(int(s) for s in KebaState)


class KebaP30Pile(LinkDevice):
    """A KEBA KeContact P30 on a link, by unit id (255 by default). It is its own meter."""

    has_energy_limit = KIND.capabilities.energy_limit
    has_watchdog = KIND.capabilities.watchdog

    def __init__(
        self,
        link: ModbusLink,
        unit: int,
        name: str,
        rated_power_w: int,
        *,
        phases: int = 3,
        clock: Callable[[], float] = time.monotonic,
        pause_s: float = PAUSE_S,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(link, unit, name, pause_s=pause_s, timeout_s=timeout_s)
        self.max_current_ma = min(_U16_MAX, rated_current_ma(name, rated_power_w, phases))
        self.rated_power_w = rated_power_w
        self.phases = phases
        self._clock = clock
        # An all-ones count (0xFFFFFFFF tenths of a Wh) is garbage, never energy.
        self.guard = EnergyGuard(name, rated_power_w, garbage_wh=_U32_ALL_ONES // ENERGY_PER_WH)
        # What it was last told; until then, whatever it runs with, up to its maximum.
        self.setpoint_w = current_watts(self.max_current_ma, phases)
        self.failsafe_s: int | None = None  # the fail-safe timeout, once known
        self.fed_s = -float("inf")  # when 5018 was last written

    async def _u32(self, address: int) -> int:
        regs = await self._read(Table.HOLDING, address, 2)
        return (regs[0] << 16) | regs[1]

    async def read_status(self) -> DeviceStatus:
        raw = await self._u32(_STATE)
        if raw == KebaState.ERROR:
            state = DeviceState.FAULT
        elif raw == KebaState.CHARGING:
            state = DeviceState.CHARGING
        elif raw in _KNOWN_STATES:
            # Not charging: the cable tells a waiting vehicle from an empty socket.
            plugged = await self._u32(_CABLE) & CABLE_EV_BIT
            state = DeviceState.CONNECTED if plugged else DeviceState.NO_VEHICLE
        else:
            raise BadResponse(f"{self.name}: unknown charging state {raw}")
        power_w = await self._u32(_POWER) // POWER_PER_W  # mW, rounded down to whole W
        sent_s = self._clock()
        tenths_wh = await self._u32(_ENERGY)
        # 0.1 Wh to whole Wh, rounded down: exact integers, and never a Wh not yet delivered.
        meter_wh = self.guard.check(tenths_wh // ENERGY_PER_WH, self._clock(), sent_s)
        return DeviceStatus(
            state=state,
            fault_code=raw if state is DeviceState.FAULT else 0,
            power_w=power_w,
            setpoint_w=self.setpoint_w if raw in _ENABLED_STATES else 0,
            meter_wh=meter_wh,
        )

    async def enable(self, setpoint_w: int, limit_wh: int | None = None) -> None:
        if limit_wh is not None:
            raise NotSupported(f"{self.name}: the KEBA P30 has no session energy limit")
        current_ma = setpoint_current_ma(setpoint_w, self.phases, self.max_current_ma)
        if not current_ma:  # below 6 A: it cannot charge at that, so it stops
            await self.stop()
            return
        await self._write_single(_SET_CURRENT, current_ma)  # the current first, then enable
        await self._write_single(_SET_ENABLE, 1)
        self.setpoint_w = current_watts(current_ma, self.phases)

    async def stop(self) -> None:
        await self._write_single(_SET_ENABLE, 0)

    async def set_watchdog(self, timeout_s: int) -> None:
        await self._write_single(_SET_FAILSAFE, timeout_s)
        self.failsafe_s = timeout_s
        self.fed_s = self._clock()

    async def heartbeat(self) -> None:
        """Write the fail-safe timeout again once half of it has passed (hardware notes 4b);
        a timeout it was never told is read from 1602 first."""
        if self.failsafe_s is None:
            self.failsafe_s = await self._u32(_FAILSAFE)
        now_s = self._clock()
        if self.failsafe_s and now_s - self.fed_s >= self.failsafe_s / 2:
            await self._write_single(_SET_FAILSAFE, self.failsafe_s)
            self.fed_s = now_s


def build(link: ModbusLink, settings: DeviceSettings) -> KebaP30Pile:
    return KebaP30Pile(
        link,
        settings.unit,
        settings.name,
        settings.power_w,
        phases=settings.options["phases"],
        clock=settings.clock,
        pause_s=settings.timing.pause_s,
        timeout_s=settings.timing.timeout_s,
    )
