"""Driver of the EVSE-WB-DIN (SimpleEVSE) charge controller (hardware notes 4b; its kind and
register map: drivers.devices.evse_wb).

It knows current, not power: the setpoint is amps (0 = disabled), power is estimated from the
actual current, and the energy comes from its separate meter (drivers.devices.sdm). It has no
session energy limit and no watchdog register: the controller stops it at the amount.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivers.contracts import DeviceState, DeviceStatus
from drivers.device import LinkDevice
from drivers.device_kind import DeviceSettings
from drivers.devices.evse_wb import (
    EVSE,
    EVSE_MIN_CURRENT_A,
    EVSE_STATUS_COUNT,
    EVSE_STATUS_START,
    EVSE_VOLTS,
    KIND,
    EvseVehicleState,
    evse_rated_current_a,
)
from drivers.errors import BadResponse, NotSupported
from drivers.registers import Table, field

if TYPE_CHECKING:
    from drivers.link import ModbusLink


_STATES = {
    EvseVehicleState.NOT_CONNECTED: DeviceState.NO_VEHICLE,
    EvseVehicleState.CONNECTED: DeviceState.CONNECTED,
    EvseVehicleState.CHARGING: DeviceState.CHARGING,
    EvseVehicleState.CHARGING_VENTILATED: DeviceState.CHARGING,
    EvseVehicleState.FAILURE: DeviceState.FAULT,
}


class EvseWbPile(LinkDevice):
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
        pause_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> None:
        if phases not in (1, 3):
            raise ValueError(f"{name}: phases must be 1 or 3")
        super().__init__(link, unit, name, pause_s=pause_s, timeout_s=timeout_s)
        self.rated_power_w = rated_power_w
        self.phases = phases
        self.max_current_a = evse_rated_current_a(rated_power_w, phases)

    def watts(self, amps: int) -> int:
        return amps * EVSE_VOLTS * self.phases

    def amps(self, setpoint_w: int) -> int:
        """The largest whole current within setpoint_w, at least the 6 A a pilot can signal."""
        return max(
            EVSE_MIN_CURRENT_A, min(self.max_current_a, setpoint_w // (EVSE_VOLTS * self.phases))
        )

    async def read_status(self) -> DeviceStatus:
        block = await self._read(Table.HOLDING, EVSE_STATUS_START, EVSE_STATUS_COUNT)
        raw = int(field(block, EVSE_STATUS_START, EVSE["vehicle_state"]))
        try:
            state = _STATES[EvseVehicleState(raw)]
        except ValueError:
            raise BadResponse(f"{self.name}: unknown vehicle state {raw}") from None
        setpoint_a = int(field(block, EVSE_STATUS_START, EVSE["current_a"]))
        actual_a = int(field(block, EVSE_STATUS_START, EVSE["actual_current_a"]))
        return DeviceStatus(
            state=state,
            fault_code=raw if state is DeviceState.FAULT else 0,
            power_w=self.watts(actual_a),
            setpoint_w=self.watts(setpoint_a),
            meter_wh=None,
        )

    async def enable(self, setpoint_w: int, limit_wh: int | None = None) -> None:
        if limit_wh is not None:
            raise NotSupported(f"{self.name}: the EVSE-WB-DIN has no session energy limit")
        await self._write(EVSE["current_a"].address, [self.amps(setpoint_w)])

    async def stop(self) -> None:
        await self._write(EVSE["current_a"].address, [0])

    async def heartbeat(self) -> None:
        raise NotSupported(f"{self.name}: the EVSE-WB-DIN has no watchdog register")

    async def set_watchdog(self, timeout_s: int) -> None:
        raise NotSupported(f"{self.name}: the EVSE-WB-DIN has no watchdog register")


def build(link: ModbusLink, settings: DeviceSettings) -> EvseWbPile:
    return EvseWbPile(
        link,
        settings.unit,
        settings.name,
        settings.power_w,
        phases=settings.options["phases"],
        pause_s=settings.timing.pause_s,
        timeout_s=settings.timing.timeout_s,
    )
