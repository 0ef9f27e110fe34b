"""KEBA KeContact P30 c/x-series wallbox (hardware notes 4b; evcc's `charger/keba-modbus.go`): its
registry entry and its register map. Modbus TCP, unit id 255. Values to read are 32-bit
big-endian holding register pairs (FC03); settings are written one 16-bit register at a time
(FC06). Reads are at most 2 registers (one value) and want at least 0.5 s between requests (a
lower-confidence note: see its Timing)."""

from __future__ import annotations

from enum import IntEnum

from drivers.device_kind import Capabilities, Metering, PileKind, Timing
from drivers.registers import Kind, Reg, Table

NAME = "keba-p30"
ALIASES: tuple[str, ...] = ()
DEFAULT_UNIT = 255  # valid over Modbus TCP, where the RTU range 1..247 does not apply
MAX_READ_COUNT = 2  # registers in one read: one 32-bit value
PAUSE_S = 0.5  # between requests


class KebaState(IntEnum):
    """Register 1000, the charging state."""

    STARTUP = 0
    NOT_READY = 1  # no vehicle, or locked by authorisation
    READY = 2  # ready, waiting for the vehicle to draw
    CHARGING = 3
    ERROR = 4
    INTERRUPTED = 5  # suspended: disabled, no current, or too hot


CABLE_EV_BIT = 1 << 2  # register 1004, bit 2: the cable is plugged in at the vehicle too
CABLE_PLUGGED_LOCKED = 7  # plugged at both ends and locked
ENERGY_PER_WH = 10  # register 1036 counts 0.1 Wh (P40 firmware before 1.2.1: Wh)
POWER_PER_W = 1000  # register 1020 counts mW


def _u32(address: int, unit: str, meaning: str) -> Reg:
    return Reg(Table.HOLDING, address, Kind.U32, unit, False, meaning)


def _set(address: int, unit: str, meaning: str) -> Reg:
    # The settings are 16-bit registers written with FC06 and not read back.
    return Reg(Table.HOLDING, address, Kind.U16, unit, True, meaning, readable=False)


KEBA = {
    "state": _u32(1000, "", "charging state (KebaState)"),
    "cable": _u32(1004, "", "cable state: bit 2 = plugged in at the vehicle; 7 = plugged, locked"),
    "current_l1_ma": _u32(1008, "mA", "L1 current"),
    "current_l2_ma": _u32(1010, "mA", "L2 current"),
    "current_l3_ma": _u32(1012, "mA", "L3 current"),
    "power_mw": _u32(1020, "mW", "active power"),
    "energy_dwh": _u32(1036, "0.1 Wh", "total energy"),
    "voltage_l1_v": _u32(1040, "V", "L1 voltage"),
    "voltage_l2_v": _u32(1042, "V", "L2 voltage"),
    "voltage_l3_v": _u32(1044, "V", "L3 voltage"),
    "session_dwh": _u32(1502, "0.1 Wh", "energy of the running (or last) session"),
    "failsafe_timeout_s": _u32(1602, "s", "fail-safe timeout in force"),
    "set_current_ma": _set(5004, "mA", "maximum charging current"),
    "set_enable": _set(5014, "", "1 = enable charging, 0 = disable"),
    "set_failsafe_timeout_s": _set(5018, "s", "fail-safe timeout; every write feeds it"),
}

CAPABILITIES = Capabilities(
    energy_limit=False, watchdog=True, metering=Metering.OWN, setpoint_unit="mA"
)

KIND = PileKind(
    name=NAME,
    aliases=ALIASES,
    title="KEBA KeContact P30",
    keys={"phases": 3, "watchdog_s": 10},
    default_unit=DEFAULT_UNIT,
    transports=frozenset({"tcp"}),
    capabilities=CAPABILITIES,
    timing=Timing(pause_s=PAUSE_S),
    registers=KEBA,
    driver="drivers.keba_p30",
)
