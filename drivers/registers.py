"""The vocabulary of register maps: tables, value kinds, one register, and their encoding.

The maps themselves are in drivers.devices, one data module per device kind. Addresses are 0-based
protocol (PDU) addresses. Multi-register values are big-endian: the high word first. This module
imports nothing from pymodbus, so `firmware_sim` and the replay can use it.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple


class Table(IntEnum):
    """Which register table a value lives in, by the function code that reads it."""

    HOLDING = 3  # read FC03, written FC06 / FC16
    INPUT = 4  # read FC04, read-only


class Kind(IntEnum):
    U16 = 1
    U32 = 2
    U64 = 4
    F32 = 20  # IEEE-754 float32, high word first


_WIDTH = {Kind.U16: 1, Kind.U32: 2, Kind.U64: 4, Kind.F32: 2}


def width(kind: Kind) -> int:
    """Registers a value of this kind takes."""
    return _WIDTH[kind]


class Reg(NamedTuple):
    table: Table
    address: int
    kind: Kind
    unit: str
    writable: bool
    meaning: str
    readable: bool = True  # False: write-only (a read is refused, as the device does)


# -- encoding ------


def encode(kind: Kind, value: int | float) -> list[int]:
    """Registers holding `value` (high word first)."""
    if kind is Kind.F32:
        high, low = struct.unpack(">HH", struct.pack(">f", value))
        return [high, low]
    n = width(kind)
    v = int(value) % (1 << (16 * n))  # unsigned counters wrap modulo their width
    return [(v >> (16 * (n - 1 - i))) & 0xFFFF for i in range(n)]


def decode(kind: Kind, regs: list[int] | tuple[int, ...]) -> int | float:
    if kind is Kind.F32:
        return struct.unpack(">f", struct.pack(">HH", regs[0], regs[1]))[0]
    if kind is Kind.U16:
        return regs[0]
    if kind is Kind.U32:
        return (regs[0] << 16) | regs[1]
    value = 0
    for r in regs[: _WIDTH[kind]]:
        value = (value << 16) | r
    return value


def field(block: list[int] | tuple[int, ...], start: int, reg: Reg) -> int | float:
    """The value of `reg` out of a block of registers read from address `start`."""
    offset = reg.address - start
    return decode(reg.kind, block[offset : offset + _WIDTH[reg.kind]])
