"""The ABB Terra AC wallbox (map drivers.devices.abb_terra_ac, hardware notes 4b) on a PileModel.

Holding registers only, every value 32 bits with the high word first; FC03 reads and FC16
writes, nothing else (exception 01). 0x4100 (write-only) is the current limit in mA: 0 stops
the session, a current from 6 A up to the maximum (0x4006, the rated power's current rounded
down) charges at mA x 230 V x phases; writing one while stopped starts a new session, whose
energy 0x401E counts from 0. Other currents are refused (exception 03), as is a start while the
wallbox shows an error (exception 04).

The charging state sits in byte 2 of 0x400C's four bytes (b0 b1 b2 b3, high word first): the
high byte of the second register, 0x400D. Shown: 0 (A) without a vehicle, 1 (B1) plugged in
before a session, 4 (C2) while charging, 2 (B2) when enabled but not drawing, 5 once a session
was stopped with the vehicle still plugged in; 3 (C1) never. An injected pile fault shows as its
code in 0x4008 and disables charging. The map's other registers (0x4102 phases, 0x4105 start /
stop session) are not simulated: exception 02, as for any unknown address.
"""

from __future__ import annotations

from drivers.devices.abb_terra_ac import ABB, NAME, SOCKET_LOCKED, AbbState
from drivers.devices.ac import MIN_CURRENT_A, PHASE_VOLTS
from drivers.registers import Table
from firmware_sim.clock import WH_TICKS
from firmware_sim.modbus_pdu import ExceptionCode, FunctionCode, ModbusError
from firmware_sim.pile_model import PileModel
from firmware_sim.register_file import AcPileDevice, Value

ABB_SERIAL = 0x0000_4142_4200_0000  # "ABB" in the middle bytes: a plausible serial number
ABB_FIRMWARE = 0x01_06_05_00  # 1.6.5, the first with this map (one byte each)
VOLTAGE_DV = PHASE_VOLTS * 10  # 230.0 V in 0.1 V


class AbbTerraAcDevice(AcPileDevice):
    profile = NAME
    functions = frozenset({FunctionCode.READ_HOLDING, FunctionCode.WRITE_MULTIPLE})
    reports_energy = False  # only a session counter: meter faults are not simulated on it

    def __init__(
        self,
        unit: int,
        model: PileModel,
        *,
        phases: int = 3,
        auto_plug: bool = True,
        meter_unit: int | None = None,
    ) -> None:
        super().__init__(unit, ABB, model, phases=phases, auto_plug=auto_plug)
        self.meter_unit = meter_unit
        # The largest whole mA whose power stays within the rating.
        self.max_current_ma = model.rated_power_w * 1000 // (PHASE_VOLTS * phases)
        if self.max_current_ma < MIN_CURRENT_A * 1000:
            raise ValueError(f"unit {unit}: {model.rated_power_w} W is below 6 A on {phases}")
        self.current_ma = 0  # the limit last written to 0x4100
        self.stopped = False  # a session was stopped and the vehicle is still plugged in

    def step(self, now_tick: int) -> None:
        self.model.advance(now_tick)
        if not self.model.vehicle_connected:
            self.stopped = False  # a vehicle that plugs in next starts from B1

    def state(self) -> AbbState:
        m = self.model
        if not m.vehicle_connected:
            return AbbState.IDLE
        if m.power_w:
            return AbbState.C2
        if m.enabled and not m.fault_code:
            return AbbState.B2
        return AbbState.STOPPED if self.stopped else AbbState.B1

    def values(self, table: Table) -> dict[str, Value]:
        if table is not Table.HOLDING:
            return {}
        m = self.model
        phase_ma = m.power_w * 1000 // (PHASE_VOLTS * self.phases)
        on_l23 = self.phases == 3
        return {
            "serial": ABB_SERIAL + self.unit,
            "firmware": ABB_FIRMWARE,
            "max_current_ma": self.max_current_ma,
            "error_code": m.fault_code,
            "socket_lock": SOCKET_LOCKED if m.vehicle_connected else 0,
            "state": int(self.state()) << 8,  # byte 2 of b0 b1 b2 b3: bits 15..8 of the low word
            "current_limit_ma": self.current_ma if m.enabled else 0,
            "current_l1_ma": phase_ma,
            "current_l2_ma": phase_ma if on_l23 else 0,
            "current_l3_ma": phase_ma if on_l23 else 0,
            "voltage_l1_dv": VOLTAGE_DV,
            "voltage_l2_dv": VOLTAGE_DV,
            "voltage_l3_dv": VOLTAGE_DV,
            "power_w": m.power_w,
            "session_wh": m.session_energy // WH_TICKS,
            "set_current_ma": self.current_ma,  # write-only: kept for partial writes
        }

    def check(self, name: str, value: int) -> None:
        if name != "set_current_ma" or value == 0:
            return
        if not MIN_CURRENT_A * 1000 <= value <= self.max_current_ma:
            raise ModbusError(
                ExceptionCode.ILLEGAL_DATA_VALUE,
                f"current {value} mA: 0 or {MIN_CURRENT_A * 1000}..{self.max_current_ma} mA",
            )
        if not self.model.enabled and self.model.fault_code:
            raise ModbusError(
                ExceptionCode.DEVICE_FAILURE,
                f"unit {self.unit} shows error {self.model.fault_code}: cannot start a session",
            )

    def apply(self, name: str, value: int) -> None:
        m = self.model
        self.current_ma = value
        if value == 0:
            if m.enabled:
                m.stop_session(m.now_tick)
            self.stopped = m.vehicle_connected
            return
        m.setpoint_w = value * PHASE_VOLTS * self.phases // 1000
        if not m.enabled:  # stopped -> a current starts a new session; a new current does not
            m.start_session(m.now_tick, None, plug_in=self.auto_plug)
            self.stopped = False

    def snapshot(self) -> dict[str, object]:
        m = self.model
        return {
            "unit": self.unit,
            "profile": self.profile,
            "state": m.status.value,
            "abb_state": int(self.state()),
            "power_w": m.power_w,
            "meter_wh": m.meter_wh,
            "session_wh": m.session_energy // WH_TICKS,
            "rated_power_w": m.rated_power_w,
            "phases": self.phases,
            "current_ma": self.current_ma if m.enabled else 0,
            "max_current_ma": self.max_current_ma,
            "vehicle_connected": m.vehicle_connected,
            "fault_code": m.fault_code,
            "meter_unit": self.meter_unit,
            "auto_plug": self.auto_plug,
        }
