"""RTU framing without a line: CRC-16/Modbus, request lengths, garbage and bad CRCs dropped."""

from __future__ import annotations

from firmware_sim.rtu import RtuFramer, crc16, request_length, with_crc


def test_crc16_modbus_known_frames() -> None:
    # The classic example: read 10 holding registers of unit 1 from 0 is 01 03 00 00 00 0A C5 CD.
    assert with_crc(bytes.fromhex("01030000000a")) == bytes.fromhex("01030000000ac5cd")
    assert crc16(b"123456789") == 0x4B37  # the CRC-16/MODBUS check value


def test_request_length_by_function_code() -> None:
    assert request_length(b"\x01") is None
    assert request_length(b"\x01\x03") == 8
    assert request_length(b"\x01\x06") == 8
    assert request_length(b"\x01\x10\x00\x00\x00\x02") is None  # byte count not yet in
    assert request_length(b"\x01\x10\x00\x00\x00\x02\x04") == 13
    assert request_length(b"\x01\x63") == -1  # no such function: cannot be delimited


def test_framer_splits_joined_requests_and_waits_for_split_ones() -> None:
    framer = RtuFramer()
    a = with_crc(bytes.fromhex("010400000002"))
    b = with_crc(bytes.fromhex("021003e8000102000a"))
    assert framer.feed(a + b[:5], 0.0) == [a[:-2]]
    assert framer.feed(b[5:], 0.01) == [b[:-2]]


def test_garbage_and_bad_crc_drop_the_buffer_then_the_next_request_passes() -> None:
    framer = RtuFramer()
    good = with_crc(bytes.fromhex("010300000001"))
    bad_crc = good[:-1] + bytes([good[-1] ^ 0xFF])
    assert framer.feed(bad_crc, 0.0) == []
    assert framer.feed(b"\xff\x63\x00\x01", 0.1) == []  # unknown function code
    assert framer.dropped == 2
    assert framer.feed(good, 0.2) == [good[:-2]]


def test_a_partial_request_left_waiting_is_dropped_when_new_bytes_come() -> None:
    framer = RtuFramer(gap_s=0.05)
    good = with_crc(bytes.fromhex("010300000001"))
    assert framer.feed(good[:3], 0.0) == []
    # The rest never came; a whole new request 1 s later must not be glued to the old start.
    assert framer.feed(good, 1.0) == [good[:-2]]
