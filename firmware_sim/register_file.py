"""A device's registers laid out from its register map (drivers.devices): reads, writes, checks.

A device subclass says what each named value is now (`values`), which new values it accepts
(`check`) and what a write does (`apply`). This base turns register ranges into those names, so
every profile answers addresses outside its map, partial writes of multi-register values and
writes to read-only registers the same way. A subclass narrows what its device takes: the
function codes, the registers a read may span, reads that must cover whole values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from drivers.registers import Reg, Table, decode, encode, width
from firmware_sim.modbus_pdu import MAX_READ_COUNT, ExceptionCode, FunctionCode, ModbusError
from firmware_sim.pile_model import PileModel

Value = int | float


class MappedDevice:
    """Registers of one unit, addressed by a map of named values."""

    profile = ""
    max_read_count = MAX_READ_COUNT
    functions: frozenset[int] = frozenset(FunctionCode)  # the function codes it answers
    whole_values = False  # True: a read must start and end on a value's bounds
    is_meter = False  # a separate meter (its pile is another unit)
    reports_energy = True  # its registers show an energy counter: meter faults apply to it
    model: PileModel  # the physics behind it
    # Values a multi-value write applies last, so that one FC16 of setpoint, limit and enable
    # starts the session with its setpoint and limit already in place.
    apply_last: frozenset[str] = frozenset()

    def __init__(self, unit: int, regmap: Mapping[str, Reg]) -> None:
        self.unit = unit
        self.regmap = dict(regmap)
        # (table, address) -> (name, index of the word within the value)
        self._slots: dict[tuple[Table, int], tuple[str, int]] = {}
        for name, reg in self.regmap.items():
            for i in range(width(reg.kind)):
                self._slots[(reg.table, reg.address + i)] = (name, i)

    # -- what a subclass provides ---------------------------------------------------------
    def values(self, table: Table) -> dict[str, Value]:
        """The value of every named register of `table`, as the device shows it now."""
        raise NotImplementedError

    def check(self, name: str, value: int) -> None:
        """Raise ModbusError(ILLEGAL_DATA_VALUE) if `value` may not be written to `name`."""

    def apply(self, name: str, value: int) -> None:
        """Carry out a write of `value` to `name` (already checked)."""
        raise NotImplementedError

    def step(self, now_tick: int) -> None:
        """Bring the device and its physics to now_tick."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, object]:
        """The device's state as the control channel shows it."""
        raise NotImplementedError

    # -- register access ------------------------------------------------------------------
    def _slot(self, table: Table, address: int) -> tuple[str, int]:
        slot = self._slots.get((table, address))
        if slot is None:
            kind = "holding" if table is Table.HOLDING else "input"
            raise ModbusError(
                ExceptionCode.ILLEGAL_DATA_ADDRESS,
                f"unit {self.unit} ({self.profile}) has no {kind} register {address}",
            )
        return slot

    def read(self, table: Table, address: int, count: int) -> list[int]:
        slots = [self._slot(table, a) for a in range(address, address + count)]
        for (name, _), a in zip(slots, range(address, address + count), strict=True):
            if not self.regmap[name].readable:
                raise ModbusError(
                    ExceptionCode.ILLEGAL_DATA_ADDRESS,
                    f"unit {self.unit} ({self.profile}): register {a} ({name}) is write-only",
                )
        if self.whole_values:
            last_name, last_index = slots[-1]
            if slots[0][1] != 0 or last_index != width(self.regmap[last_name].kind) - 1:
                raise ModbusError(
                    ExceptionCode.ILLEGAL_DATA_ADDRESS,
                    f"unit {self.unit} ({self.profile}): read {address}+{count} splits a value",
                )
        values = self.values(table)
        words: dict[str, list[int]] = {}
        out = []
        for name, index in slots:
            if name not in words:
                words[name] = encode(self.regmap[name].kind, values[name])
            out.append(words[name][index])
        return out

    def write(self, address: int, values: Sequence[int]) -> None:
        slots = [self._slot(Table.HOLDING, a) for a in range(address, address + len(values))]
        for (name, _), a in zip(slots, range(address, address + len(values)), strict=True):
            if not self.regmap[name].writable:
                raise ModbusError(
                    ExceptionCode.ILLEGAL_DATA_ADDRESS,
                    f"unit {self.unit} ({self.profile}): register {a} ({name}) is read-only",
                )
        # A write of part of a multi-register value keeps the other words (a register file).
        current = self.values(Table.HOLDING)
        words: dict[str, list[int]] = {}
        for (name, index), word in zip(slots, values, strict=True):
            if name not in words:
                words[name] = encode(self.regmap[name].kind, current[name])
            words[name][index] = word
        new = {name: int(decode(self.regmap[name].kind, regs)) for name, regs in words.items()}
        # Check every value before applying any: a refused write changes nothing.
        for name, value in new.items():
            self.check(name, value)
        for name in sorted(new, key=lambda n: n in self.apply_last):
            self.apply(name, new[name])


class AcPileDevice(MappedDevice):
    """An AC charge controller on its pile model: one or three phases, and whether a vehicle
    plugs in by itself when a session starts."""

    def __init__(
        self,
        unit: int,
        regmap: Mapping[str, Reg],
        model: PileModel,
        *,
        phases: int = 3,
        auto_plug: bool = True,
    ) -> None:
        super().__init__(unit, regmap)
        if phases not in (1, 3):
            raise ValueError(f"unit {unit}: phases must be 1 or 3, got {phases}")
        self.model = model
        self.phases = phases
        self.auto_plug = auto_plug
