"""Register maps of the supported devices, as plain data shared by the drivers and the simulator.

Addresses are 0-based protocol (PDU) addresses, with the datasheet's number in a comment where
the device has a datasheet. Multi-register values are big-endian: the high word first. This
module imports nothing from pymodbus, so `firmware_sim` can use it.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple


class Table(IntEnum):
    """Which register table a value lives in, by the function code that reads it."""

    HOLDING = 3  # read FC03, written FC06 / FC16
    INPUT = 4  # read FC04, read-only


class Kind(IntEnum):
    U16 = 1
    U32 = 2
    U64 = 4
    F32 = 20  # IEEE-754 float32, high word first


_WIDTH = {Kind.U16: 1, Kind.U32: 2, Kind.U64: 4, Kind.F32: 2}


def width(kind: Kind) -> int:
    """Registers a value of this kind takes."""
    return _WIDTH[kind]


class Reg(NamedTuple):
    table: Table
    address: int
    kind: Kind
    unit: str
    writable: bool
    meaning: str


# -- 1. The station's reference pile ------
# Our own map (docs/registers.md). Unit id by configuration, default 1.


class RefState(IntEnum):
    """Pile state, after IEC 61851's control-pilot states."""

    NO_VEHICLE = 0  # A
    CONNECTED = 1  # B: vehicle plugged in, not charging
    CHARGING = 2  # C
    FINISHED = 3  # the session reached its energy limit, or was stopped; vehicle still plugged in
    FAULT = 4  # fault code in REF.fault_code


REF_MAGIC = 0x4543  # "EC": identifies a reference pile
REF_MAP_VERSION = 1

REF = {
    # identity and measurements: input registers, read-only
    "magic": Reg(Table.INPUT, 0, Kind.U16, "", False, "0x4543 on every reference pile"),
    "map_version": Reg(Table.INPUT, 1, Kind.U16, "", False, "register map version (1)"),
    "rated_power_w": Reg(Table.INPUT, 2, Kind.U32, "W", False, "rated power"),
    "state": Reg(Table.INPUT, 4, Kind.U16, "", False, "RefState"),
    "fault_code": Reg(Table.INPUT, 5, Kind.U16, "", False, "0 = no fault; else vendor code"),
    "power_w": Reg(Table.INPUT, 6, Kind.U32, "W", False, "active power now"),
    "meter_wh": Reg(Table.INPUT, 8, Kind.U64, "Wh", False, "cumulative meter energy"),
    "session_wh": Reg(Table.INPUT, 12, Kind.U32, "Wh", False, "energy of the running session"),
    # commands and settings: holding registers
    "enable": Reg(
        Table.HOLDING, 0, Kind.U16, "", True, "1 = charge, 0 = stop; 0 -> 1 starts a session"
    ),
    "setpoint_w": Reg(Table.HOLDING, 1, Kind.U32, "W", True, "power setpoint (capped at rated)"),
    "limit_wh": Reg(Table.HOLDING, 3, Kind.U32, "Wh", True, "session energy limit; 0 = none"),
    "heartbeat": Reg(Table.HOLDING, 5, Kind.U16, "", True, "any write feeds the watchdog"),
    "watchdog_s": Reg(Table.HOLDING, 6, Kind.U16, "s", True, "stop charging after this silence"),
}
REF_INPUT_COUNT = 14  # one read of input registers 0..13 covers every measurement
REF_HOLDING_COUNT = 7
REF_DEFAULT_WATCHDOG_S = 10


# -- 2a. EVSE-WB-DIN (SimpleEVSE) charge controller ------
# Holding registers, FC03 read, FC16 write (hardware notes 4b). Unit id 1 by default, 9600 8N1.


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
EVSE_MIN_CURRENT_A = 6  # IEC 61851: below 6 A the pilot cannot signal charging
EVSE_VOLTS = 230


def evse_rated_current_a(rated_power_w: int, phases: int) -> int:
    """The whole current nearest the rated power: 11 kW on 3 phases is 16 A (11,040 W)."""
    return max(EVSE_MIN_CURRENT_A, round(rated_power_w / (EVSE_VOLTS * phases)))


# -- 2b. Eastron SDM630 / SDM120 energy meters ------
# Input registers, FC04, float32 big-endian (hardware notes 4a).

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


def sdm_power_reg(model: MeterModel) -> Reg:
    """SDM630 has a total-power register; on the single-phase SDM120 L1 power is the total."""
    return SDM["power_w"] if model is MeterModel.SDM630 else SDM["power_l1_w"]


# -- encoding ------


def encode(kind: Kind, value: int | float) -> list[int]:
    """Registers holding `value` (high word first)."""
    if kind is Kind.F32:
        high, low = struct.unpack(">HH", struct.pack(">f", value))
        return [high, low]
    n = width(kind)
    v = int(value) % (1 << (16 * n))  # unsigned counters wrap modulo their width
    return [(v >> (16 * (n - 1 - i))) & 0xFFFF for i in range(n)]


def decode(kind: Kind, regs: list[int] | tuple[int, ...]) -> int | float:
    if kind is Kind.F32:
        return struct.unpack(">f", struct.pack(">HH", regs[0], regs[1]))[0]
    if kind is Kind.U16:
        return regs[0]
    if kind is Kind.U32:
        return (regs[0] << 16) | regs[1]
    value = 0
    for r in regs[: _WIDTH[kind]]:
        value = (value << 16) | r
    return value


def field(block: list[int] | tuple[int, ...], start: int, reg: Reg) -> int | float:
    """The value of `reg` out of a block of registers read from address `start`."""
    offset = reg.address - start
    return decode(reg.kind, block[offset : offset + _WIDTH[reg.kind]])
