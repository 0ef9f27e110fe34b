"""Modbus RTU on a serial line (a serial device or a pty master): framing, CRC and the bus server.

A request is [unit][function][data][CRC-16/Modbus, low byte first]. Its length follows from the
function code (FC03/FC04/FC06 and the other fixed-size requests: 8 bytes; FC16: 9 + byte
count), so the server needs no inter-frame timing to split requests. Bytes that do not make a
request (an unknown function code, a bad CRC) make it drop everything it has buffered, with no
answer; a partial request left waiting longer than FRAME_GAP_S is dropped when new bytes come,
which stands in for the 3.5-character silence of the RTU spec. A unit id no device has gets no
answer, as on a real RS-485 bus (unit 0, broadcast, is not supported and gets none either).
Requests are handled one at a time in order of arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
import time
import tty

from firmware_sim.modbus_pdu import UnitHandler

log = logging.getLogger(__name__)

FRAME_GAP_S = 0.05  # a pause this long inside a request means its start was noise
MAX_FRAME = 256  # RTU ADU limit: unit + 253-byte PDU + CRC
MAX_OUTPUT = 64 * 1024  # answers queued for a line nobody reads are dropped past this

# Request lengths (whole frame with CRC) of the fixed-size function codes (Modbus application
# protocol §6); requests of supported or not, they can be delimited and answered.
_FIXED_LENGTHS = {1: 8, 2: 8, 3: 8, 4: 8, 5: 8, 6: 8, 7: 4, 8: 8, 11: 4, 12: 4, 17: 4, 22: 10}
# Variable-size requests: (offset of the byte count, header length before the data incl. it)
_COUNTED = {15: (6, 7), 16: (6, 7), 23: (10, 11)}


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray) -> int:
    """CRC-16/Modbus (polynomial 0xA001 reflected, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def with_crc(frame: bytes) -> bytes:
    """The frame with its CRC appended, low byte first."""
    return frame + crc16(frame).to_bytes(2, "little")


def request_length(buffer: bytes | bytearray) -> int | None:
    """The length of the request at the start of buffer; None if more bytes are needed to
    know; -1 if it cannot be a request (an unknown function code or an impossible size)."""
    if len(buffer) < 2:
        return None
    function = buffer[1]
    if function in _FIXED_LENGTHS:
        return _FIXED_LENGTHS[function]
    if function in _COUNTED:
        at, header = _COUNTED[function]
        if len(buffer) <= at:
            return None
        length = header + buffer[at] + 2
        return length if length <= MAX_FRAME else -1
    return -1


class RtuFramer:
    """Splits received bytes into CRC-checked requests (unit id + PDU, without the CRC)."""

    def __init__(self, gap_s: float = FRAME_GAP_S) -> None:
        self.gap_s = gap_s
        self._buffer = bytearray()
        self._last_s = 0.0
        self.dropped = 0  # how many times buffered bytes were thrown away

    def _drop(self, why: str) -> None:
        log.debug("RTU: dropping %d bytes (%s): %s", len(self._buffer), why, self._buffer.hex())
        self._buffer.clear()
        self.dropped += 1

    def feed(self, data: bytes, now_s: float) -> list[bytes]:
        if self._buffer and now_s - self._last_s > self.gap_s:
            self._drop("stale partial request")
        self._last_s = now_s
        self._buffer += data
        requests = []
        while self._buffer:
            length = request_length(self._buffer)
            if length is None or (length > 0 and len(self._buffer) < length):
                break  # wait for the rest
            if length < 0:
                self._drop("not a request")
                break
            frame = bytes(self._buffer[:length])
            if crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
                self._drop("bad CRC")
                break
            del self._buffer[:length]
            requests.append(frame[:-2])
        return requests


class RtuServer:
    """Serves the handler's units on one serial line, given as an open file descriptor."""

    def __init__(self, fd: int, handler: UnitHandler, *, name: str, keep_fds: tuple[int, ...] = ()):
        self.fd = fd
        self.handler = handler
        self.name = name
        self._keep_fds = keep_fds  # closed with the server (a pty's slave side)
        self._framer = RtuFramer()
        self._requests: asyncio.Queue[bytes] = asyncio.Queue()
        self._output = bytearray()
        self._writing = False
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        os.set_blocking(self.fd, False)
        self._loop.add_reader(self.fd, self._on_readable)
        self._worker = asyncio.create_task(self._serve(), name=f"rtu {self.name}")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.fd)
            self._loop.remove_writer(self.fd)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for fd in (self.fd, *self._keep_fds):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            # The line is gone (a USB adapter unplugged): stop listening instead of spinning.
            log.error("%s: read failed, bus stopped: %s", self.name, exc)
            assert self._loop is not None
            self._loop.remove_reader(self.fd)
            return
        if not data:
            return
        for request in self._framer.feed(data, time.monotonic()):
            self._requests.put_nowait(request)

    async def _serve(self) -> None:
        while True:
            request = await self._requests.get()
            unit, pdu = request[0], request[1:]
            try:
                answer = self.handler.answer(unit, pdu)
            except Exception:  # task boundary: one bad request must not stop the bus
                log.exception("%s: unit %s: request %s failed", self.name, unit, request.hex())
                continue
            if answer.pdu is None:
                continue  # silent, or no such unit on the bus
            if answer.delay_s:
                await asyncio.sleep(answer.delay_s)
            self._send(with_crc(bytes([unit]) + answer.pdu))

    def _send(self, frame: bytes) -> None:
        if len(self._output) + len(frame) > MAX_OUTPUT:
            log.warning("%s: nobody reads the line; answer to unit %s dropped", self.name, frame[0])
            return
        self._output += frame
        self._flush()

    def _flush(self) -> None:
        try:
            written = os.write(self.fd, self._output)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            log.error("%s: write failed: %s", self.name, exc)
            self._output.clear()
            written = 0
        del self._output[:written]
        assert self._loop is not None
        if self._output and not self._writing:
            self._loop.add_writer(self.fd, self._flush)
            self._writing = True
        elif not self._output and self._writing:
            self._loop.remove_writer(self.fd)
            self._writing = False


