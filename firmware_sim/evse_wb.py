"""The EVSE-WB-DIN charge controller (drivers.devices.evse_wb, hardware notes 4b) on a PileModel.

HR 1000 is the current setpoint in A: 0 disables (the session stops), a current from the
minimum (HR 2002, default 6 A) up to the rated current enables charging at amps x 230 V x
phases. It reads back the current the EVSE is enabled with, so it falls to 0 when the EVSE is
disabled by a fault or when the vehicle leaves, and the controller must write it again.
There is no energy limit and no watchdog: the controller stops the pile itself.
"""

from __future__ import annotations

from drivers.devices.evse_wb import (
    EVSE,
    EVSE_MIN_CURRENT_A,
    EVSE_VOLTS,
    NAME,
    EvseVehicleState,
    evse_rated_current_a,
)
from drivers.registers import Table
from firmware_sim.modbus_pdu import ExceptionCode, ModbusError
from firmware_sim.pile_model import PileModel, PileStatus
from firmware_sim.register_file import AcPileDevice, Value

EVSE_FIRMWARE = 17  # HR 1005; firmware 17 is the first with 0.01 A steps, which stay off here
EVSE_CABLE_LIMIT_A = 32  # HR 1003 while a vehicle (and so a cable) is connected

# HR 1006
EVSE_STATE_STEADY_12V = 1
EVSE_STATE_PWM = 2
EVSE_STATE_OFF = 3

_VEHICLE_STATES = {
    PileStatus.NO_VEHICLE: EvseVehicleState.NOT_CONNECTED,
    PileStatus.CONNECTED: EvseVehicleState.CONNECTED,
    PileStatus.CHARGING: EvseVehicleState.CHARGING,
    PileStatus.FINISHED: EvseVehicleState.CONNECTED,  # never: no energy limit on this EVSE
    PileStatus.FAULT: EvseVehicleState.FAILURE,
}


class EvseWbDevice(AcPileDevice):
    profile = NAME
    reports_energy = False  # its energy is counted by its separate meter
    apply_last = frozenset({"current_a"})

    def __init__(
        self,
        unit: int,
        model: PileModel,
        *,
        phases: int = 3,
        auto_plug: bool = True,
        meter_unit: int | None = None,
    ) -> None:
        super().__init__(unit, EVSE, model, phases=phases, auto_plug=auto_plug)
        self.meter_unit = meter_unit
        self.max_current_a = evse_rated_current_a(model.rated_power_w, phases)
        self.min_current_a = EVSE_MIN_CURRENT_A
        self.amps = 0  # the current last enabled with
        self.turn_off = 0  # stored only: the simulator gives the turn-off bit no effect

    def step(self, now_tick: int) -> None:
        self.model.advance(now_tick)

    @property
    def current_a(self) -> int:
        return self.amps if self.model.enabled else 0

    def values(self, table: Table) -> dict[str, Value]:
        if table is not Table.HOLDING:
            return {}
        m = self.model
        if m.fault_code:
            evse_state = EVSE_STATE_OFF
        elif m.enabled:
            evse_state = EVSE_STATE_PWM
        else:
            evse_state = EVSE_STATE_STEADY_12V
        return {
            "current_a": self.current_a,
            "actual_current_a": round(m.power_w / (EVSE_VOLTS * self.phases)),
            "vehicle_state": _VEHICLE_STATES[m.status],
            "pp_limit_a": EVSE_CABLE_LIMIT_A if m.vehicle_connected else 0,
            "turn_off": self.turn_off,
            "firmware": EVSE_FIRMWARE,
            "evse_state": evse_state,
            "rcd_status": 0,
            "min_current_a": self.min_current_a,
        }

    def check(self, name: str, value: int) -> None:
        if name == "current_a":
            if value and not self.min_current_a <= value <= self.max_current_a:
                raise ModbusError(
                    ExceptionCode.ILLEGAL_DATA_VALUE,
                    f"current {value} A: 0 or {self.min_current_a}..{self.max_current_a} A",
                )
            if value and not self.model.enabled and self.model.fault_code:
                raise ModbusError(
                    ExceptionCode.DEVICE_FAILURE,
                    f"unit {self.unit} is in failure: cannot enable charging",
                )
        elif name == "min_current_a":
            if not EVSE_MIN_CURRENT_A <= value <= self.max_current_a:
                raise ModbusError(
                    ExceptionCode.ILLEGAL_DATA_VALUE,
                    f"minimum current {value} A: {EVSE_MIN_CURRENT_A}..{self.max_current_a} A",
                )
        elif name == "turn_off" and value not in (0, 1):
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, f"turn-off bit {value}: 0 or 1")

    def apply(self, name: str, value: int) -> None:
        m = self.model
        if name == "min_current_a":
            self.min_current_a = value
        elif name == "turn_off":
            self.turn_off = value
        elif name == "current_a":
            if value == 0:
                if m.enabled:
                    m.stop_session(m.now_tick)
                self.amps = 0
                return
            m.setpoint_w = value * EVSE_VOLTS * self.phases
            if not m.enabled:  # disabled -> enabled starts a session; a new current does not
                m.start_session(m.now_tick, None, plug_in=self.auto_plug)
            self.amps = value

    def snapshot(self) -> dict[str, object]:
        m = self.model
        return {
            "unit": self.unit,
            "profile": self.profile,
            "state": m.status.value,
            "power_w": m.power_w,
            "meter_wh": m.meter_wh,
            "session_wh": m.session_energy // (3600 * m.ticks_per_s),
            "rated_power_w": m.rated_power_w,
            "phases": self.phases,
            "current_a": self.current_a,
            "max_current_a": self.max_current_a,
            "vehicle_connected": m.vehicle_connected,
            "fault_code": m.fault_code,
            "meter_unit": self.meter_unit,
            "auto_plug": self.auto_plug,
        }
