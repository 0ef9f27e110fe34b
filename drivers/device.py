"""What every device driver has: its link, unit id, name, and its own timing on the link."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from drivers.registers import Table

if TYPE_CHECKING:
    from drivers.link import ModbusLink


class LinkDevice:
    """A device on a link, by unit id. pause_s and timeout_s are this device's own quiet time
    before each of its transactions and its answer timeout (None: the link's), for a slow
    device sharing a bus with quick ones (drivers.device_kind.Timing)."""

    def __init__(
        self,
        link: ModbusLink,
        unit: int,
        name: str,
        *,
        pause_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> None:
        self.link = link
        self.unit = unit
        self.name = name
        self.pause_s = pause_s
        self.timeout_s = timeout_s

    # The link's own coroutines, handed on without a frame of their own: await the result.
    def _read(self, table: Table, address: int, count: int) -> Coroutine[Any, Any, list[int]]:
        return self.link.read(table, address, count, self.unit, self.pause_s, self.timeout_s)

    def _write(self, address: int, values: list[int]) -> Coroutine[Any, Any, None]:
        """FC16: write holding registers from `address`."""
        return self.link.write(address, values, self.unit, self.pause_s, self.timeout_s)

    def _write_single(self, address: int, value: int) -> Coroutine[Any, Any, None]:
        """FC06: write one holding register (devices that take no FC16)."""
        return self.link.write_single(address, value, self.unit, self.pause_s, self.timeout_s)
