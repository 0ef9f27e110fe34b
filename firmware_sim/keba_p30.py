"""The KEBA KeContact P30 wallbox (map drivers.devices.keba_p30, hardware notes 4b) on a PileModel.

Reads are FC03 of one 32-bit value (2 registers, high word first): a read of more, or one that
splits a value, is refused (exception 02 or 03). Settings are 16-bit registers written with FC06
only (FC16 answers exception 01) and cannot be read back (exception 02).

It charges while enabled (5014 = 1), with a maximum current (5004, mA) of at least 6 A, a vehicle
plugged in, and its fail-safe not tripped; the current it starts with is the rated power's,
rounded down to the mA. Enabling starts a new session (1502 counts from 0); disabling, a current
of 0 or a tripped fail-safe suspends it (state 5). The fail-safe: with a timeout (5018, s; 0 =
off) every write of 5018 feeds it; a session that goes that long without one falls back to the
fail-safe current, simulated as 0 A, at exactly that deadline. The station's next write of 5004
or 5014 lifts it; only a write of 5018 feeds it again. Energy 1036 counts 0.1 Wh (floor), power
1020 mW; the other documented registers (1500 RFID, 1550/1552 phases, 5052) are not simulated:
exception 02.
"""

from __future__ import annotations

import logging

from drivers.devices.ac import MIN_CURRENT_A, PHASE_VOLTS
from drivers.devices.keba_p30 import (
    CABLE_PLUGGED_LOCKED,
    KEBA,
    MAX_READ_COUNT,
    NAME,
    KebaState,
)
from drivers.registers import Table
from firmware_sim.clock import TICKS_PER_S, WH_TICKS
from firmware_sim.faults import UnitFaults
from firmware_sim.modbus_pdu import ExceptionCode, FunctionCode, ModbusError
from firmware_sim.pile_model import PileModel
from firmware_sim.register_file import AcPileDevice, Value

log = logging.getLogger(__name__)

U32_ALL_ONES = (1 << 32) - 1  # what a garbage energy count shows
TENTH_WH_TICKS = WH_TICKS // 10  # watt-ticks in 0.1 Wh
MAX_CURRENT_MA = 0xFFFF  # 5004 is one 16-bit register


