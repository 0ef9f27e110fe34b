"""The replay bench's site-limit variant (RULES §9): the bench's station behind a grid
connection of SITE_KW, minimum powers on its piles, and the site's other consumers as site
events every half hour, drawing more by day than by night.

The piles' 324 kW of rated power do not fit: by day 240-270 kW are left for them, about what the
workload asks for on average and less than its peaks, so the sessions share most of the time.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import NamedTuple

from controller.config import Config
from controller.replay.scenario import Kind, ScenarioEvent
from controller.site_config import SiteSettings

SITE_KW = 300
MIN_KW = {30_000: Decimal(5), 7_000: Decimal("1.38")}  # a DC pile's least; 6 A on one phase
OTHER_LOAD_KW = {"night": (10, 20), "day": (30, 60)}  # uniform, whole kW, per half hour
NIGHT = (22, 6)  # 22:00-06:00
STEP_S = 1800


class SiteWorkload(NamedTuple):
    config: Config
    events: list[ScenarioEvent]
    site_events: int


def with_site(config: Config, events: list[ScenarioEvent], seed: int) -> SiteWorkload:
    """The station and its events under the site limit, the site events merged in by time
    (before the other events of their instant, as the replay takes them)."""
    piles = tuple(p._replace(min_power_w=int(MIN_KW[p.power_w] * 1000)) for p in config.piles)
    limited = config._replace(piles=piles, site=SiteSettings(SITE_KW * 1000))
    span_s = events[-1].time_s if events else 0
    site = other_load(random.Random(seed), span_s)
    merged = sorted(site + events, key=lambda e: e.time_s)  # stable: site events first
    renumbered = [e._replace(line_no=n) for n, e in enumerate(merged, start=1)]
    return SiteWorkload(limited, renumbered, len(site))


def other_load(rng: random.Random, span_s: int) -> list[ScenarioEvent]:
    events = []
    for at in range(0, span_s + 1, STEP_S):
        hour = at // 3600 % 24
        night = hour >= NIGHT[0] or hour < NIGHT[1]
        kw = Decimal(rng.randint(*OTHER_LOAD_KW["night" if night else "day"]))
        events.append(ScenarioEvent(0, at, Kind.SITE, "SITE", "O", kw, f"(L,SITE,O,{kw})"))
    return events
