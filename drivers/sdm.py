"""Driver of the Eastron SDM630 / SDM120 energy meters (hardware notes 4a, drivers.devices.sdm):
float32 inputs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from drivers.device import LinkDevice
from drivers.device_kind import DeviceSettings
from drivers.devices.sdm import METER_NAMES, SDM, MeterModel, sdm_power_reg
from drivers.energy_guard import EnergyGuard
from drivers.registers import Table, decode

if TYPE_CHECKING:
    from drivers.link import ModbusLink


class SdmMeter(LinkDevice):
    def __init__(
        self,
        link: ModbusLink,
        unit: int,
        name: str,
        max_power_w: int,
        *,
        model: MeterModel = MeterModel.SDM630,
        clock: Callable[[], float] = time.monotonic,
        pause_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(link, unit, name, pause_s=pause_s, timeout_s=timeout_s)
        self.model = model
        self._clock = clock
        self.guard = EnergyGuard(name, max_power_w)

    async def read_energy_wh(self) -> int:
        reg = SDM["import_kwh"]
        sent_s = self._clock()
        regs = await self._read(Table.INPUT, reg.address, 2)
        return self.guard.check(decode(reg.kind, regs) * 1000, self._clock(), sent_s)

    async def read_power_w(self) -> int:
        reg = sdm_power_reg(self.model)
        regs = await self._read(Table.INPUT, reg.address, 2)
        value = decode(reg.kind, regs)
        return round(value) if math.isfinite(value) else 0  # garbage: no power figure


_MODELS = {name: model for model, name in METER_NAMES.items()}


def build(link: ModbusLink, settings: DeviceSettings, name: str) -> SdmMeter:
    """The meter of kind `name` (sdm630 or sdm120: drivers.devices.sdm)."""
    return SdmMeter(
        link,
        settings.unit,
        settings.name,
        settings.power_w,
        model=_MODELS[name],
        clock=settings.clock,
        pause_s=settings.timing.pause_s,
        timeout_s=settings.timing.timeout_s,
    )
