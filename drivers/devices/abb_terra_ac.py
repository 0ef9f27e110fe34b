"""ABB Terra AC wallbox (hardware notes 4b; evcc's `charger/abb.go`): its registry entry and its
register map. RTU or TCP, unit id 1, firmware 1.6.5 or later. Every value is a 32-bit
big-endian holding register pair (high word first), read with FC03; the current limit is
written with FC16. Currents in mA."""

from __future__ import annotations

from enum import IntEnum

from drivers.device_kind import Capabilities, Metering, PileKind, Timing
from drivers.devices.sdm import METER_NAMES, MeterModel
from drivers.registers import Kind, Reg, Table

NAME = "abb-terra-ac"
ALIASES: tuple[str, ...] = ()
DEFAULT_UNIT = 1


class AbbState(IntEnum):
    """The charging state: the low 7 bits of byte 2 of 0x400C (see STATE_BYTE)."""

    IDLE = 0  # A: no vehicle
    B1 = 1  # vehicle plugged in, pending authorisation
    B2 = 2  # vehicle plugged in, EVSE ready (PWM)
    C1 = 3  # vehicle ready, contactor open (no PWM)
    C2 = 4  # charging: contactor closed, energy delivering
    STOPPED = 5  # session stopped


def _u32(address: int, unit: str, meaning: str, *, writable: bool = False) -> Reg:
    return Reg(Table.HOLDING, address, Kind.U32, unit, writable, meaning, readable=not writable)


ABB = {
    "serial": Reg(Table.HOLDING, 0x4000, Kind.U64, "", False, "serial number (4 registers)"),
    "firmware": _u32(0x4004, "", "firmware version, one byte each: major, minor, patch, 0"),
    "max_current_ma": _u32(0x4006, "mA", "max rated current"),
    "error_code": _u32(0x4008, "", "error code; 0 = no error"),
    "socket_lock": _u32(0x400A, "", "socket lock state; 0x0101 and above: cable plugged, locked"),
    "state": _u32(0x400C, "", "charging state in byte 2 (AbbState)"),
    "current_limit_ma": _u32(0x400E, "mA", "charging current limit in force"),
    "current_l1_ma": _u32(0x4010, "mA", "L1 charging current"),
    "current_l2_ma": _u32(0x4012, "mA", "L2 charging current"),
    "current_l3_ma": _u32(0x4014, "mA", "L3 charging current"),
    "voltage_l1_dv": _u32(0x4016, "0.1 V", "L1 voltage"),
    "voltage_l2_dv": _u32(0x4018, "0.1 V", "L2 voltage"),
    "voltage_l3_dv": _u32(0x401A, "0.1 V", "L3 voltage"),
    "power_w": _u32(0x401C, "W", "active power"),
    "session_wh": _u32(0x401E, "Wh", "energy delivered in the charging session"),
    # Write-only: the current limit to charge with; 0 stops charging.
    "set_current_ma": _u32(0x4100, "mA", "set the charging current limit; 0 = stop", writable=True),
}

# 0x400C holds the state as its third byte: the four bytes of the pair, high word first, are
# b0 b1 b2 b3, and the state is b2 & 0x7F, the high byte of the second register (0x400D).
STATE_BYTE = 2
STATE_MASK = 0x7F
# A plugged, locked cable shows 0x0101 or more in 0x400A (how evcc tells a stopped session's
# vehicle, still plugged in, from an empty socket).
SOCKET_LOCKED = 0x0101

# One FC03 read of 0x4008..0x401F (24 registers, no gap in the map) gives a whole poll:
# error code, socket lock, state, current limit, currents, voltages, power and session energy.
STATUS_START = 0x4008
STATUS_COUNT = 0x4020 - STATUS_START

CAPABILITIES = Capabilities(
    energy_limit=False, watchdog=False, metering=Metering.OWN_OR_SEPARATE, setpoint_unit="mA"
)

KIND = PileKind(
    name=NAME,
    aliases=ALIASES,
    title="ABB Terra AC",
    keys={"phases": 3, "meter_unit": None, "meter": METER_NAMES[MeterModel.SDM630]},
    default_unit=DEFAULT_UNIT,
    transports=frozenset({"rtu", "tcp"}),
    capabilities=CAPABILITIES,
    timing=Timing(),
    registers=ABB,
    driver="drivers.abb_terra_ac",
)
