"""`pile-sim` as a real process: its start-up line, a client's read, faults, and a clean exit."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from drivers.devices.reference import REF_MAGIC
from drivers.registers import Kind, decode
from firmware_sim.cli import main


def command() -> list[str]:
    script = Path(sys.executable).parent / "pile-sim"  # the installed console script
    return [str(script)] if script.exists() else [sys.executable, "-m", "firmware_sim.cli"]


@asynccontextmanager
async def pile_sim(*args: str, stop: signal.Signals = signal.SIGTERM) -> AsyncIterator[Any]:
    """Run pile-sim; yield its start-up line; stop it with `stop` and check it exits 0."""
    process = await asyncio.create_subprocess_exec(
        *command(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 10)
        assert line, (await process.stderr.read()).decode() if process.stderr else ""
        yield json.loads(line)
        process.send_signal(stop)
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert await process.stdout.read() == b""  # nothing but the one line
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def http_post(port: int, path: str, body: dict[str, object]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: sim\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + data
    )
    status = int((await reader.readline()).split()[1])
    await reader.read()
    writer.close()
    return status


@pytest.mark.asyncio
async def test_tcp_start_up_line_read_fault_and_sigterm() -> None:
    async with pile_sim(
        "--tcp", "127.0.0.1:0", "--pile", "1:reference:30", "--pile", "2:evse-wb:11:meter=3"
    ) as started:
        tcp = started["tcp"]
        assert tcp["host"] == "127.0.0.1" and tcp["port"] > 0
        assert tcp["ports"] == {"1": tcp["port"], "2": tcp["port"], "3": tcp["port"]}
        assert started["units"] == [
            {"unit": 1, "profile": "reference", "power_w": 30_000},
            {"unit": 2, "profile": "evse-wb", "power_w": 11_000, "meter_unit": 3},
            {"unit": 3, "profile": "sdm630", "pile_unit": 2},
        ]
        assert (started["serial"], started["pty"], started["scale"]) == (None, False, 1.0)
        client = AsyncModbusTcpClient("127.0.0.1", port=tcp["port"], timeout=1, retries=0)
        assert await client.connect()
        try:
            assert (await client.read_input_registers(0, count=1, device_id=1)).registers == [
                REF_MAGIC
            ]
            voltage = await client.read_input_registers(0, count=2, device_id=3)
            assert decode(Kind.F32, voltage.registers) == 230.0
            control = started["control"]["port"]
            fault = {"unit": 1, "kind": "exception", "code": 6}
            assert await http_post(control, "/fault", fault) == 200
            reply = await client.read_input_registers(0, count=1, device_id=1)
            assert reply.exception_code == 6
            assert await http_post(control, "/fault", {"unit": 1, "kind": "bogus"}) == 400
        finally:
            client.close()


@pytest.mark.asyncio
async def test_pty_and_a_port_per_pile_then_sigint() -> None:
    async with pile_sim(
        "--pty", "--tcp", "127.0.0.1:0", "--port-per-pile", "--count", "3", "--count-kw", "22",
        "--pile", "1:evse-wb:11:meter=2",
        stop=signal.SIGINT,
    ) as started:  # fmt: skip
        ports = started["tcp"]["ports"]
        assert started["tcp"]["port"] is None
        assert sorted(ports, key=int) == ["1", "2", "3", "4", "5"]  # --count takes 3, 4, 5
        assert ports["1"] == ports["2"] and len({ports["1"], ports["3"], ports["4"]}) == 3
        for unit in (3, 5):
            client = AsyncModbusTcpClient("127.0.0.1", port=ports[str(unit)], timeout=1, retries=0)
            assert await client.connect()
            rated = await client.read_input_registers(2, count=2, device_id=unit)
            client.close()
            assert rated.registers == [0, 22_000]
        assert started["pty"] is True and started["serial"].startswith("/dev/")
        serial = AsyncModbusSerialClient(
            started["serial"], framer=FramerType.RTU, baudrate=9600, timeout=1, retries=0
        )
        assert await serial.connect()
        try:
            reply = await serial.read_holding_registers(1000, count=8, device_id=1)
            assert reply.registers[2] == 1  # vehicle state A: not connected
        finally:
            serial.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pile", "1:reference:30"], "give a transport"),
        (["--tcp", "127.0.0.1:0"], "no piles"),
        (["--tcp", "127.0.0.1", "--count", "1"], "give HOST:PORT"),
        (["--tcp", "127.0.0.1:0", "--pile", "1:reference:lots"], "KW must be a positive number"),
        (["--tcp", "127.0.0.1:0", "--pile", "1:reactor:30"], "unknown profile 'reactor'"),
        (["--tcp", "127.0.0.1:0", "--pile", "1:evse-wb:11:meter=1"], "other than the pile's own"),
        (["--tcp", "127.0.0.1:0", "--pile", "1:evse-wb:11:meter=2:sdm120"], "single-phase"),
        (["--tcp", "127.0.0.1:0", "--pile", "1:reference:7", "--pile", "1:reference:7"], "twice"),
        (["--tcp", "127.0.0.1:0", "--count", "248"], "only 247 unit ids"),
        (["--pty", "--port-per-pile", "--count", "1"], "goes with --tcp"),
        (["--serial", "/dev/null", "--baud", "1234", "--count", "1"], "not a standard baud"),
    ],
)
def test_bad_command_lines_exit_2_and_say_why(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_every_option_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--tcp", "--port-per-pile", "--serial", "--baud", "--parity", "--stopbits", "--pty",
        "--pile", "--count", "--count-kw", "--scale", "--no-auto-plug", "--control",
        "--verbose",
    ):  # fmt: skip
        assert option in text
    assert "pile-sim --tcp 127.0.0.1:5020 --pile 1:reference:30" in text
    assert "1:evse-wb:11:meter=2:sdm630" in text
    assert "meter_backwards" in text
