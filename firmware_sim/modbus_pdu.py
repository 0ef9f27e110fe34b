"""Modbus PDUs on the server side: decode a request, run it on a device, encode the answer.

The PDU (function code + data) is the same on TCP and RTU; the transports (`tcp`, `rtu`) only
add and strip their framing. Checks follow the order of the Modbus application protocol
(v1.1b3, §6): function code (01), then quantity and byte count (03), then the address range
(02), then the execution on the device (02, 03 or 04 from the device itself).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import IntEnum
from typing import NamedTuple, Protocol

from drivers.registers import Table

MAX_READ_COUNT = 125  # registers in one FC03/FC04 read (the PDU holds at most 250 data bytes)
MAX_WRITE_COUNT = 123  # registers in one FC16 write


class ExceptionCode(IntEnum):
    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    DEVICE_FAILURE = 0x04
    ACKNOWLEDGE = 0x05
    DEVICE_BUSY = 0x06
    MEMORY_PARITY_ERROR = 0x08
    GATEWAY_PATH_UNAVAILABLE = 0x0A
    GATEWAY_TARGET_NO_RESPONSE = 0x0B


class FunctionCode(IntEnum):
    READ_HOLDING = 3
    READ_INPUT = 4
    WRITE_SINGLE = 6
    WRITE_MULTIPLE = 16


class ModbusError(Exception):
    """A request the device refuses: answered with this exception code."""

    def __init__(self, code: ExceptionCode, reason: str) -> None:
        super().__init__(f"exception {int(code)}: {reason}")
        self.code = code
        self.reason = reason


class RegisterDevice(Protocol):
    """What a Modbus request needs from a simulated device (registers only, no framing)."""

    max_read_count: int
    functions: frozenset[int]

    def read(self, table: Table, address: int, count: int) -> list[int]: ...

    def write(self, address: int, values: Sequence[int]) -> None: ...


def exception_pdu(function: int, code: int) -> bytes:
    """The exception answer to a request of `function`: the function with bit 7 set, the code."""
    return bytes([(function | 0x80) & 0xFF, code & 0xFF])


def handle_pdu(device: RegisterDevice, pdu: bytes) -> bytes:
    """The answer PDU to a request PDU; refusals become exception answers."""
    function = pdu[0]
    try:
        return _run(device, function, pdu[1:])
    except ModbusError as exc:
        return exception_pdu(function, exc.code)


def _run(device: RegisterDevice, function: int, data: bytes) -> bytes:
    if function not in device.functions:
        raise ModbusError(ExceptionCode.ILLEGAL_FUNCTION, f"function {function} is not supported")
    if function in (FunctionCode.READ_HOLDING, FunctionCode.READ_INPUT):
        if len(data) != 4:
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, "a read request has 4 data bytes")
        address, count = struct.unpack(">HH", data)
        limit = min(MAX_READ_COUNT, device.max_read_count)
        if not 1 <= count <= limit:
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, f"count {count} not in 1..{limit}")
        if address + count > 0x10000:
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_ADDRESS, "range past address 65535")
        table = Table.HOLDING if function == FunctionCode.READ_HOLDING else Table.INPUT
        registers = device.read(table, address, count)
        return struct.pack(f">BB{count}H", function, 2 * count, *registers)
    if function == FunctionCode.WRITE_SINGLE:
        if len(data) != 4:
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, "FC06 has 4 data bytes")
        address, value = struct.unpack(">HH", data)
        device.write(address, [value])
        return bytes([function]) + data  # FC06 answers with an echo of the request
    if function == FunctionCode.WRITE_MULTIPLE:
        if len(data) < 5:
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, "FC16 request too short")
        address, count, byte_count = struct.unpack(">HHB", data[:5])
        if not 1 <= count <= MAX_WRITE_COUNT:
            raise ModbusError(
                ExceptionCode.ILLEGAL_DATA_VALUE, f"count {count} not in 1..{MAX_WRITE_COUNT}"
            )
        if byte_count != 2 * count or len(data) != 5 + byte_count:
            raise ModbusError(
                ExceptionCode.ILLEGAL_DATA_VALUE, "byte count does not match the register count"
            )
        if address + count > 0x10000:
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_ADDRESS, "range past address 65535")
        values = list(struct.unpack(f">{count}H", data[5:]))
        device.write(address, values)
        return struct.pack(">BHH", function, address, count)
    raise ModbusError(ExceptionCode.ILLEGAL_FUNCTION, f"function {function} is not supported")


class Answer(NamedTuple):
    """What a unit answers to one request; the transport frames and sends it."""

    pdu: bytes | None  # None: no answer at all (a silent unit, or no such unit)
    delay_s: float = 0.0  # send it this much later (an injected delay)
    unknown_unit: bool = False  # no device has this unit id


class UnitHandler(Protocol):
    """The devices behind a transport, by unit id."""

    def answer(self, unit: int, pdu: bytes) -> Answer: ...
