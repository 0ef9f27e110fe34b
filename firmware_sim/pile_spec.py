"""What a simulated pile is: its device kind, unit ids, power and options (the checks that hold
for every kind; firmware_sim.twins checks what a kind takes)."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.devices.ac import PHASES
from drivers.devices.sdm import MeterModel

MAX_UNIT = 247  # Modbus unit ids of devices on a bus: 1..247 (0 is broadcast)
MAX_TCP_UNIT = 255  # a device reached only over Modbus TCP may answer as 248..255 too


@dataclass(frozen=True)
class PileSpec:
    unit: int
    profile: str  # the device kind's registry name (firmware_sim.twins)
    power_w: int
    phases: int = 3  # a current-controlled pile's phases
    meter_unit: int | None = None  # the unit id of its separate meter, if it has one
    meter_model: MeterModel = MeterModel.SDM630
    auto_plug: bool | None = None  # None: the simulator's default
    meter_wh: int = 0
    watchdog_s: int | None = None  # its watchdog (or fail-safe) at start; None: the kind's

    def __post_init__(self) -> None:
        where = f"pile on unit {self.unit}"
        if not 1 <= self.unit <= MAX_TCP_UNIT:
            raise ValueError(f"unit {self.unit}: a unit id is 1..{MAX_UNIT}")
        if self.power_w <= 0:
            raise ValueError(f"{where}: the power must be positive, got {self.power_w} W")
        if self.phases not in PHASES:
            raise ValueError(f"{where}: phases must be 1 or 3, got {self.phases}")
        if self.meter_unit is not None:
            if not 1 <= self.meter_unit <= MAX_UNIT or self.meter_unit == self.unit:
                raise ValueError(
                    f"{where}: meter={self.meter_unit} must be a unit id 1..{MAX_UNIT} "
                    "other than the pile's own"
                )
            if self.meter_model is MeterModel.SDM120 and self.phases != 1:
                raise ValueError(f"{where}: the SDM120 is single-phase: add phases=1 or use sdm630")
        if self.meter_wh < 0:
            raise ValueError(f"{where}: meter_wh must not be negative")
        if self.watchdog_s is not None and not 0 <= self.watchdog_s <= 0xFFFF:
            raise ValueError(f"{where}: watchdog must be 0..65535 s")

    @property
    def units(self) -> list[int]:
        """Every unit id the pile takes: its own, and its meter's."""
        return [self.unit] if self.meter_unit is None else [self.unit, self.meter_unit]
