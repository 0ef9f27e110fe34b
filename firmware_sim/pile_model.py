"""Physics of one simulated pile and its meter, stepped by an injected clock (no I/O, no Modbus).

Time is an integer tick count (ticks_per_s ticks a second) and energy an integer count of
watt-ticks (1/ticks_per_s joule), so a pile of P watts adds exactly P to its meter every tick and
a session stops exactly at its energy limit, not one step later. The replay, the in-process `sim`
link and the Modbus simulator all step this one model.
"""

from __future__ import annotations

from enum import StrEnum


class PileStatus(StrEnum):
    """The pile's state, after IEC 61851's control-pilot states."""

    NO_VEHICLE = "no_vehicle"  # state A
    CONNECTED = "connected"  # state B: plugged in, not charging
    CHARGING = "charging"  # state C
    FINISHED = "finished"  # session reached its energy limit; vehicle still plugged in
    FAULT = "fault"


class PileModel:
    """A pile that draws its power (rated, or a lower setpoint) while enabled and plugged in."""

    def __init__(self, power_w: int, ticks_per_s: int, now_tick: int = 0, meter: int = 0) -> None:
        if power_w <= 0:
            raise ValueError("power_w must be positive")
        self.rated_power_w = power_w
        self.setpoint_w = power_w
        self.ticks_per_s = ticks_per_s
        self.meter = meter  # cumulative energy, watt-ticks; never goes backwards
        self.vehicle_connected = False
        self.enabled = False
        self.fault_code = 0
        self.session_energy = 0
        self.limit: int | None = None
        self.finished_tick: int | None = None
        self._tick = now_tick

    # -- reading -----------------------------------------------------------------------------
    @property
    def now_tick(self) -> int:
        return self._tick

    @property
    def status(self) -> PileStatus:
        if self.fault_code:
            return PileStatus.FAULT
        if not self.vehicle_connected:
            return PileStatus.NO_VEHICLE
        if self.finished_tick is not None:
            return PileStatus.FINISHED
        if self.enabled and self.power_w > 0:
            return PileStatus.CHARGING
        return PileStatus.CONNECTED

    @property
    def power_w(self) -> int:
        """Power drawn now."""
        drawing = (
            self.enabled
            and self.vehicle_connected
            and not self.fault_code
            and self.finished_tick is None
        )
        return min(self.setpoint_w, self.rated_power_w) if drawing else 0

    @property
    def meter_wh(self) -> int:
        return self.meter // (3600 * self.ticks_per_s)

    def finish_tick(self) -> int | None:
        """When the running session reaches its energy limit at the present power, if it will."""
        power = self.power_w
        if self.limit is None or power == 0:
            return None
        return self._tick + -(-(self.limit - self.session_energy) // power)

    # -- stepping ----------------------------------------------------------------------------
    def advance(self, now_tick: int) -> None:
        """Integrate the meter up to now_tick; stop at the session's limit if it is reached."""
        if now_tick < self._tick:
            raise ValueError(f"time went back: {now_tick} < {self._tick}")
        power = self.power_w
        if power:
            energy = power * (now_tick - self._tick)
            if self.limit is not None and self.session_energy + energy >= self.limit:
                finish = self.finish_tick()
                energy = self.limit - self.session_energy
                self.finished_tick = finish
            self.meter += energy
            self.session_energy += energy
        self._tick = now_tick

    # -- commands ----------------------------------------------------------------------------
    def plug_in(self, now_tick: int) -> None:
        self.advance(now_tick)
        self.vehicle_connected = True

    def unplug(self, now_tick: int) -> None:
        self.advance(now_tick)
        self.vehicle_connected = False
        self.enabled = False
        self.finished_tick = None

    def start_session(self, now_tick: int, limit: int | None, plug_in: bool = True) -> None:
        """Enable charging with a fresh session energy count and an optional energy limit."""
        self.advance(now_tick)
        if plug_in:
            self.vehicle_connected = True
        self.enabled = True
        self.session_energy = 0
        self.limit = limit
        self.finished_tick = None
        if limit is not None and limit <= 0:
            self.finished_tick = now_tick

    def stop_session(self, now_tick: int) -> int:
        """Disable charging; returns the energy the session delivered."""
        self.advance(now_tick)
        self.enabled = False
        return self.session_energy

    def set_fault(self, now_tick: int, code: int) -> None:
        if code <= 0:
            raise ValueError("a fault code is a positive number")
        self.advance(now_tick)
        self.fault_code = code
        self.enabled = False

    def clear_fault(self, now_tick: int) -> None:
        self.advance(now_tick)
        self.fault_code = 0