class KebaP30Device(AcPileDevice):
    profile = NAME
    functions = frozenset({FunctionCode.READ_HOLDING, FunctionCode.WRITE_SINGLE})
    max_read_count = MAX_READ_COUNT
    whole_values = True

    def __init__(
        self,
        unit: int,
        model: PileModel,
        faults: UnitFaults,
        *,
        phases: int = 3,
        auto_plug: bool = True,
        failsafe_s: int = 0,
    ) -> None:
        super().__init__(unit, KEBA, model, phases=phases, auto_plug=auto_plug)
        self.faults = faults
        rated_ma = model.rated_power_w * 1000 // (PHASE_VOLTS * phases)
        if rated_ma < MIN_CURRENT_A * 1000:
            raise ValueError(f"unit {unit}: {model.rated_power_w} W is below 6 A on {phases}")
        self.max_current_ma = min(MAX_CURRENT_MA, rated_ma)
        self.current_ma = self.max_current_ma  # 5004 as it starts: the most it may deliver
        self.enabled = False  # 5014
        self.failsafe_s = failsafe_s  # 5018 / 1602
        self.fed_tick = model.now_tick  # the last write of 5018
        self.tripped = False  # the fail-safe fell back to 0 A
        self.tripped_tick: int | None = None

    # -- physics ----------------------------------------------------------------------------
    def runs(self) -> bool:
        """Whether it lets the vehicle charge now."""
        return self.enabled and self.current_ma >= MIN_CURRENT_A * 1000 and not self.tripped

    def _follow(self) -> None:
        """Bring the physics in line with the settings: start, suspend, or a new current."""
        m = self.model
        if self.runs():
            m.setpoint_w = self.current_ma * PHASE_VOLTS * self.phases // 1000
            if not m.enabled:
                m.start_session(m.now_tick, None, plug_in=self.auto_plug)
        elif m.enabled:
            m.stop_session(m.now_tick)

    def step(self, now_tick: int) -> None:
        """Bring the physics to now_tick, falling back at the fail-safe's deadline on the way."""
        m = self.model
        if self.failsafe_s and m.enabled and not self.tripped:
            deadline = self.fed_tick + self.failsafe_s * TICKS_PER_S
            if deadline <= now_tick:
                at = max(deadline, m.now_tick)
                m.advance(at)
                self.tripped, self.tripped_tick = True, at
                m.stop_session(at)
                log.info("unit %s: fail-safe tripped at %.3f s", self.unit, at / TICKS_PER_S)
        m.advance(now_tick)

    def state(self) -> KebaState:
        m = self.model
        if m.fault_code:
            return KebaState.ERROR
        if not m.vehicle_connected:
            return KebaState.NOT_READY
        if m.power_w:
            return KebaState.CHARGING
        return KebaState.READY if self.runs() else KebaState.INTERRUPTED

    def energy_dwh(self) -> int:
        """Register 1036: the counter in 0.1 Wh as the meter faults show it."""
        meter = self.faults.meter
        shown_wh = meter.reported_wh(self.model.meter, WH_TICKS)
        if shown_wh is None:
            return U32_ALL_ONES
        true_dwh = (self.model.meter - meter.zero) // TENTH_WH_TICKS
        # The tenths only where no fault changed what it shows.
        return true_dwh if true_dwh // 10 == shown_wh else shown_wh * 10

    # -- registers --------------------------------------------------------------------------
    def values(self, table: Table) -> dict[str, Value]:
        if table is not Table.HOLDING:
            return {}
        m = self.model
        phase_ma = m.power_w * 1000 // (PHASE_VOLTS * self.phases)
        on_l23 = self.phases == 3
        return {
            "state": int(self.state()),
            "cable": CABLE_PLUGGED_LOCKED if m.vehicle_connected else 0,
            "current_l1_ma": phase_ma,
            "current_l2_ma": phase_ma if on_l23 else 0,
            "current_l3_ma": phase_ma if on_l23 else 0,
            "power_mw": m.power_w * 1000,
            "energy_dwh": self.energy_dwh(),
            "voltage_l1_v": PHASE_VOLTS,
            "voltage_l2_v": PHASE_VOLTS,
            "voltage_l3_v": PHASE_VOLTS,
            "session_dwh": m.session_energy // TENTH_WH_TICKS,
            "failsafe_timeout_s": self.failsafe_s,
            "set_current_ma": self.current_ma,
            "set_enable": int(self.enabled),
            "set_failsafe_timeout_s": self.failsafe_s,
        }

    def check(self, name: str, value: int) -> None:
        if name == "set_current_ma":
            if value and not MIN_CURRENT_A * 1000 <= value <= self.max_current_ma:
                raise ModbusError(
                    ExceptionCode.ILLEGAL_DATA_VALUE,
                    f"current {value} mA: 0 or {MIN_CURRENT_A * 1000}..{self.max_current_ma} mA",
                )
        elif name == "set_enable":
            if value not in (0, 1):
                raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, f"enable {value}: 0 or 1")
            if value and self.model.fault_code:
                raise ModbusError(
                    ExceptionCode.DEVICE_FAILURE,
                    f"unit {self.unit} is in error {self.model.fault_code}: cannot enable",
                )

    def apply(self, name: str, value: int) -> None:
        if name == "set_failsafe_timeout_s":
            self.failsafe_s = value
            self.fed_tick = self.model.now_tick
            return
        if name == "set_current_ma":
            self.current_ma = value
        else:  # set_enable
            self.enabled = bool(value)
        self.tripped = False  # the station commands it again
        self._follow()

    def snapshot(self) -> dict[str, object]:
        m = self.model
        tripped_s = None if self.tripped_tick is None else self.tripped_tick / TICKS_PER_S
        return {
            "unit": self.unit,
            "profile": self.profile,
            "state": m.status.value,
            "keba_state": int(self.state()),
            "power_w": m.power_w,
            "meter_wh": m.meter_wh,
            "reported_meter_wh": self.faults.meter.reported_wh(m.meter, WH_TICKS),
            "session_wh": m.session_energy // WH_TICKS,
            "rated_power_w": m.rated_power_w,
            "phases": self.phases,
            "enabled": self.enabled,
            "current_ma": self.current_ma,
            "max_current_ma": self.max_current_ma,
            "failsafe_s": self.failsafe_s,
            "failsafe_tripped_s": tripped_s,
            "vehicle_connected": m.vehicle_connected,
            "fault_code": m.fault_code,
            "auto_plug": self.auto_plug,
        }
