"""One pile as the control loop knows it: its drivers, what it last read of it, what it last
commanded it, and the running session's meter baseline.

The runtime is the rules' PilePort for a live pile (controller.station): a session is a wish the
loop carries out, and its energy is the meter's count since the session began, in whole Wh
(RULES §6). Everything outside the loop asks a runtime through its methods.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from controller.units import Units
from controller.values import CarId
from drivers.contracts import DeviceState, DeviceStatus, Meter, PileDevice
from drivers.energy_guard import RESET_NEAR_ZERO_WH
from drivers.errors import DriverError

log = logging.getLogger(__name__)

# A meter that stands still while its pile delivers this much is frozen, not rounding.
FROZEN_METER_WH = 20
# How long (station seconds) a session that the pile ended waits for a frozen meter to move.
METER_CATCH_UP_S = 600


class PileDevices(NamedTuple):
    """One configured pile's drivers: the pile's, and its meter's if separate."""

    pile: PileDevice
    meter: Meter | None = None  # None: the pile's own meter, read with its status


class Command(NamedTuple):
    """What a pile was told to deliver: at setpoint_w, amount_wh for session session_no."""

    setpoint_w: int
    amount_wh: int
    session_no: int


class SilentSession(NamedTuple):
    """A session whose pile went silent mid-charge: its car, and the last good reading, to
    bill what the pile delivered after it when it answers again (RULES §4)."""

    car: CarId
    queue_no: str
    meter_wh: int
    at_tick: int


