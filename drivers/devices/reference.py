"""The station's reference pile: its registry entry and its own register map (docs/registers.md
§1). Unit id by configuration, default 1."""

from __future__ import annotations

from enum import IntEnum

from drivers.device_kind import Capabilities, Metering, PileKind, Timing
from drivers.registers import Kind, Reg, Table

NAME = "reference"  # the configuration's `profile` and pile-sim's spec
ALIASES = ("ref",)


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

CAPABILITIES = Capabilities(
    energy_limit=True, watchdog=True, metering=Metering.OWN, setpoint_unit="W"
)

KIND = PileKind(
    name=NAME,
    aliases=ALIASES,
    title="reference pile (the station's own map)",
    keys={"watchdog_s": REF_DEFAULT_WATCHDOG_S},
    default_unit=1,
    transports=frozenset({"tcp", "rtu"}),
    capabilities=CAPABILITIES,
    timing=Timing(),
    registers=REF,
    driver="drivers.reference",
)
