"""The pile firmware simulator: piles and meters by unit id, their faults, and their transports.

One Simulator owns the devices (built from PileSpecs on PileModels), the simulated clock, the
injected faults, and any number of transports serving the same devices: Modbus TCP (all units
on one port, or one port per pile), Modbus RTU on a serial device or a pty, and the HTTP control
channel (firmware_sim.control). Every Modbus access first steps the accessed unit's physics to
"now"; the control channel steps every unit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from firmware_sim.clock import TICKS_PER_S, WH_TICKS, SimClock
from firmware_sim.control import ControlServer
from firmware_sim.faults import (
    METER_KINDS,
    FaultError,
    FaultKind,
    UnitFaults,
    fault_kind,
    fault_params,
)
from firmware_sim.modbus_pdu import Answer, ExceptionCode, exception_pdu, handle_pdu
from firmware_sim.pile_model import PileModel
from firmware_sim.register_file import MappedDevice
from firmware_sim.rtu import RtuServer, open_pty, open_serial
from firmware_sim.spec import PileSpec, parse_pile
from firmware_sim.tcp import TcpServer
from firmware_sim.twins import make_meter, twin_of

log = logging.getLogger(__name__)

Device = MappedDevice


@dataclass
class Unit:
    """One unit id: its device, the faults injected on it, and the pile it belongs to."""

    device: Device
    faults: UnitFaults
    pile: PileSpec

    @property
    def is_pile(self) -> bool:
        return not self.device.is_meter

    @property
    def has_meter(self) -> bool:
        """Its registers report an energy counter (meter faults apply)."""
        return self.device.reports_energy


class Simulator:
    """Simulated piles and meters, by unit id, on a simulated clock.

    `clock` is a source of seconds (default time.monotonic) and `scale` how many times faster
    than that source simulated time runs; simulated time starts at 0 when the Simulator is made.
    """

    def __init__(
        self,
        piles: Iterable[PileSpec | str],
        *,
        clock: Callable[[], float] = time.monotonic,
        scale: float = 1.0,
        auto_plug: bool = True,
    ) -> None:
        self.clock = SimClock(clock, scale)
        self._stepped_tick = 0  # the tick every unit's physics was last brought to
        self.piles = [parse_pile(p) if isinstance(p, str) else p for p in piles]
        if not self.piles:
            raise ValueError("no piles: give at least one")
        self.units: dict[int, Unit] = {}
        for spec in self.piles:
            self._add(spec, auto_plug)
        self.tcp_servers: list[TcpServer] = []
        self.rtu_servers: list[RtuServer] = []
        self.control_servers: list[ControlServer] = []

    def _add(self, spec: PileSpec, auto_plug_default: bool) -> None:
        twin = twin_of(spec)
        for unit in spec.units:
            if unit in self.units:
                raise ValueError(f"unit {unit} is taken twice (units must differ on one bus)")
        auto_plug = auto_plug_default if spec.auto_plug is None else spec.auto_plug
        model = PileModel(spec.power_w, TICKS_PER_S, meter=spec.meter_wh * WH_TICKS)
        faults = UnitFaults()
        self.units[spec.unit] = Unit(twin.make(spec, model, faults, auto_plug), faults, spec)
        if spec.meter_unit is not None:
            meter_faults = UnitFaults()
            meter = make_meter(spec, model, meter_faults)
            self.units[spec.meter_unit] = Unit(meter, meter_faults, spec)

    # -- time and physics ---------------------------------------------------------------
    def now_s(self) -> float:
        """Simulated seconds since the start."""
        return self.clock.now_tick() / TICKS_PER_S

    def _unit(self, unit: object) -> Unit:
        if not isinstance(unit, int) or isinstance(unit, bool) or unit not in self.units:
            known = ", ".join(str(u) for u in sorted(self.units))
            raise FaultError(f"unit {unit!r} is not simulated here (units: {known})")
        return self.units[unit]

    def step(self) -> int:
        """Bring every unit's physics to now; the tick it is at."""
        now = self.clock.now_tick()
        for entry in self.units.values():
            entry.device.step(now)
        self._stepped_tick = now
        return now

    def model(self, unit: int) -> PileModel:
        """The physics behind a unit (a meter's is its pile's), stepped to now."""
        entry = self._unit(unit)
        entry.device.step(self.clock.now_tick())
        return entry.device.model

    def device(self, unit: int) -> Device:
        return self._unit(unit).device

    # -- Modbus -------------------------------------------------------------------------
    def answer(self, unit: int, pdu: bytes) -> Answer:
        """The answer of `unit` to a request PDU, as the transports send it."""
        entry = self.units.get(unit)
        if entry is None:
            return Answer(None, unknown_unit=True)
        faults = entry.faults
        if faults.silent:
            return Answer(None)
        code = faults.exception_code
        if code is not None:
            return Answer(exception_pdu(pdu[0], code), faults.delay_s)
        try:
            entry.device.step(self.clock.now_tick())
            reply = handle_pdu(entry.device, pdu)
        except Exception:  # a simulator bug: answer as a failing device would, and say where
            log.exception("unit %s: request %s failed", unit, pdu.hex())
            reply = exception_pdu(pdu[0], ExceptionCode.DEVICE_FAILURE)
        return Answer(reply, faults.delay_s)

    # -- faults and the vehicle ---------------------------------------------------------
    def inject(self, unit: int, kind: str, **params: object) -> None:
        """Inject a fault on a unit (FaultKind); FaultError says what is wrong with the request.
        Injecting a kind that is already active replaces its parameters."""
        entry = self._unit(unit)
        fault = fault_kind(kind)
        checked = fault_params(fault, params)
        if fault is FaultKind.PILE_FAULT and not entry.is_pile:
            pile = entry.pile.unit
            raise FaultError(
                f"pile_fault: unit {unit} is a meter; inject it on its pile, unit {pile}"
            )
        if fault in METER_KINDS and not entry.has_meter:
            where = entry.pile.meter_unit
            hint = f"its meter, unit {where}" if where is not None else "a unit with a meter"
            raise FaultError(
                f"{fault}: unit {unit} ({entry.device.profile}) reports no energy; "
                f"meter faults go on {hint}"
            )
        now = self.step()
        model = entry.device.model
        if fault is FaultKind.PILE_FAULT:
            model.set_fault(now, checked["code"])
        elif fault in METER_KINDS:
            entry.faults.meter.inject(fault, checked, model.meter, WH_TICKS)
        entry.faults.active[fault] = checked
        log.info("unit %s: fault %s %s injected", unit, fault, checked or "")

    def clear(self, unit: int, kind: str | None = None) -> None:
        """Clear one fault kind on a unit, or all of them (kind None). Clearing a kind that is
        not active changes nothing."""
        entry = self._unit(unit)
        kinds = list(entry.faults.active) if kind is None else [fault_kind(kind)]
        now = self.step()
        for fault in kinds:
            if fault is FaultKind.PILE_FAULT and entry.is_pile:
                entry.device.model.clear_fault(now)
            elif fault in METER_KINDS:
                entry.faults.meter.clear(fault)
            entry.faults.active.pop(fault, None)
            log.info("unit %s: fault %s cleared", unit, fault)

    def plug(self, unit: int, plugged: bool) -> None:
        """The vehicle at a pile plugs in (True) or leaves (False)."""
        entry = self._unit(unit)
        if not entry.is_pile:
            raise FaultError(
                f"unit {unit} is a meter; plug the vehicle in at its pile, unit {entry.pile.unit}"
            )
        now = self.step()
        if plugged:
            entry.device.model.plug_in(now)
        else:
            entry.device.model.unplug(now)

    def state(self, *, step: bool = True) -> dict[str, object]:
        """Every unit's state, stepped to now (what GET /state returns); with step=False as
        of the last step (what a fault's answer shows: the instant it was injected)."""
        now = self.step() if step else self._stepped_tick
        units = []
        for unit in sorted(self.units):
            entry = self.units[unit]
            snapshot = entry.device.snapshot()
            snapshot["faults"] = entry.faults.as_json()
            units.append(snapshot)
        return {"now_s": now / TICKS_PER_S, "scale": self.clock.scale, "units": units}

    def describe_units(self) -> list[dict[str, object]]:
        """Each unit's profile and what it belongs to (the start-up line's `units`)."""
        out: list[dict[str, object]] = []
        for unit in sorted(self.units):
            entry = self.units[unit]
            item: dict[str, object] = {"unit": unit, "profile": entry.device.profile}
            if entry.is_pile:
                item["power_w"] = entry.pile.power_w
                if entry.pile.meter_unit is not None:
                    item["meter_unit"] = entry.pile.meter_unit
            else:
                item["pile_unit"] = entry.pile.unit
            out.append(item)
        return out

    # -- transports ---------------------------------------------------------------------
    async def start_tcp(
        self, host: str = "127.0.0.1", port: int = 0, units: Iterable[int] | None = None
    ) -> tuple[str, int]:
        """Serve the units (all, or those given) as unit ids on one TCP port; (host, port)."""
        server = TcpServer(self, units=None if units is None else frozenset(units))
        bound = await server.start(host, port)
        self.tcp_servers.append(server)
        return bound

    async def start_tcp_per_pile(
        self, host: str = "127.0.0.1", base_port: int = 0
    ) -> dict[int, int]:
        """Serve each pile (with its meter) on a port of its own: base_port + its index, or
        a free port each if base_port is 0. Every unit id -> its port."""
        ports: dict[int, int] = {}
        for index, spec in enumerate(self.piles):
            _, port = await self.start_tcp(host, base_port + index if base_port else 0, spec.units)
            ports |= dict.fromkeys(spec.units, port)
        return ports

    async def start_serial(
        self, path: str, baudrate: int = 9600, parity: str = "N", stopbits: int = 1
    ) -> None:
        """Serve every unit on one RTU bus on an existing serial device."""
        fd = open_serial(path, baudrate, parity, stopbits)
        self._start_rtu(RtuServer(fd, self, name=path))

    async def start_pty(self) -> str:
        """Serve every unit on one RTU bus on a new pty; the path a driver opens (its slave)."""
        master, slave, path = open_pty()
        self._start_rtu(RtuServer(master, self, name=path, keep_fds=(slave,)))
        return path

    def _start_rtu(self, server: RtuServer) -> None:
        server.start()
        self.rtu_servers.append(server)

    async def start_control(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Serve the HTTP control channel (firmware_sim.control); (host, port)."""
        server = ControlServer(self)
        bound = await server.start(host, port)
        self.control_servers.append(server)
        return bound

    async def stop(self) -> None:
        """Stop every transport and close its ports and descriptors."""
        for tcp in self.tcp_servers:
            await tcp.stop()
        for rtu in self.rtu_servers:
            await rtu.stop()
        for control in self.control_servers:
            await control.stop()
        self.tcp_servers.clear()
        self.rtu_servers.clear()
        self.control_servers.clear()
