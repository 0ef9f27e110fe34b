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
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.errors import BadResponse, DeviceRefused, DriverError, LinkDown, LinkTimeout
from drivers.link_spec import LinkSpec, parse_link
from drivers.registers import Table

log = logging.getLogger(__name__)

MAX_REGISTERS = 125  # Modbus limit for one read


class ModbusLink:
    """The one owner of a connection or bus. Requests wait their turn; before each transaction
    the link keeps quiet for the device's pause (and at least the link's own `pause`) since the
    last one ended, and after a timeout for a whole timeout more, so that a late reply is
    dropped instead of being taken for the next answer."""

    def __init__(self, spec: LinkSpec) -> None:
        self.spec = spec
        self._pause_s = spec.pause_s  # the link's own: a floor for every device's pause
        self._timeout_s = spec.timeout_s
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._lock = asyncio.Lock()
        # When the bus fell quiet (monotonic seconds): the last transaction's end, or one whole
        # timeout after a transaction that timed out.
        self._free_s = 0.0
        # Told of every transaction: (unit, seconds it took, None or the error's class name),
        # for whoever watches the bus (the server's metrics). Plain callables: no library here.
        self.watchers: list[Callable[[int, float, str | None], None]] = []

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

    def read(
        self,
        table: Table,
        address: int,
        count: int,
        unit: int,
        pause_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> Coroutine[Any, Any, list[int]]:
        """`count` registers from `address` of the unit's holding or input table (await it:
        the transaction's own coroutine, without a frame of this method's)."""
        if not 1 <= count <= MAX_REGISTERS:
            raise ValueError(f"count {count} is outside 1..{MAX_REGISTERS}")
        return self._transact(table, address, count, None, unit, pause_s, timeout_s)

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

    async def write_single(
        self,
        address: int,
        value: int,
        unit: int,
        pause_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> None:
        """Write one holding register (FC06, for devices that take no FC16)."""
        response = await self._transact(Table.HOLDING, address, 1, value, unit, pause_s, timeout_s)
        if response.address != address or response.registers != [value]:
            raise BadResponse(f"{self.name} unit {unit}: write echo does not match the request")

    async def _transact(
        self,
        table: Table,
        address: int,
        count: int,
        values: list[int] | int | None,
        unit: int,
        pause_s: float,
        timeout_s: float | None,
    ) -> Any:
        """One transaction, in one coroutine (a poll is on the hot path of every tick): a read's
        registers, or a write's answer. pause_s and timeout_s are the device's own (a slow meter
        beside a quick pile on one bus); the link's apply where the device has none."""
        watched = bool(self.watchers)
        started = time.monotonic() if watched else 0.0
        error: str | None = None
        # acquire() and release() rather than `async with`: two coroutine frames fewer.
        acquired = False
        try:
            await self._lock.acquire()
            acquired = True
            link_pause_s = self._pause_s
            wait_s = (
                self._free_s
                + (pause_s if pause_s > link_pause_s else link_pause_s)
                - time.monotonic()
            )
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            client = self._client
            if client is None or not client.connected:
                client = await self._connected()
            timeout_s = timeout_s or self._timeout_s
            # pymodbus waits ctx.comm_params.timeout_connect for an answer: set it per
            # transaction.
            client.ctx.comm_params.timeout_connect = timeout_s
            try:
                function, request = _request(client, table, address, count, values, unit)
                response = await request
            except ModbusIOException as exc:
                # Keep quiet one timeout more, so that a late reply is dropped on the floor.
                self._free_s = time.monotonic() + timeout_s
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
            self._free_s = time.monotonic()
            return self._checked(response, function, count, values is None, unit)
        except DriverError as exc:
            error = type(exc).__name__
            raise
        finally:
            if acquired:
                self._lock.release()
            if watched:
                took_s = time.monotonic() - started
                for watcher in list(self.watchers):
                    try:
                        watcher(unit, took_s, error)
                    except Exception:  # a broken watcher must not break the bus
                        log.exception("%s: a link watcher failed", self.name)

    def _checked(self, response: Any, function: int, count: int, read: bool, unit: int) -> Any:
        """A read's registers or a write's answer, once it is known to answer the question."""
        if response.isError():
            code = getattr(response, "exception_code", 0)
            raise DeviceRefused(f"{self.name} unit {unit}: Modbus exception {code}", code)
        if response.dev_id != unit or response.function_code != function:
            raise BadResponse(
                f"{self.name} unit {unit}: answer from unit {response.dev_id}, "
                f"function {response.function_code}"
            )
        if not read:
            return response
        registers = response.registers  # a fresh list of each answer's own
        if len(registers) != count:
            raise BadResponse(
                f"{self.name} unit {unit}: asked for {count} registers, got {len(registers)}"
            )
        return registers

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def close(self) -> None:
        async with self._lock:
            self._drop()


def _request(
    client: AsyncModbusTcpClient | AsyncModbusSerialClient,
    table: Table,
    address: int,
    count: int,
    values: list[int] | int | None,
    unit: int,
) -> tuple[int, Awaitable[Any]]:
    """The function code and the client's request for one transaction (not yet awaited)."""
    if values is None:
        if table is Table.HOLDING:
            return 3, client.read_holding_registers(address, count=count, device_id=unit)
        return 4, client.read_input_registers(address, count=count, device_id=unit)
    if isinstance(values, int):
        return 6, client.write_register(address, values, device_id=unit)
    return 16, client.write_registers(address, values, device_id=unit)


class LinkPool:
    """One link per URL: piles and meters that share a bus share its owner."""

    def __init__(self) -> None:
        self._links: dict[str, ModbusLink] = {}

    def links(self) -> list[ModbusLink]:
        """The links open now."""
        return list(self._links.values())

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
