"""Facts of AC charging that every current-controlled device's map shares (IEC 61851)."""

from __future__ import annotations

PHASE_VOLTS = 230  # nominal voltage of one phase: power = current x 230 V x phases
MIN_CURRENT_A = 6  # below 6 A the control pilot cannot signal charging
PHASES = (1, 3)  # single-phase or three-phase piles
