"""The station's reference pile (drivers.devices.reference, docs/registers.md §1) on a PileModel.

Sessions: `enable` reads 1 while a session is enabled and not over (charging, or waiting for
the vehicle). The pile drops it to 0 by itself when the session reaches its limit (state 3,
finished), when the watchdog expires (state 1, connected), on a fault (state 4) and when the
vehicle leaves (state 0). Writing 1 while it reads 0 starts a new session; writing 1 while it
reads 1 changes nothing; writing 0 stops the session.

Watchdog: while a session is enabled and not over, a heartbeat write must come at least every
`watchdog_s` seconds of simulated time (counted from the later of the last heartbeat and the
session's start; 0 = no watchdog). Otherwise the pile stops the session at exactly that
deadline, computed when the physics is stepped, not at the next poll. Afterwards it shows state
1 (connected, not charging), enable 0, power 0, and session_wh holds what the session delivered
up to the deadline; the controller that comes back starts a new session by writing enable 1.
"""

from __future__ import annotations

import logging

from drivers.devices.reference import (
    NAME,
    REF,
    REF_DEFAULT_WATCHDOG_S,
    REF_MAGIC,
    REF_MAP_VERSION,
    RefState,
)
from drivers.registers import Table
from firmware_sim.clock import TICKS_PER_S, WH_TICKS
from firmware_sim.faults import UnitFaults
from firmware_sim.modbus_pdu import ExceptionCode, ModbusError
from firmware_sim.pile_model import PileModel, PileStatus
from firmware_sim.register_file import MappedDevice, Value

log = logging.getLogger(__name__)

U64_ALL_ONES = (1 << 64) - 1  # what a garbage meter_wh shows

_STATES = {
    PileStatus.NO_VEHICLE: RefState.NO_VEHICLE,
    PileStatus.CONNECTED: RefState.CONNECTED,
    PileStatus.CHARGING: RefState.CHARGING,
    PileStatus.FINISHED: RefState.FINISHED,
    PileStatus.FAULT: RefState.FAULT,
}


class ReferencePileDevice(MappedDevice):
    profile = NAME
    apply_last = frozenset({"enable"})

    def __init__(
        self,
        unit: int,
        model: PileModel,
        faults: UnitFaults,
        *,
        auto_plug: bool = True,
        watchdog_s: int = REF_DEFAULT_WATCHDOG_S,
    ) -> None:
        super().__init__(unit, REF)
        self.model = model
        self.faults = faults
        self.auto_plug = auto_plug
        self.limit_wh = 0
        self.heartbeat = 0
        self.watchdog_s = watchdog_s
        self.fed_tick = model.now_tick  # last heartbeat write or session start
        self.watchdog_tick: int | None = None  # when the watchdog last stopped a session

    # -- physics ----------------------------------------------------------------------------
    @property
    def session_open(self) -> bool:
        """A session is enabled and not over: what `enable` shows and the watchdog guards."""
        m = self.model
        return m.enabled and m.finished_tick is None and not m.fault_code

    def watchdog_deadline(self) -> int | None:
        if not self.watchdog_s or not self.session_open:
            return None
        return self.fed_tick + self.watchdog_s * TICKS_PER_S

    def step(self, now_tick: int) -> None:
        """Bring the physics to now_tick, stopping at the watchdog's deadline on the way."""
        deadline = self.watchdog_deadline()
        if deadline is not None and deadline <= now_tick:
            # A deadline already behind the physics (watchdog_s was shortened later) acts now.
            at = max(deadline, self.model.now_tick)
            self.model.advance(at)
            if self.session_open:  # the energy limit may have ended the session first
                self.model.stop_session(at)
                self.watchdog_tick = at
                log.info("unit %s: watchdog stopped the session at %.3f s", self.unit, at / 1000)
        self.model.advance(now_tick)

    def reported_meter_wh(self) -> int | None:
        return self.faults.meter.reported_wh(self.model.meter, WH_TICKS)

    # -- registers --------------------------------------------------------------------------
    def values(self, table: Table) -> dict[str, Value]:
        m = self.model
        if table is Table.INPUT:
            meter_wh = self.reported_meter_wh()
            return {
                "magic": REF_MAGIC,
                "map_version": REF_MAP_VERSION,
                "rated_power_w": m.rated_power_w,
                "state": _STATES[m.status],
                "fault_code": m.fault_code,
                "power_w": m.power_w,
                "meter_wh": U64_ALL_ONES if meter_wh is None else meter_wh,
                "session_wh": m.session_energy // WH_TICKS,
            }
        return {
            "enable": int(self.session_open),
            "setpoint_w": m.setpoint_w,
            "limit_wh": self.limit_wh,
            "heartbeat": self.heartbeat,
            "watchdog_s": self.watchdog_s,
        }

    def check(self, name: str, value: int) -> None:
        if name != "enable":
            return  # every uint16/uint32 value of the other registers is meaningful
        if value not in (0, 1):
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, f"enable must be 0 or 1: {value}")
        if value == 1 and not self.session_open and self.model.fault_code:
            raise ModbusError(
                ExceptionCode.DEVICE_FAILURE,
                f"unit {self.unit} is in fault {self.model.fault_code}: cannot start a session",
            )

    def apply(self, name: str, value: int) -> None:
        m = self.model
        now = m.now_tick
        if name == "setpoint_w":
            m.setpoint_w = value  # PileModel caps it at the rated power
        elif name == "limit_wh":
            self.limit_wh = value
            if self.session_open:  # a new limit also applies to the running session
                m.limit = value * WH_TICKS if value else None
                if m.limit is not None and m.session_energy >= m.limit:
                    m.finished_tick = now  # already there: the session is over now
        elif name == "heartbeat":
            self.heartbeat = value
            self.fed_tick = now
        elif name == "watchdog_s":
            self.watchdog_s = value
        elif name == "enable":
            if value and not self.session_open:
                limit = self.limit_wh * WH_TICKS if self.limit_wh else None
                m.start_session(now, limit, plug_in=self.auto_plug)
                self.fed_tick = now  # a new session gets a whole watchdog period
            elif not value and m.enabled:
                m.stop_session(now)

    def snapshot(self) -> dict[str, object]:
        m = self.model
        return {
            "unit": self.unit,
            "profile": self.profile,
            "state": m.status.value,
            "power_w": m.power_w,
            "meter_wh": m.meter_wh,
            "reported_meter_wh": self.reported_meter_wh(),
            "session_wh": m.session_energy // WH_TICKS,
            "rated_power_w": m.rated_power_w,
            "setpoint_w": m.setpoint_w,
            "limit_wh": self.limit_wh,
            "enable": int(self.session_open),
            "vehicle_connected": m.vehicle_connected,
            "fault_code": m.fault_code,
            "watchdog_s": self.watchdog_s,
            "watchdog_stopped_s": None if self.watchdog_tick is None else self.watchdog_tick / 1000,
            "auto_plug": self.auto_plug,
        }
