"""Eastron SDM630 / SDM120 energy meters (hardware notes 4a): their registry entries (a pile's
`meter`) and their register map. Input registers, FC04, float32 big-endian."""

from __future__ import annotations

from enum import IntEnum

from drivers.device_kind import MeterKind, Timing
from drivers.registers import Kind, Reg, Table

SDM = {
    "voltage_v": Reg(Table.INPUT, 0x0000, Kind.F32, "V", False, "L1 voltage (30001)"),
    "current_a": Reg(Table.INPUT, 0x0006, Kind.F32, "A", False, "L1 current (30007)"),
    "power_l1_w": Reg(Table.INPUT, 0x000C, Kind.F32, "W", False, "L1 power; SDM120: total (30013)"),
    "power_w": Reg(Table.INPUT, 0x0034, Kind.F32, "W", False, "SDM630 total power (30053)"),
    "import_kwh": Reg(Table.INPUT, 0x0048, Kind.F32, "kWh", False, "total import energy (30073)"),
    "export_kwh": Reg(Table.INPUT, 0x004A, Kind.F32, "kWh", False, "total export energy (30075)"),
}


class MeterModel(IntEnum):
    SDM630 = 630
    SDM120 = 120


# The configuration's `meter` and pile-sim's spec options, by model.
METER_NAMES = {MeterModel.SDM630: "sdm630", MeterModel.SDM120: "sdm120"}


def sdm_power_reg(model: MeterModel) -> Reg:
    """SDM630 has a total-power register; on the single-phase SDM120 L1 power is the total."""
    return SDM["power_w"] if model is MeterModel.SDM630 else SDM["power_l1_w"]


SDM630 = MeterKind(
    name=METER_NAMES[MeterModel.SDM630],
    title="Eastron SDM630 (three-phase)",
    timing=Timing(),
    registers=SDM,
    driver="drivers.sdm",
)
SDM120 = MeterKind(
    name=METER_NAMES[MeterModel.SDM120],
    title="Eastron SDM120 (single-phase)",
    timing=Timing(),
    registers={name: reg for name, reg in SDM.items() if name != "power_w"},
    driver="drivers.sdm",
)
