"""Driver of the Eastron SDM630 / SDM120 energy meters (hardware notes 4a): float32 inputs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from drivers.energy_guard import EnergyGuard
from drivers.link import ModbusLink
from drivers.registers import SDM, MeterModel, Table, decode, sdm_power_reg


class SdmMeter:
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
        self.link = link
        self.unit = unit
        self.name = name
        self.model = model
        self.pause_s = pause_s  # this device's own quiet time and timeout on its link
        self.timeout_s = timeout_s
        self._clock = clock
        self.guard = EnergyGuard(name, max_power_w)

    async def read_energy_wh(self) -> int:
        reg = SDM["import_kwh"]
        regs = await self.link.read(
            Table.INPUT, reg.address, 2, self.unit, self.pause_s, self.timeout_s
        )
        return self.guard.check(decode(reg.kind, regs) * 1000, self._clock())

    async def read_power_w(self) -> int:
        reg = sdm_power_reg(self.model)
        regs = await self.link.read(
            Table.INPUT, reg.address, 2, self.unit, self.pause_s, self.timeout_s
        )
        value = decode(reg.kind, regs)
        return round(value) if math.isfinite(value) else 0  # garbage: no power figure
