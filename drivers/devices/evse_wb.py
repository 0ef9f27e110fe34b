"""EVSE-WB-DIN (SimpleEVSE) charge controller (hardware notes 4b): its registry entry and its
register map. Holding registers, FC03 read, FC16 write. Unit id 1 by default, 9600 8N1."""

from __future__ import annotations

from enum import IntEnum

from drivers.device_kind import Capabilities, Metering, PileKind, Timing
from drivers.devices.ac import MIN_CURRENT_A, PHASE_VOLTS
from drivers.devices.sdm import METER_NAMES, MeterModel
from drivers.registers import Kind, Reg, Table

NAME = "evse-wb"
ALIASES = ("evse-wb-din",)


class EvseVehicleState(IntEnum):
    """HR 1002."""

    NOT_CONNECTED = 1  # A
    CONNECTED = 2  # B
    CHARGING = 3  # C
    CHARGING_VENTILATED = 4  # D
    FAILURE = 5


EVSE = {
    "current_a": Reg(Table.HOLDING, 1000, Kind.U16, "A", True, "setpoint; 0 = disabled"),
    "actual_current_a": Reg(Table.HOLDING, 1001, Kind.U16, "A", False, "actual current"),
    "vehicle_state": Reg(Table.HOLDING, 1002, Kind.U16, "", False, "EvseVehicleState"),
    "pp_limit_a": Reg(Table.HOLDING, 1003, Kind.U16, "A", False, "cable limit"),
    "turn_off": Reg(Table.HOLDING, 1004, Kind.U16, "", True, "turn-off bit"),
    "firmware": Reg(Table.HOLDING, 1005, Kind.U16, "", False, "firmware version"),
    "evse_state": Reg(Table.HOLDING, 1006, Kind.U16, "", False, "1 steady 12 V, 2 PWM, 3 off"),
    "rcd_status": Reg(Table.HOLDING, 1007, Kind.U16, "", False, "residual current device"),
    "min_current_a": Reg(Table.HOLDING, 2002, Kind.U16, "A", True, "minimum current"),
}
EVSE_STATUS_START = 1000
EVSE_STATUS_COUNT = 8  # HR 1000..1007 in one read
EVSE_MIN_CURRENT_A = MIN_CURRENT_A
EVSE_VOLTS = PHASE_VOLTS


def evse_rated_current_a(rated_power_w: int, phases: int) -> int:
    """The whole current nearest the rated power: 11 kW on 3 phases is 16 A (11,040 W)."""
    return max(EVSE_MIN_CURRENT_A, round(rated_power_w / (EVSE_VOLTS * phases)))


CAPABILITIES = Capabilities(
    energy_limit=False, watchdog=False, metering=Metering.SEPARATE, setpoint_unit="A"
)

KIND = PileKind(
    name=NAME,
    aliases=ALIASES,
    title="EVSE-WB-DIN (SimpleEVSE) with an Eastron meter",
    keys={"meter_unit": None, "meter": METER_NAMES[MeterModel.SDM630], "phases": 3},
    default_unit=1,
    transports=frozenset({"rtu", "tcp"}),
    capabilities=CAPABILITIES,
    timing=Timing(),
    registers=EVSE,
    driver="drivers.evse_wb",
)
