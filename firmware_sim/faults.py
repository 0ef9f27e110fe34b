"""Injected faults: their kinds and parameters, and what a faulty meter reports.

Faults are per unit. Link faults (silent, exception, delay) act on the unit's answers, whatever
its profile; `pile_fault` acts on a pile's physics; meter faults change only what the unit's
energy registers report, never the physics' own counter, so clearing them shows the true
counter again (except `meter_reset`, see MeterFaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from firmware_sim.modbus_pdu import ExceptionCode


class FaultKind(StrEnum):
    PILE_FAULT = "pile_fault"  # code: the pile reports a fault with this code and stops
    SILENT = "silent"  # the unit stops answering
    EXCEPTION = "exception"  # code: every request gets this Modbus exception
    DELAY = "delay"  # ms: every answer goes out this much later
    METER_FROZEN = "meter_frozen"  # the energy registers keep the value they had
    METER_BACKWARDS = "meter_backwards"  # wh: the reported counter goes back by this much
    METER_RESET = "meter_reset"  # the reported counter restarts from 0 (a pile reboot)
    METER_GARBAGE = "meter_garbage"  # all ones (integer counter) or NaN (float counter)


METER_KINDS = frozenset(
    {
        FaultKind.METER_FROZEN,
        FaultKind.METER_BACKWARDS,
        FaultKind.METER_RESET,
        FaultKind.METER_GARBAGE,
    }
)

MAX_DELAY_MS = 60_000
# Each kind's parameters, with the inclusive range a value must lie in.
PARAMETERS: dict[FaultKind, dict[str, tuple[int, int]]] = {
    FaultKind.PILE_FAULT: {"code": (1, 0xFFFF)},  # the REF fault_code register is a uint16
    FaultKind.SILENT: {},
    FaultKind.EXCEPTION: {"code": (1, 0xFF)},
    FaultKind.DELAY: {"ms": (1, MAX_DELAY_MS)},
    FaultKind.METER_FROZEN: {},
    FaultKind.METER_BACKWARDS: {"wh": (1, (1 << 63) - 1)},
    FaultKind.METER_RESET: {},
    FaultKind.METER_GARBAGE: {},
}
EXCEPTION_CODES = frozenset(int(c) for c in ExceptionCode)


class FaultError(ValueError):
    """A fault, clear or vehicle request that cannot be carried out; the message says why."""


def fault_kind(kind: object) -> FaultKind:
    """The FaultKind named `kind`; FaultError listing the kinds if there is none."""
    if isinstance(kind, str) and kind in {k.value for k in FaultKind}:
        return FaultKind(kind)
    known = ", ".join(k.value for k in FaultKind)
    raise FaultError(f"unknown fault kind {kind!r} (known: {known})")


def fault_params(kind: FaultKind, params: Mapping[str, object]) -> dict[str, int]:
    """The checked parameters of a fault of `kind`; FaultError naming the bad or missing one."""
    expected = PARAMETERS[kind]
    for name in params:
        if name not in expected:
            wanted = ", ".join(expected) or "none"
            raise FaultError(f"{kind}: unknown parameter {name!r} (expected: {wanted})")
    checked: dict[str, int] = {}
    for name, (lo, hi) in expected.items():
        if name not in params:
            raise FaultError(f"{kind}: parameter {name!r} is missing (an integer {lo}..{hi})")
        value = params[name]
        # bool is an int in Python, but `true` is no exception code.
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise FaultError(f"{kind}: {name} must be an integer {lo}..{hi}, got {value!r}")
        checked[name] = value
    if kind is FaultKind.EXCEPTION and checked["code"] not in EXCEPTION_CODES:
        codes = ", ".join(str(c) for c in sorted(EXCEPTION_CODES))
        raise FaultError(f"exception: code must be a Modbus exception code ({codes})")
    return checked


class MeterFaults:
    """What a unit's energy counter reports: the true counter seen through its meter faults.

    `meter_reset` moves the counter's zero to the present count, as a pile reboot does. Its
    clearing does NOT bring the old count back (a rebooted meter never does): the counter goes
    on from its new zero, and a later `meter_reset` restarts it from 0 again. The other faults
    are views on that counter; clearing them shows it again.
    """

    def __init__(self) -> None:
        self.zero = 0  # watt-ticks subtracted from the physics' counter (moved by meter_reset)
        self.frozen_wh: int | None = None
        self.back_wh = 0
        self.garbage = False

    def true_wh(self, meter: int, wh_ticks: int) -> int:
        """The counter without view faults, whole Wh (floor, like every reading)."""
        return (meter - self.zero) // wh_ticks

    def reported_wh(self, meter: int, wh_ticks: int) -> int | None:
        """What the registers show in whole Wh; None for garbage (the profile encodes it)."""
        if self.garbage:
            return None
        if self.frozen_wh is not None:
            return self.frozen_wh
        return max(0, self.true_wh(meter, wh_ticks) - self.back_wh)

    def inject(self, kind: FaultKind, params: Mapping[str, int], meter: int, wh_ticks: int) -> None:
        if kind is FaultKind.METER_FROZEN:
            # Frozen at what it showed; a garbage counter freezes at its last real value.
            shown = self.reported_wh(meter, wh_ticks)
            self.frozen_wh = shown if shown is not None else self.true_wh(meter, wh_ticks)
        elif kind is FaultKind.METER_BACKWARDS:
            self.back_wh = params["wh"]
        elif kind is FaultKind.METER_RESET:
            self.zero = meter
            self.back_wh = 0  # the fresh count starts at 0, not below
        elif kind is FaultKind.METER_GARBAGE:
            self.garbage = True

    def clear(self, kind: FaultKind) -> None:
        if kind is FaultKind.METER_FROZEN:
            self.frozen_wh = None
        elif kind is FaultKind.METER_BACKWARDS:
            self.back_wh = 0
        elif kind is FaultKind.METER_GARBAGE:
            self.garbage = False
        # METER_RESET: nothing to undo; see the class docstring.


class UnitFaults:
    """The faults active on one unit, with their parameters."""

    def __init__(self) -> None:
        self.active: dict[FaultKind, dict[str, int]] = {}
        self.meter = MeterFaults()

    @property
    def silent(self) -> bool:
        return FaultKind.SILENT in self.active

    @property
    def exception_code(self) -> int | None:
        params = self.active.get(FaultKind.EXCEPTION)
        return params["code"] if params else None

    @property
    def delay_s(self) -> float:
        params = self.active.get(FaultKind.DELAY)
        return params["ms"] / 1000 if params else 0.0

    def as_json(self) -> dict[str, dict[str, int]]:
        return {kind.value: dict(params) for kind, params in self.active.items()}
