"""Eastron SDM630 / SDM120 energy meters (map drivers.devices.sdm, hardware notes 4a).

The meter has its own unit id and meters the PileModel of its EVSE. Input registers only,
IEEE-754 float32, high word first. Besides the shared map it answers the other per-phase
values and the frequency, so that block reads such as 0x0000..0x0011 work as on the real
meter; the registers between (apparent power, power factor, ...) are not simulated and answer
exception 02.
"""

from __future__ import annotations

import math

from drivers.devices.ac import PHASE_VOLTS
from drivers.devices.sdm import METER_NAMES, SDM, MeterModel
from drivers.registers import Kind, Reg, Table
from firmware_sim.clock import WH_TICKS
from firmware_sim.faults import UnitFaults
from firmware_sim.pile_model import PileModel
from firmware_sim.register_file import MappedDevice, Value

# "The SDM630Modbus can transfer a maximum of 40 values in a single transaction" (hardware
# notes 4a): at most 80 registers a read; more is refused.
SDM_MAX_READ_COUNT = 80
SDM_FREQUENCY_HZ = 50.0


def _f32(address: int, unit: str, meaning: str) -> Reg:
    return Reg(Table.INPUT, address, Kind.F32, unit, False, meaning)


# Simulator-only registers: not read by the drivers, answered as a real meter would.
SDM630_EXTRA = {
    "voltage_l2_v": _f32(0x0002, "V", "L2 voltage (30003)"),
    "voltage_l3_v": _f32(0x0004, "V", "L3 voltage (30005)"),
    "current_l2_a": _f32(0x0008, "A", "L2 current (30009)"),
    "current_l3_a": _f32(0x000A, "A", "L3 current (30011)"),
    "power_l2_w": _f32(0x000E, "W", "L2 power (30015)"),
    "power_l3_w": _f32(0x0010, "W", "L3 power (30017)"),
    "frequency_hz": _f32(0x0046, "Hz", "frequency (30071)"),
}
SDM120_MAP = {name: reg for name, reg in SDM.items() if name != "power_w"} | {
    "frequency_hz": SDM630_EXTRA["frequency_hz"]
}
SDM630_MAP = SDM | SDM630_EXTRA


class SdmMeterDevice(MappedDevice):
    max_read_count = SDM_MAX_READ_COUNT
    is_meter = True

    def __init__(
        self,
        unit: int,
        model: PileModel,
        faults: UnitFaults,
        *,
        meter_model: MeterModel = MeterModel.SDM630,
        phases: int = 3,
        pile_unit: int,
    ) -> None:
        if meter_model is MeterModel.SDM120 and phases != 1:
            raise ValueError(f"unit {unit}: the SDM120 is a single-phase meter (phases=1)")
        super().__init__(unit, SDM630_MAP if meter_model is MeterModel.SDM630 else SDM120_MAP)
        self.profile = METER_NAMES[meter_model]
        self.model = model
        self.faults = faults
        self.meter_model = meter_model
        self.phases = phases
        self.pile_unit = pile_unit

    def step(self, now_tick: int) -> None:
        self.model.advance(now_tick)

    def reported_meter_wh(self) -> int | None:
        return self.faults.meter.reported_wh(self.model.meter, WH_TICKS)

    def values(self, table: Table) -> dict[str, Value]:
        if table is not Table.INPUT:
            return {}
        power_w = float(self.model.power_w)
        phase_power_w = power_w / self.phases
        phase_current_a = phase_power_w / PHASE_VOLTS
        meter_wh = self.reported_meter_wh()
        values: dict[str, Value] = {
            "voltage_v": float(PHASE_VOLTS),
            "current_a": phase_current_a,
            "power_l1_w": phase_power_w,
            "power_w": power_w,
            "import_kwh": math.nan if meter_wh is None else meter_wh / 1000,
            "export_kwh": 0.0,
            "frequency_hz": SDM_FREQUENCY_HZ,
        }
        if self.meter_model is MeterModel.SDM630:
            on_l23 = self.phases == 3  # a single-phase pile draws on L1 only
            values |= {
                "voltage_l2_v": float(PHASE_VOLTS),
                "voltage_l3_v": float(PHASE_VOLTS),
                "current_l2_a": phase_current_a if on_l23 else 0.0,
                "current_l3_a": phase_current_a if on_l23 else 0.0,
                "power_l2_w": phase_power_w if on_l23 else 0.0,
                "power_l3_w": phase_power_w if on_l23 else 0.0,
            }
        return values

    def apply(self, name: str, value: int) -> None:
        raise AssertionError("the meter has no writable registers")  # refused before: 02

    def snapshot(self) -> dict[str, object]:
        m = self.model
        return {
            "unit": self.unit,
            "profile": self.profile,
            "pile_unit": self.pile_unit,
            "state": m.status.value,
            "power_w": m.power_w,
            "meter_wh": m.meter_wh,
            "reported_meter_wh": self.reported_meter_wh(),
        }
