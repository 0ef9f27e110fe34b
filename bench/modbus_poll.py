"""Modbus polling bench: the drivers against a bare pymodbus loop, on the same simulator.

`pile-sim` serves 50 reference piles over TCP, each on its own port, in a process of its own.
One poll of a pile reads what the reference driver's `read_status()` reads: input registers 0-13
(state, power, meter) and holding registers 0-2 (enable, setpoint). A cycle polls all piles at
once (one connection each, as TCP piles are independent). The drivers and the bare loop take
turns, round after round, so both see the same machine. Then one pile on an RTU bus over a pty
pair gives the drivers' overhead per serial transaction.

    .venv/bin/python bench/modbus_poll.py [--piles 50] [--rounds 6] [--cycles 20]

One readable line per measurement; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pymodbus import FramerType  # noqa: E402
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient  # noqa: E402

from drivers.devices.reference import REF_INPUT_COUNT  # noqa: E402
from drivers.link import ModbusLink, parse_link  # noqa: E402
from drivers.reference import ReferencePile  # noqa: E402
from drivers.registers import Table  # noqa: E402
from firmware_sim.simulator import Simulator  # noqa: E402

TARGET_RATIO = 0.9
TARGET_CYCLE_MS = 100


def start_sim(piles: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    exe = Path(sys.executable).parent / "pile-sim"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "firmware_sim.cli"]
    proc = subprocess.Popen(
        [*cmd, "--tcp", "127.0.0.1:0", "--port-per-pile", "--count", str(piles)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("pile-sim did not start")
    return proc, json.loads(line)


async def driver_cycles(drivers: list[ReferencePile], cycles: int) -> list[float]:
    times = []
    for _ in range(cycles):
        start = time.perf_counter()
        await asyncio.gather(*(d.read_status() for d in drivers))
        times.append(time.perf_counter() - start)
    return times


async def raw_poll(client: AsyncModbusTcpClient, unit: int) -> None:
    inputs = await client.read_input_registers(0, count=REF_INPUT_COUNT, device_id=unit)
    holding = await client.read_holding_registers(0, count=3, device_id=unit)
    assert not inputs.isError() and not holding.isError()


async def raw_cycles(clients: list[tuple[AsyncModbusTcpClient, int]], cycles: int) -> list[float]:
    times = []
    for _ in range(cycles):
        start = time.perf_counter()
        await asyncio.gather(*(raw_poll(c, unit) for c, unit in clients))
        times.append(time.perf_counter() - start)
    return times


async def tcp_bench(piles: int, rounds: int, cycles: int) -> dict[str, Any]:
    proc, info = start_sim(piles)
    try:
        ports = {int(unit): port for unit, port in info["tcp"]["ports"].items()}
        links = [ModbusLink(parse_link(f"tcp://127.0.0.1:{ports[u]}?timeout=2")) for u in ports]
        drivers = [
            ReferencePile(link, unit, f"pile {unit}", 30_000)
            for link, unit in zip(links, ports, strict=True)
        ]
        clients = []
        for unit, port in ports.items():
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
            assert await client.connect()
            clients.append((client, unit))
        await driver_cycles(drivers, 2)  # connect and warm up both
        await raw_cycles(clients, 2)
        driver_times: list[float] = []
        raw_times: list[float] = []
        for _ in range(rounds):
            driver_times += await driver_cycles(drivers, cycles)
            raw_times += await raw_cycles(clients, cycles)
        for link in links:
            await link.close()
        for client, _ in clients:
            client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    driver_s = statistics.median(driver_times)
    raw_s = statistics.median(raw_times)
    return {
        "piles": piles,
        "cycles": len(driver_times),
        "driver_polls_per_s": round(piles / driver_s, 1),
        "raw_polls_per_s": round(piles / raw_s, 1),
        "ratio": round(raw_s / driver_s, 3),
        "cycle_ms": round(driver_s * 1000, 2),
        "raw_cycle_ms": round(raw_s * 1000, 2),
        "cycle_ms_p90": round(sorted(driver_times)[int(len(driver_times) * 0.9)] * 1000, 2),
    }


async def serial_bench(transactions: int) -> dict[str, Any]:
    """Per-transaction time on a pty pair (no line timing: a pty ignores the baud rate)."""
    sim = Simulator(["1:reference:30"])
    path = await sim.start_pty()
    try:
        link = ModbusLink(parse_link(f"rtu://{path}?baudrate=115200&timeout=1"))
        for _ in range(20):
            await link.read(Table.INPUT, 0, REF_INPUT_COUNT, 1)
        start = time.perf_counter()
        for _ in range(transactions):
            await link.read(Table.INPUT, 0, REF_INPUT_COUNT, 1)
        driver_s = (time.perf_counter() - start) / transactions
        await link.close()
        client = AsyncModbusSerialClient(
            path, framer=FramerType.RTU, baudrate=115200, timeout=1, retries=0
        )
        assert await client.connect()
        for _ in range(20):
            await client.read_input_registers(0, count=REF_INPUT_COUNT, device_id=1)
        start = time.perf_counter()
        for _ in range(transactions):
            await client.read_input_registers(0, count=REF_INPUT_COUNT, device_id=1)
        raw_s = (time.perf_counter() - start) / transactions
        client.close()
    finally:
        await sim.stop()
    return {
        "serial_transactions": transactions,
        "serial_driver_us": round(driver_s * 1e6, 1),
        "serial_raw_us": round(raw_s * 1e6, 1),
        "serial_overhead_us": round((driver_s - raw_s) * 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--piles", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds of each loop")
    parser.add_argument("--cycles", type=int, default=20, help="full cycles per round")
    parser.add_argument("--serial-transactions", type=int, default=500)
    args = parser.parse_args(argv)

    tcp = asyncio.run(tcp_bench(args.piles, args.rounds, args.cycles))
    print(
        f"TCP, {tcp['piles']} piles, {tcp['cycles']} cycles each: drivers "
        f"{tcp['driver_polls_per_s']:,.0f} polls/s (cycle {tcp['cycle_ms']} ms), bare pymodbus "
        f"{tcp['raw_polls_per_s']:,.0f} polls/s (cycle {tcp['raw_cycle_ms']} ms), "
        f"ratio {tcp['ratio']}"
    )
    serial = asyncio.run(serial_bench(args.serial_transactions))
    print(
        f"RTU on a pty pair: drivers {serial['serial_driver_us']} us, bare pymodbus "
        f"{serial['serial_raw_us']} us per transaction (overhead {serial['serial_overhead_us']} us)"
    )
    result = {
        **tcp,
        **serial,
        "targets": {"ratio": TARGET_RATIO, "cycle_ms": TARGET_CYCLE_MS},
        "met": tcp["ratio"] >= TARGET_RATIO and tcp["cycle_ms"] < TARGET_CYCLE_MS,
        "machine": {"python": sys.version.split()[0], "cpus": os.cpu_count()},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
