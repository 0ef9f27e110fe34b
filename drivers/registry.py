"""The device registry: every kind of pile and meter the station drives, by name.

The configuration, the hardware factory and the documentation read it; nothing else branches on
a device's name. Adding a device kind is a module in drivers/devices (its PileKind or MeterKind
and its register map), its driver module, a line here, and its simulated twin in
firmware_sim.twins (docs/devices.md). Importing it loads no driver and no pymodbus: the replay
checks configurations with it.
"""

from __future__ import annotations

from drivers.device_kind import MeterKind, PileKind
from drivers.devices import abb_terra_ac, evse_wb, keba_p30, reference, sdm

PILES: tuple[PileKind, ...] = (reference.KIND, evse_wb.KIND, abb_terra_ac.KIND, keba_p30.KIND)
METERS: tuple[MeterKind, ...] = (sdm.SDM630, sdm.SDM120)

_PILES_BY_NAME = {name: kind for kind in PILES for name in (kind.name, *kind.aliases)}
_METERS_BY_NAME = {kind.name: kind for kind in METERS}


def pile_kind(name: str) -> PileKind | None:
    """The pile kind called `name` (or one of its aliases), if there is one."""
    return _PILES_BY_NAME.get(name)


def meter_kind(name: str) -> MeterKind | None:
    return _METERS_BY_NAME.get(name)


def pile_names() -> list[str]:
    """Every pile kind's name, in the registry's order."""
    return [kind.name for kind in PILES]


def meter_names() -> list[str]:
    return [kind.name for kind in METERS]


def device_keys() -> list[str]:
    """Every [[piles]] key some device kind takes, in first-declared order."""
    return list(dict.fromkeys(key for kind in PILES for key in kind.keys))
