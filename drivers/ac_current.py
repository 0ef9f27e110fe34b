"""A power setpoint as a current-controlled pile's current in mA, rounded down so that a share
is never exceeded (DESIGN, "Site power"), and back."""

from __future__ import annotations

from drivers.devices.ac import MIN_CURRENT_A, PHASE_VOLTS, PHASES


def rated_current_ma(name: str, rated_power_w: int, phases: int) -> int:
    """The largest current in mA within the rated power (never above it); ValueError, naming
    the pile, for phases other than 1 or 3 or a power below the 6 A minimum."""
    if phases not in PHASES:
        raise ValueError(f"{name}: phases must be 1 or 3")
    current_ma = rated_power_w * 1000 // (PHASE_VOLTS * phases)
    if current_ma < MIN_CURRENT_A * 1000:
        raise ValueError(
            f"{name}: {rated_power_w} W on {phases} phase(s) is below the "
            f"{MIN_CURRENT_A} A a pile needs to charge at all"
        )
    return current_ma


def setpoint_current_ma(setpoint_w: int, phases: int, max_current_ma: int) -> int:
    """setpoint_w / (phases x 230 V) in mA, rounded down and at most max_current_ma; 0 (stop)
    below the 6 A the control pilot can signal (IEC 61851)."""
    current_ma = min(max_current_ma, setpoint_w * 1000 // (PHASE_VOLTS * phases))
    return current_ma if current_ma >= MIN_CURRENT_A * 1000 else 0


def current_watts(current_ma: int, phases: int) -> int:
    """The power of current_ma on every phase, in whole W (rounded down)."""
    return current_ma * PHASE_VOLTS * phases // 1000
