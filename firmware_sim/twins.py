"""The simulated twins of the device kinds, under the device registry's names (drivers.devices):
what `pile-sim --pile UNIT:PROFILE:KW` builds for each profile, and the separate meters.

Adding a device kind's twin is a module with its device (a MappedDevice on a PileModel) and a
line here; nothing else in the simulator branches on a device's name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from drivers.devices import abb_terra_ac, evse_wb, keba_p30, reference
from drivers.devices.reference import REF_DEFAULT_WATCHDOG_S
from drivers.devices.sdm import METER_NAMES, MeterModel
from firmware_sim.abb_terra_ac import AbbTerraAcDevice
from firmware_sim.evse_wb import EvseWbDevice
from firmware_sim.faults import UnitFaults
from firmware_sim.keba_p30 import KebaP30Device
from firmware_sim.pile_model import PileModel
from firmware_sim.pile_spec import MAX_TCP_UNIT, MAX_UNIT, PileSpec
from firmware_sim.reference import ReferencePileDevice
from firmware_sim.register_file import MappedDevice
from firmware_sim.sdm import SdmMeterDevice

# The --pile options every kind takes (firmware_sim.spec), and those of a separate meter.
COMMON_OPTIONS = frozenset({"noplug", "meter_wh"})
METER_OPTIONS = frozenset({"meter", *METER_NAMES.values()})

# A pile's device from its spec, its physics, the faults injected on its unit and whether a
# vehicle plugs in when a session starts.
MakePile = Callable[[PileSpec, PileModel, UnitFaults, bool], MappedDevice]


class PileTwin(NamedTuple):
    name: str  # the device kind's name in the registry
    aliases: tuple[str, ...]
    options: frozenset[str]  # the --pile options it takes
    max_unit: int  # the highest unit id it may answer as
    make: MakePile


def _reference(spec: PileSpec, model: PileModel, faults: UnitFaults, plug: bool) -> MappedDevice:
    watchdog_s = REF_DEFAULT_WATCHDOG_S if spec.watchdog_s is None else spec.watchdog_s
    return ReferencePileDevice(spec.unit, model, faults, auto_plug=plug, watchdog_s=watchdog_s)


def _evse_wb(spec: PileSpec, model: PileModel, faults: UnitFaults, plug: bool) -> MappedDevice:
    return EvseWbDevice(
        spec.unit, model, phases=spec.phases, auto_plug=plug, meter_unit=spec.meter_unit
    )


def _abb(spec: PileSpec, model: PileModel, faults: UnitFaults, plug: bool) -> MappedDevice:
    return AbbTerraAcDevice(
        spec.unit, model, phases=spec.phases, auto_plug=plug, meter_unit=spec.meter_unit
    )


def _keba(spec: PileSpec, model: PileModel, faults: UnitFaults, plug: bool) -> MappedDevice:
    failsafe_s = spec.watchdog_s or 0  # off until the station sets it
    return KebaP30Device(
        spec.unit, model, faults, phases=spec.phases, auto_plug=plug, failsafe_s=failsafe_s
    )


PILES: tuple[PileTwin, ...] = (
    PileTwin(
        reference.NAME,
        reference.ALIASES,
        COMMON_OPTIONS | {"watchdog"},
        MAX_UNIT,
        _reference,
    ),
    PileTwin(
        evse_wb.NAME,
        evse_wb.ALIASES,
        COMMON_OPTIONS | METER_OPTIONS | {"phases"},
        MAX_UNIT,
        _evse_wb,
    ),
    PileTwin(
        abb_terra_ac.NAME,
        abb_terra_ac.ALIASES,
        COMMON_OPTIONS | METER_OPTIONS | {"phases"},
        MAX_UNIT,
        _abb,
    ),
    PileTwin(
        keba_p30.NAME,
        keba_p30.ALIASES,
        COMMON_OPTIONS | {"phases", "watchdog"},
        MAX_TCP_UNIT,  # a Modbus TCP device: unit 255 as it ships
        _keba,
    ),
)
_BY_NAME = {name: twin for twin in PILES for name in (twin.name, *twin.aliases)}


def pile_twin(name: str) -> PileTwin | None:
    """The twin of the pile kind called `name` (or one of its aliases)."""
    return _BY_NAME.get(name)


def pile_names() -> list[str]:
    return [twin.name for twin in PILES]


def twin_of(spec: PileSpec) -> PileTwin:
    """The twin a spec names; ValueError if there is none or it cannot be that pile."""
    twin = pile_twin(spec.profile)
    if twin is None:
        known = ", ".join(pile_names())
        raise ValueError(f"pile on unit {spec.unit}: unknown profile {spec.profile!r} ({known})")
    if spec.unit > twin.max_unit:
        raise ValueError(f"unit {spec.unit}: a unit id is 1..{twin.max_unit}")
    if spec.meter_unit is not None and "meter" not in twin.options:
        raise ValueError(f"pile on unit {spec.unit}: a {twin.name} pile has no separate meter")
    return twin


def make_meter(spec: PileSpec, model: PileModel, faults: UnitFaults) -> MappedDevice:
    """The separate meter of a pile on spec.meter_unit, metering the pile's physics."""
    assert spec.meter_unit is not None
    return SdmMeterDevice(
        spec.meter_unit,
        model,
        faults,
        meter_model=spec.meter_model,
        phases=spec.phases,
        pile_unit=spec.unit,
    )


METER_MODELS = {name: model for model, name in METER_NAMES.items()}  # "sdm630" -> its model


def meter_model(name: str) -> MeterModel | None:
    return METER_MODELS.get(name)
