"""The `sim` link: a pile and its meter as the simulator's pile model, in process, no wire.

The same Pile and Meter contracts as the Modbus drivers (drivers.contracts), so the control loop
cannot tell; the physics is the simulator's one pile model, stepped by the station's clock. It
lives with the simulator, so that the drivers never reach into it.
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.contracts import DeviceState, DeviceStatus
from drivers.errors import NotSupported
from firmware_sim.clock import TICKS_PER_S, WH_TICKS
from firmware_sim.pile_model import PileModel
from firmware_sim.pile_model import PileStatus as ModelStatus

_STATES = {
    ModelStatus.NO_VEHICLE: DeviceState.NO_VEHICLE,
    ModelStatus.CONNECTED: DeviceState.CONNECTED,
    ModelStatus.CHARGING: DeviceState.CHARGING,
    ModelStatus.FINISHED: DeviceState.FINISHED,
    ModelStatus.FAULT: DeviceState.FAULT,
}


class SimPile:
    """A simulated pile whose vehicle plugs in when a session starts. It is its own meter."""

    has_energy_limit = True
    has_watchdog = False  # it lives and dies with the station's process

    def __init__(self, name: str, rated_power_w: int, clock: Callable[[], float]) -> None:
        self.name = name
        self.rated_power_w = rated_power_w
        self._clock = clock
        self.model = PileModel(rated_power_w, TICKS_PER_S, now_tick=self._tick())

    def _tick(self) -> int:
        return round(self._clock() * TICKS_PER_S)

    def _step(self) -> PileModel:
        self.model.advance(max(self._tick(), self.model.now_tick))
        return self.model

    async def read_status(self) -> DeviceStatus:
        model = self._step()
        return DeviceStatus(
            _STATES[model.status],
            model.fault_code,
            model.power_w,
            model.setpoint_w if model.enabled else 0,
            model.meter_wh,
        )

    async def enable(self, setpoint_w: int, limit_wh: int | None = None) -> None:
        model = self._step()
        model.setpoint_w = min(setpoint_w, self.rated_power_w)
        if model.status is not ModelStatus.CHARGING:
            model.start_session(model.now_tick, None if limit_wh is None else limit_wh * WH_TICKS)

    async def stop(self) -> None:
        model = self._step()
        model.stop_session(model.now_tick)

    async def heartbeat(self) -> None:
        raise NotSupported(f"{self.name}: a simulated pile in process has no watchdog")

    async def set_watchdog(self, timeout_s: int) -> None:
        raise NotSupported(f"{self.name}: a simulated pile in process has no watchdog")

    async def read_energy_wh(self) -> int:
        return self._step().meter_wh

    async def read_power_w(self) -> int:
        return self._step().power_w