_PARITY = {"N": 0, "E": termios.PARENB, "O": termios.PARENB | termios.PARODD}


def open_serial(path: str, baudrate: int = 9600, parity: str = "N", stopbits: int = 1) -> int:
    """Open a serial device raw (8 data bits) at the given line settings; its descriptor."""
    speed = getattr(termios, f"B{baudrate}", None)
    if speed is None:
        raise ValueError(f"baud rate {baudrate} is not a standard rate (9600, 19200, 115200, ...)")
    if parity not in _PARITY:
        raise ValueError(f"parity must be N, E or O, got {parity!r}")
    if stopbits not in (1, 2):
        raise ValueError(f"stop bits must be 1 or 2, got {stopbits}")
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        cflag = attrs[2] & ~(termios.PARENB | termios.PARODD | termios.CSTOPB | termios.CSIZE)
        cflag |= termios.CS8 | termios.CLOCAL | termios.CREAD | _PARITY[parity]
        if stopbits == 2:
            cflag |= termios.CSTOPB
        attrs[2] = cflag
        attrs[4] = attrs[5] = speed
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error as exc:
        os.close(fd)
        raise OSError(f"{path}: not a serial device ({exc})") from None
    except OSError:
        os.close(fd)
        raise
    return fd


def open_pty() -> tuple[int, int, str]:
    """A raw pty pair: (master fd, slave fd, slave path). Serve on the master; a driver opens
    the slave path. Keep the slave fd open: without it the master reads EIO whenever no driver
    has the slave open."""
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line discipline: bytes pass as they are
    return master, slave, os.ttyname(slave)
