"""Modbus TCP: the MBAP header (transaction id, protocol 0, length, unit id) around a PDU.

Each connection is served one request at a time, in order: a delayed answer holds back the
requests after it on that connection, and every answer carries the transaction id and unit id
of the request it answers, however late it comes. A unit id no device has is answered with
exception 0x0B (gateway target device failed to respond), as a Modbus TCP gateway does; a
silent unit sends nothing and the connection stays open. A header that is not Modbus
(protocol id other than 0, a length outside 2..254) closes the connection: a TCP stream cannot
be resynchronised.
"""

from __future__ import annotations

import asyncio
import logging
import struct

from firmware_sim.modbus_pdu import ExceptionCode, UnitHandler, exception_pdu
from firmware_sim.stream_server import StreamServer

log = logging.getLogger(__name__)

_MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length (unit + PDU), unit id
MAX_PDU = 253


class TcpServer(StreamServer):
    """Serves the handler's units (or only `units`, if given) on one TCP port."""

    def __init__(self, handler: UnitHandler, *, units: frozenset[int] | None = None) -> None:
        super().__init__()
        self.handler = handler
        self.units = units

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._requests(reader, writer, writer.get_extra_info("peername"))

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> None:
        while True:
            header = await reader.readexactly(_MBAP.size)
            transaction, protocol, length, unit = _MBAP.unpack(header)
            if protocol != 0 or not 2 <= length <= MAX_PDU + 1:
                log.warning(
                    "TCP %s: not Modbus (protocol %s, length %s): closing", peer, protocol, length
                )
                return
            pdu = await reader.readexactly(length - 1)
            if self.units is not None and unit not in self.units:
                reply: bytes | None = self._no_such_unit(pdu)
                delay_s = 0.0
            else:
                answer = self.handler.answer(unit, pdu)
                reply = self._no_such_unit(pdu) if answer.unknown_unit else answer.pdu
                delay_s = answer.delay_s
            if reply is None:
                continue  # silent unit: the client times out, the connection stays
            if delay_s:
                await asyncio.sleep(delay_s)
            writer.write(_MBAP.pack(transaction, 0, len(reply) + 1, unit) + reply)
            await writer.drain()

    @staticmethod
    def _no_such_unit(pdu: bytes) -> bytes:
        return exception_pdu(pdu[0], ExceptionCode.GATEWAY_TARGET_NO_RESPONSE)
