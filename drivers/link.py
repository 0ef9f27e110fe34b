"""Modbus links: one owner per TCP connection or serial bus, one transaction at a time.

A link is named by a URL-like setting: `tcp://host:port` or
`rtu:///dev/ttyUSB0?baudrate=9600&parity=N&stopbits=1&timeout=0.5&pause=0.05`. Every device on
the link is addressed by its unit id. The library does not retry (retries=0): a miss is reported
at once as LinkTimeout, and the controller decides what a run of misses means (RULES §4).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.errors import BadResponse, DeviceRefused, LinkDown, LinkTimeout
from drivers.registers import Table

log = logging.getLogger(__name__)

MAX_REGISTERS = 125  # Modbus limit for one read


class LinkSpec(NamedTuple):
    kind: str  # "tcp" or "rtu"
    host: str = ""  # tcp
    port: int = 502  # tcp
    device: str = ""  # rtu: the serial port
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    timeout_s: float = 1.0
    pause_s: float = 0.0  # quiet time after every transaction (devices that need it, RTU)

    @property
    def url(self) -> str:
        if self.kind == "tcp":
            return f"tcp://{self.host}:{self.port}"
        return f"rtu://{self.device}?baudrate={self.baudrate}&parity={self.parity}"


_RTU_OPTIONS = {"baudrate", "parity", "stopbits", "bytesize", "timeout", "pause"}
_TCP_OPTIONS = {"timeout", "pause"}


def parse_link(url: str) -> LinkSpec:
    """LinkSpec for a link URL; ValueError that says what is wrong with it."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    if parts.scheme == "tcp":
        _only(query, _TCP_OPTIONS, url)
        if not parts.hostname:
            raise ValueError(f"{url!r}: a TCP link needs a host, as in tcp://192.168.1.20:502")
        try:
            port = parts.port or 502
        except ValueError:
            raise ValueError(f"{url!r}: the port must be a number from 1 to 65535") from None
        return LinkSpec(
            "tcp",
            host=parts.hostname,
            port=port,
            timeout_s=_number(query, "timeout", 1.0, url, 0.01, 60),
            pause_s=_number(query, "pause", 0.0, url, 0, 10),
        )
    if parts.scheme == "rtu":
        _only(query, _RTU_OPTIONS, url)
        device = parts.path if not parts.netloc else f"{parts.netloc}{parts.path}"
        if not device:
            raise ValueError(f"{url!r}: an RTU link needs a serial port, as in rtu:///dev/ttyUSB0")
        parity = query.get("parity", "N").upper()
        if parity not in ("N", "E", "O"):
            raise ValueError(f"{url!r}: parity must be N, E or O")
        return LinkSpec(
            "rtu",
            device=device,
            baudrate=int(_number(query, "baudrate", 9600, url, 300, 1_000_000)),
            parity=parity,
            stopbits=int(_number(query, "stopbits", 1, url, 1, 2)),
            bytesize=int(_number(query, "bytesize", 8, url, 7, 8)),
            timeout_s=_number(query, "timeout", 1.0, url, 0.01, 60),
            pause_s=_number(query, "pause", 0.0, url, 0, 10),
        )
    raise ValueError(f"{url!r}: a link is tcp://HOST:PORT or rtu:///dev/PORT?baudrate=9600")


def _only(query: dict[str, str], known: set[str], url: str) -> None:
    for key in query:
        if key not in known:
            raise ValueError(f"{url!r}: unknown option {key!r} (known: {', '.join(sorted(known))})")


def _number(
    query: dict[str, str], key: str, default: float, url: str, lo: float, hi: float
) -> float:
    if key not in query:
        return default
    try:
        value = float(query[key])
    except ValueError:
        raise ValueError(f"{url!r}: {key} must be a number, got {query[key]!r}") from None
    if not lo <= value <= hi:
        raise ValueError(f"{url!r}: {key} must be from {lo} to {hi}, got {query[key]}")
    return value


