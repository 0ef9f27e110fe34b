"""Driver of the ABB Terra AC wallbox (hardware notes 4b; its kind and register map:
drivers.devices.abb_terra_ac).

It takes a current limit in mA (0x4100, FC16, 0 = stop) and has no session energy limit and no
watchdog register: the station stops it at the amount, and its own polls are the keep-alive.
Its only energy register is the session's (0x401E, Wh), which starts again at every session; the
driver adds the sessions up into the cumulative count the loop bills from (SessionSum). Where a
count must survive a restart of the station mid-session, give the pile a separate meter
(`meter_unit`): docs/devices.md says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from drivers.ac_current import current_watts, rated_current_ma, setpoint_current_ma
from drivers.contracts import DeviceState, DeviceStatus
from drivers.device import LinkDevice
from drivers.device_kind import DeviceSettings
from drivers.devices.abb_terra_ac import (
    ABB,
    KIND,
    SOCKET_LOCKED,
    STATE_BYTE,
    STATE_MASK,
    STATUS_COUNT,
    STATUS_START,
    AbbState,
)
from drivers.energy_guard import EnergyGuard
from drivers.errors import BadReading, BadResponse, NotSupported
from drivers.registers import Table, encode

if TYPE_CHECKING:
    from drivers.link import ModbusLink

_U32_ALL_ONES = (1 << 32) - 1

# Word offsets into the status block read from STATUS_START (0x4008).
_ERROR = ABB["error_code"].address - STATUS_START  # 0x4008
_LOCK = ABB["socket_lock"].address - STATUS_START  # 0x400A
_STATE = ABB["state"].address - STATUS_START  # 0x400C
_LIMIT = ABB["current_limit_ma"].address - STATUS_START  # 0x400E
_POWER = ABB["power_w"].address - STATUS_START  # 0x401C
_SESSION = ABB["session_wh"].address - STATUS_START  # 0x401E
_SET_CURRENT = ABB["set_current_ma"].address  # 0x4100

_STATES = {
    AbbState.IDLE: DeviceState.NO_VEHICLE,
    AbbState.B1: DeviceState.CONNECTED,
    AbbState.B2: DeviceState.CONNECTED,
    AbbState.C1: DeviceState.CONNECTED,  # the vehicle is ready but draws nothing yet
    AbbState.C2: DeviceState.CHARGING,
}


def u32(block: list[int], offset: int) -> int:
    return (block[offset] << 16) | block[offset + 1]


def charging_state(block: list[int], offset: int) -> int:
    """The state out of 0x400C's register pair at `offset`: byte 2 of the four bytes b0 b1 b2
    b3 (high word first) is the high byte of the second register; its low 7 bits."""
    word = block[offset + STATE_BYTE // 2]  # bytes 2 and 3: the second register
    return (word >> 8) & STATE_MASK  # byte 2 is that register's high byte


class SessionSum:
    """A cumulative count out of a session counter that starts again from 0 at every session:
    what the counter has shown since the first reading, sessions added up. A reading below the
    one before means a new session began; the count goes on from what the old one showed when
    last read. A stopped session counts no more, and the driver reads the counter just before
    and after every start, so no restart goes unseen while the station drives the pile.

    The count starts at 0 with the first reading, whatever the counter shows then: a driver
    made afresh (the station restarted mid-session) counts on from there, and the loop takes
    that for a meter that restarted at 0 (docs/devices.md)."""

    def __init__(self) -> None:
        self.closed_wh = 0  # counted in the sessions that ended
        self.base_wh: int | None = None  # the running session's counter when it began counting
        self.last_wh = 0  # the running session's counter, as last read

    def next(self, session_wh: int) -> tuple[int, int, int]:
        """(closed_wh, base_wh, count) if session_wh is the next reading; commit() makes it so."""
        if self.base_wh is None:
            return 0, session_wh, 0
        if session_wh < self.last_wh:  # a new session: its counter started again from 0
            closed_wh = self.closed_wh + self.last_wh - self.base_wh
            return closed_wh, 0, closed_wh + session_wh
        return self.closed_wh, self.base_wh, self.closed_wh + session_wh - self.base_wh

    def commit(self, closed_wh: int, base_wh: int, session_wh: int) -> None:
        self.closed_wh, self.base_wh, self.last_wh = closed_wh, base_wh, session_wh


class AbbTerraAcPile(LinkDevice):
    """An ABB Terra AC on a link, by unit id (1 by default)."""

    has_energy_limit = KIND.capabilities.energy_limit
    has_watchdog = KIND.capabilities.watchdog

    def __init__(
        self,
        link: ModbusLink,
        unit: int,
        name: str,
        rated_power_w: int,
        *,
        phases: int = 3,
        clock: Callable[[], float] = time.monotonic,
        pause_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(link, unit, name, pause_s=pause_s, timeout_s=timeout_s)
        self.max_current_ma = rated_current_ma(name, rated_power_w, phases)
        self.rated_power_w = rated_power_w
        self.phases = phases
        self._clock = clock
        self.guard = EnergyGuard(name, rated_power_w)
        self.sessions = SessionSum()

    async def read_status(self) -> DeviceStatus:
        sent_s = self._clock()
        block = await self._read(Table.HOLDING, STATUS_START, STATUS_COUNT)
        meter_wh = self._count(u32(block, _SESSION), sent_s)
        error = u32(block, _ERROR)
        raw = charging_state(block, _STATE)
        if error:
            state = DeviceState.FAULT
        elif raw == AbbState.STOPPED:
            # A stopped session: the vehicle is still there if the cable is plugged and locked.
            plugged = u32(block, _LOCK) >= SOCKET_LOCKED
            state = DeviceState.CONNECTED if plugged else DeviceState.NO_VEHICLE
        else:
            known = _STATES.get(raw)  # type: ignore[call-overload]
            if known is None:
                raise BadResponse(f"{self.name}: unknown charging state {raw}")
            state = known
        return DeviceStatus(
            state=state,
            fault_code=error,
            power_w=u32(block, _POWER),  # 0x401C, W
            setpoint_w=current_watts(u32(block, _LIMIT), self.phases),  # 0x400E, mA
            meter_wh=meter_wh,
        )

    def _count(self, session_wh: int, sent_s: float) -> int:
        """The session counter (0x401E) as the cumulative count, checked by the meter guard."""
        if session_wh == _U32_ALL_ONES:
            raise BadReading(f"{self.name}: session energy shows all ones", "garbage", None)
        closed_wh, base_wh, count_wh = self.sessions.next(session_wh)
        checked_wh = self.guard.check(count_wh, self._clock(), sent_s)
        self.sessions.commit(closed_wh, base_wh, session_wh)
        return checked_wh

    async def _read_session(self) -> None:
        sent_s = self._clock()
        regs = await self._read(Table.HOLDING, ABB["session_wh"].address, 2)  # 0x401E, Wh
        self._count((regs[0] << 16) | regs[1], sent_s)

    async def enable(self, setpoint_w: int, limit_wh: int | None = None) -> None:
        if limit_wh is not None:
            raise NotSupported(f"{self.name}: the ABB Terra AC has no session energy limit")
        # Rounded down to the mA; below 6 A it stops (0x4100 = 0).
        current_ma = setpoint_current_ma(setpoint_w, self.phases, self.max_current_ma)
        if not current_ma:
            await self.stop()
            return
        # The session counter just before and just after: a start that restarts it is seen
        # while the old session's count is still known, however long the next poll takes.
        await self._read_session()
        await self._write(_SET_CURRENT, encode(ABB["set_current_ma"].kind, current_ma))
        await self._read_session()

    async def stop(self) -> None:
        await self._write(_SET_CURRENT, [0, 0])  # 0x4100 = 0 mA: stop

    async def heartbeat(self) -> None:
        raise NotSupported(f"{self.name}: the ABB Terra AC has no watchdog register")

    async def set_watchdog(self, timeout_s: int) -> None:
        raise NotSupported(f"{self.name}: the ABB Terra AC has no watchdog register")


def build(link: ModbusLink, settings: DeviceSettings) -> AbbTerraAcPile:
    return AbbTerraAcPile(
        link,
        settings.unit,
        settings.name,
        settings.power_w,
        phases=settings.options["phases"],
        clock=settings.clock,
        pause_s=settings.timing.pause_s,
        timeout_s=settings.timing.timeout_s,
    )
