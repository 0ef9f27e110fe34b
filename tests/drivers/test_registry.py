"""The device registry: every kind declared once, its simulated twin under the same name, its
driver's capabilities as declared, and nothing of pymodbus loaded to read it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from drivers.device_kind import DeviceSettings, Metering, PileKind
from drivers.link import ModbusLink
from drivers.link_spec import parse_link
from drivers.registers import Table, width
from drivers.registry import METERS, PILES, device_keys, meter_kind, pile_kind, pile_names
from firmware_sim import twins

# The names the configuration and pile-sim have always known, and the two added devices.
NAMES = ["reference", "evse-wb", "abb-terra-ac", "keba-p30"]


def test_every_pile_kind_is_listed_once_under_its_name_and_aliases() -> None:
    assert pile_names() == NAMES
    for kind in PILES:
        assert pile_kind(kind.name) is kind
        for alias in kind.aliases:
            assert pile_kind(alias) is kind
    assert pile_kind("ref") is pile_kind("reference")  # pile-sim's old spellings
    assert pile_kind("evse-wb-din") is pile_kind("evse-wb")
    assert pile_kind("abb") is None
    assert [m.name for m in METERS] == ["sdm630", "sdm120"]
    assert meter_kind("sdm72") is None


def test_every_kind_has_its_simulated_twin_under_the_same_names() -> None:
    assert twins.pile_names() == pile_names()
    for kind in PILES:
        twin = twins.pile_twin(kind.name)
        assert twin is not None and twin.aliases == kind.aliases
        # A kind with a separate meter has a meter option in pile-sim, and only such a kind.
        assert ("meter" in twin.options) == (kind.capabilities.metering is not Metering.OWN)
        assert ("phases" in twin.options) == ("phases" in kind.keys)
        assert ("watchdog" in twin.options) == ("watchdog_s" in kind.keys)
    for meter in METERS:
        assert twins.meter_model(meter.name) is not None


@pytest.mark.parametrize("kind", PILES, ids=lambda k: k.name)
def test_a_built_driver_has_the_capabilities_its_kind_declares(kind: PileKind) -> None:
    link = ModbusLink(parse_link("tcp://127.0.0.1:1"))  # never connected: nothing is sent
    options = dict(kind.keys)
    settings = DeviceSettings("P", kind.default_unit, 11_000, options, kind.timing, lambda: 0.0)
    pile = kind.build(link, settings)
    assert pile.name == "P" and pile.rated_power_w == 11_000
    assert pile.has_energy_limit is kind.capabilities.energy_limit
    assert pile.has_watchdog is kind.capabilities.watchdog
    # A watchdog is set from `watchdog_s`, a separate meter reached on `meter_unit`.
    assert kind.capabilities.watchdog == ("watchdog_s" in kind.keys)
    assert (kind.capabilities.metering is not Metering.OWN) == ("meter_unit" in kind.keys)
    assert (pile.unit, pile.pause_s, pile.timeout_s) == (kind.default_unit, *kind.timing)


@pytest.mark.parametrize("kind", PILES, ids=lambda k: k.name)
def test_register_maps_have_no_overlapping_registers(kind: PileKind) -> None:
    taken: dict[tuple[Table, int], str] = {}
    for name, reg in kind.registers.items():
        for address in range(reg.address, reg.address + width(reg.kind)):
            assert (reg.table, address) not in taken, (name, taken.get((reg.table, address)))
            taken[(reg.table, address)] = name


def test_device_keys_are_what_the_kinds_take() -> None:
    assert set(device_keys()) == {"meter_unit", "meter", "phases", "watchdog_s"}


def loaded(*modules: str) -> set[str]:
    """Every module a fresh interpreter has loaded after importing `modules`."""
    code = f"import sys, {', '.join(modules)}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_registry_loads_no_driver_and_no_pymodbus() -> None:
    # The configuration (and so the replay) reads the registry; firmware_sim reads the kinds'
    # modules. A driver loads only when a pile is built on a link.
    heavy = {"pymodbus", "serial", "asyncio", "logging", "importlib"}
    drivers = {"drivers.link", "drivers.contracts", "drivers.device", "drivers.energy_guard"}
    drivers |= {f"drivers.{kind.driver.rpartition('.')[2]}" for kind in (*PILES, *METERS)}
    for names in (("drivers.registry",), tuple(f"drivers.devices.{k}" for k in KIND_MODULES)):
        modules = loaded(*names)
        assert {m.split(".")[0] for m in modules} & heavy == set()
        assert modules & drivers == set()


KIND_MODULES = ("reference", "evse_wb", "sdm", "abb_terra_ac", "keba_p30", "ac")