class ModbusLink:
    """The one owner of a connection or bus. Requests wait their turn; after each transaction
    the link keeps quiet for the device's pause, and after a timeout for a whole timeout more,
    so that a late reply is dropped instead of being taken for the next answer."""

    def __init__(self, spec: LinkSpec) -> None:
        self.spec = spec
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._lock = asyncio.Lock()
        self._quiet_until = 0.0  # monotonic seconds

    @property
    def name(self) -> str:
        return self.spec.url

    async def _connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        client = self._client
        if client is not None and client.connected:
            return client
        spec = self.spec
        if client is None:
            common: dict[str, Any] = {"timeout": spec.timeout_s, "retries": 0, "reconnect_delay": 0}
            if spec.kind == "tcp":
                client = AsyncModbusTcpClient(spec.host, port=spec.port, **common)
            else:
                client = AsyncModbusSerialClient(
                    spec.device,
                    framer=FramerType.RTU,
                    baudrate=spec.baudrate,
                    parity=spec.parity,
                    stopbits=spec.stopbits,
                    bytesize=spec.bytesize,
                    **common,
                )
            self._client = client
        if not await client.connect():
            raise LinkDown(f"{self.name}: cannot connect")
        return client

    async def read(
        self,
        table: Table,
        address: int,
        count: int,
        unit: int,
        pause_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> list[int]:
        """`count` registers from `address` of the unit's holding or input table."""
        if not 1 <= count <= MAX_REGISTERS:
            raise ValueError(f"count {count} is outside 1..{MAX_REGISTERS}")
        response = await self._transact(table, address, count, None, unit, pause_s, timeout_s)
        registers = list(response.registers)
        if len(registers) != count:
            raise BadResponse(
                f"{self.name} unit {unit}: asked for {count} registers, got {len(registers)}"
            )
        return registers

    async def write(
        self,
        address: int,
        values: list[int],
        unit: int,
        pause_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> None:
        """Write holding registers (FC16, as the EVSE-WB-DIN and most devices expect)."""
        response = await self._transact(
            Table.HOLDING, address, len(values), values, unit, pause_s, timeout_s
        )
        if response.address != address or response.count != len(values):
            raise BadResponse(f"{self.name} unit {unit}: write echo does not match the request")

    async def _transact(
        self,
        table: Table,
        address: int,
        count: int,
        values: list[int] | None,
        unit: int,
        pause_s: float,
        timeout_s: float | None,
    ) -> Any:
        """One transaction. pause_s and timeout_s are the device's own (a slow meter beside a
        quick pile on one bus); the link's apply where the device has none."""
        async with self._lock:
            if self._quiet_until:
                wait_s = self._quiet_until - time.monotonic()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
            client = self._client
            if client is None or not client.connected:
                client = await self._connected()
            timeout_s = timeout_s or self.spec.timeout_s
            # pymodbus waits ctx.comm_params.timeout_connect for an answer: set per transaction.
            client.ctx.comm_params.timeout_connect = timeout_s
            try:
                if values is not None:
                    response = await client.write_registers(address, values, device_id=unit)
                    function = 16
                elif table is Table.HOLDING:
                    response = await client.read_holding_registers(
                        address, count=count, device_id=unit
                    )
                    function = 3
                else:
                    response = await client.read_input_registers(
                        address, count=count, device_id=unit
                    )
                    function = 4
            except ModbusIOException as exc:
                # Keep quiet one timeout more, so that a late reply is dropped on the floor.
                self._quiet_until = time.monotonic() + timeout_s + pause_s
                if "but received" in str(exc):
                    # pymodbus refused an answer from another unit or transaction (a reply
                    # later than the quiet time): never taken, reported as a bad exchange.
                    raise BadResponse(f"{self.name} unit {unit}: {exc}") from exc
                raise LinkTimeout(
                    f"{self.name} unit {unit}: no answer within {timeout_s} s"
                ) from exc
            except ConnectionException as exc:
                self._drop()
                raise LinkDown(f"{self.name} unit {unit}: {exc}") from exc
            except ModbusException as exc:
                raise BadResponse(f"{self.name} unit {unit}: {exc}") from exc
            quiet_s = max(pause_s, self.spec.pause_s)
            self._quiet_until = time.monotonic() + quiet_s if quiet_s else 0.0
            if response.isError():
                code = getattr(response, "exception_code", 0)
                raise DeviceRefused(f"{self.name} unit {unit}: Modbus exception {code}", code)
            if response.dev_id != unit or response.function_code != function:
                raise BadResponse(
                    f"{self.name} unit {unit}: answer from unit {response.dev_id}, "
                    f"function {response.function_code}"
                )
            return response

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def close(self) -> None:
        async with self._lock:
            self._drop()


class LinkPool:
    """One link per URL: piles and meters that share a bus share its owner."""

    def __init__(self) -> None:
        self._links: dict[str, ModbusLink] = {}

    def get(self, url: str) -> ModbusLink:
        spec = parse_link(url)
        key = spec.url
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = ModbusLink(spec)
        elif link.spec != spec:
            raise ValueError(f"{url!r}: the link {key} is already open with other settings")
        return link

    async def close(self) -> None:
        for link in self._links.values():
            await link.close()
        self._links.clear()