class PileRuntime:
    """Everything the loop knows and has commanded of one pile."""

    def __init__(self, pile_id: int, devices: PileDevices, units: Units, watchdog_s: int) -> None:
        self.pile_id = pile_id
        self.device = devices.pile
        self.meter = devices.meter
        self.units = units
        self.watchdog_s = watchdog_s
        # the session, in the meter's whole Wh
        self.meter_wh: int | None = None  # the last good reading
        self.baseline_wh: int | None = None  # the meter when the running session began
        self.amount_wh: int | None = None  # what the running session is to deliver
        self.session_no = 0  # counts sessions: two cars asking the same amount are two sessions
        # the link
        self.status: DeviceStatus | None = None  # the last good reading
        self.misses = 0  # failed reads in a row
        self.answered = False  # read well at least once since the start
        # what the loop has done
        self.commanded: Command | None = None  # what it was last told to deliver
        self.watchdog_written = False  # this run has set its watchdog_s
        self.faulted = False  # faulted by the loop (a fault code, or silence), not the operator
        self.silent_session: SilentSession | None = None
        self.unplugged_since: int | None = None  # tick a called car was first seen absent
        # (tick, power) when its meter stopped moving while it delivered power
        self.still_since: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return self.device.name

    # -- the rules' PilePort -------------------------------------------------------------------
    def session_wh(self) -> int:
        if self.amount_wh is None or self.baseline_wh is None or self.meter_wh is None:
            return 0
        return max(0, self.meter_wh - self.baseline_wh)

    def start_session(self, now_tick: int, limit: int) -> None:
        self.amount_wh = -(-limit // self.units.energy_per_wh)
        self.baseline_wh = self.meter_wh
        self.session_no += 1

    def stop_session(self, now_tick: int) -> int:
        energy = self.session_wh() * self.units.energy_per_wh
        self.amount_wh = None
        self.baseline_wh = None
        return energy

    def session_energy(self, now_tick: int) -> int:
        return self.session_wh() * self.units.energy_per_wh

    # -- views ---------------------------------------------------------------------------------
    @property
    def answering(self) -> bool:
        """Its last read succeeded."""
        return not self.misses and self.status is not None

    @property
    def power_now_w(self) -> int | None:
        """What it reported at its last good reading."""
        return None if self.status is None else self.status.power_w

    @property
    def session_start_wh(self) -> int | None:
        """The meter count the running session started from; None without a session."""
        return self.baseline_wh if self.amount_wh is not None else None

    def saved(self) -> list[int | None]:
        """The session's meter state, for a restart."""
        return [self.meter_wh, self.baseline_wh, self.amount_wh]

    def restore(self, saved: list[int | None]) -> None:
        self.meter_wh, self.baseline_wh, self.amount_wh = saved

    # -- what to command -----------------------------------------------------------------------
    def want(self) -> Command | None:
        """What the rules want of the pile: its rated power, for the session's amount."""
        if self.amount_wh is None:
            return None
        return Command(self.device.rated_power_w, self.amount_wh, self.session_no)

    def unstarted(self) -> bool:
        """A session the pile has not been told of yet."""
        want = self.want()
        return want is not None and self.commanded != want

    def dropped(self) -> bool:
        """It dropped what it was told (its watchdog fired while the station hung, or it
        rebooted). Only an idle pile counts: one read as charging may have just reached its
        limit between the reads of one poll, and one that finished or failed is the rules'
        business."""
        status = self.status
        return (
            self.commanded is not None
            and status is not None
            and status.setpoint_w == 0
            and status.state in (DeviceState.CONNECTED, DeviceState.NO_VEHICLE)
        )

    # -- reading -------------------------------------------------------------------------------
    def watch_meter(self, status: DeviceStatus, meter_wh: int | None, now_tick: int) -> None:
        """Notice a meter that stands still while its pile says it delivers power (a frozen
        meter): energy the pile could not have hidden in its counter's rounding."""
        if meter_wh is None or meter_wh != self.meter_wh:
            self.still_since = None
            return
        if status.power_w > 0 and self.still_since is None:
            self.still_since = (now_tick, status.power_w)

    def meter_behind(self, now_tick: int) -> bool:
        """The pile stopped itself at its limit while its meter stood still although it
        delivered: the meter is behind, and the bill waits for it to catch up (within
        METER_CATCH_UP_S; after that the session ends on the meter's count, logged)."""
        if self.still_since is None:
            return False
        since, power_w = self.still_since
        ticks_per_s = self.units.ticks_per_s
        hidden_wh = power_w * (now_tick - since) / ticks_per_s / 3600
        if hidden_wh <= FROZEN_METER_WH:
            return False
        if now_tick - since > METER_CATCH_UP_S * ticks_per_s:
            log.error(
                "pile %s: finished, but its meter stood still for %d s of charging; billed on it",
                self.name,
                (now_tick - since) // ticks_per_s,
            )
            return False
        return True

    def bridge(self, meter_wh: int) -> None:
        """The pile's counter restarted (a reboot) and now shows meter_wh: the session counts
        what it had before the restart plus what the counter shows since, if it starts again
        from zero (a counter that restarted elsewhere counts from now). The energy between the
        last good reading and the restart itself is unknown, and not billed."""
        if self.meter_wh is None:
            return
        log.warning(
            "pile %s: meter restarted (%d Wh → %d Wh); bridged", self.name, self.meter_wh, meter_wh
        )
        since_restart_wh = meter_wh if meter_wh <= RESET_NEAR_ZERO_WH else 0
        if self.baseline_wh is not None:
            self.baseline_wh += meter_wh - since_restart_wh - self.meter_wh
        self.meter_wh = meter_wh

    async def read_meter_wh(self) -> int | None:
        """The meter as it counts now: the separate meter's, or the pile's own."""
        if self.meter is not None:
            return await self.meter.read_energy_wh()
        return (await self.device.read_status()).meter_wh

    async def stop_and_read(self) -> None:
        """Stop the pile, then read its meter once more: what it delivered until the stop
        reached it is its car's too."""
        try:
            await self.device.stop()
            self.meter_wh = await self.read_meter_wh()
        except DriverError as exc:  # billed up to the reading before the stop
            log.warning("pile %s: no reading after the stop: %s", self.name, exc)
