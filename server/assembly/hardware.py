"""Builds each configured pile's drivers from its `link`, `unit` and `profile` settings."""

from __future__ import annotations

from collections.abc import Callable

from controller.config import Config
from controller.live import PileLink
from drivers.evse_wb import EvseWbPile
from drivers.link import LinkPool
from drivers.reference import ReferencePile
from drivers.registers import MeterModel
from drivers.sdm import SdmMeter
from drivers.sim_pile import SimPile


def build_links(config: Config, clock: Callable[[], float], pool: LinkPool) -> dict[int, PileLink]:
    """pile id -> its drivers. Piles on one bus share one link (LinkPool)."""
    links: dict[int, PileLink] = {}
    for p in config.piles:
        if p.link == "sim":
            links[p.id] = PileLink(SimPile(p.name, p.power_w, clock))
            continue
        link = pool.get(p.link)
        if p.profile == "reference":
            links[p.id] = PileLink(ReferencePile(link, p.unit, p.name, p.power_w, clock=clock))
        else:
            assert p.meter_unit is not None  # the configuration checked it
            model = MeterModel.SDM120 if p.meter == "sdm120" else MeterModel.SDM630
            links[p.id] = PileLink(
                EvseWbPile(link, p.unit, p.name, p.power_w, phases=p.phases),
                SdmMeter(
                    link, p.meter_unit, f"{p.name} meter", p.power_w, model=model, clock=clock
                ),
            )
    return links
