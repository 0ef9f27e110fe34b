"""Under a site limit the replay's fast paths change nothing: random scenarios give the same
output with the piles' grouped bookkeeping (controller.replay.supply) as with a plain one that
integrates every session by itself, and with dispatch's float estimates as without them. Each
snapshot also keeps RULES §9: no session above its rating, none above what is available
together, a paused session at 0, and every pile's meter equal to its bills and open session."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import pytest

from controller import dispatch
from controller.config import Config, PileConfig, StationSettings, parse_tariff
from controller.replay import supply
from controller.replay.output import dumps
from controller.replay.runner import Replay
from controller.replay.scenario import Kind, ScenarioEvent
from controller.sharing import Shares
from controller.site_config import SiteSettings
from controller.values import Dispatch, Mode


class StepPiles:
    """The piles the slow, plain way: each session's energy moved on by itself at every change
    of power, and completions found by looking at every session."""

    def __init__(self, pile_ids: list[int]) -> None:
        self.pile_ids = pile_ids
        self.at: int | Fraction = 0
        n = len(pile_ids)
        self.open = [False] * n
        self.energy_at: list[int | Fraction] = [0] * n
        self.since: list[int | Fraction] = [0] * n
        self.power: list[int | Fraction] = [0] * n
        self.limit: list[int | Fraction] = [0] * n
        self.billed: list[int | Fraction] = [0] * n

    def start(self, i: int, now_tick: int, limit: int) -> None:
        self.open[i] = True
        self.energy_at[i], self.since[i], self.power[i], self.limit[i] = 0, now_tick, 0, limit

    def stop(self, i: int, now_tick: int) -> int | Fraction:
        energy = self.energy(i, now_tick)
        self.open[i] = False
        self.billed[i] += energy
        return energy

    def energy(self, i: int, now_tick: int | Fraction) -> int | Fraction:
        energy = self.energy_at[i] + self.power[i] * (now_tick - self.since[i])
        assert energy <= self.limit[i], "a session drew past its amount"
        return energy

    def energy_guess(self, i: int, now: float) -> float:
        return float(self.energy_at[i]) + float(self.power[i]) * (now - float(self.since[i]))

    def meter(self, i: int, now_tick: int | Fraction) -> int | Fraction:
        return self.billed[i] + (self.energy(i, now_tick) if self.open[i] else 0)

    def apply(self, now_tick: int | Fraction, shares: Shares) -> None:
        self.at = now_tick
        for i, pile_id in enumerate(self.pile_ids):
            if self.open[i]:
                self.energy_at[i] = self.energy(i, now_tick)
                self.since[i] = now_tick
                self.power[i] = shares.power_w(pile_id)

    def _finish(self, i: int) -> int | Fraction | None:
        if not self.open[i] or self.power[i] == 0:
            return None
        return self.since[i] + Fraction(self.limit[i] - self.energy_at[i]) / self.power[i]

    def next_completion(self) -> int | Fraction | None:
        finishes = [f for f in map(self._finish, range(len(self.pile_ids))) if f is not None]
        return min(finishes, default=None)

    def completing(self, tick: int | Fraction) -> list[int]:
        self.at = tick
        return [i for i in range(len(self.pile_ids)) if self._finish(i) == tick]


def station(rng: random.Random) -> Config:
    fast_kw = rng.choice([(30, 30), (30, 20), (22, 22)])
    common_kw = rng.choice([(7, 7), (7, 11), (7, 7.4)])
    piles = []
    for i, kw in enumerate(fast_kw + common_kw):
        mode = Mode.FAST if i < 2 else Mode.COMMON
        min_w = rng.choice([0, 0, 1_380, 4_140, 6_000, 12_000])
        piles.append(PileConfig(i + 1, f"P{i + 1}", mode, int(Decimal(str(kw)) * 1000)))
        piles[-1] = piles[-1]._replace(min_power_w=min_w)
    settings = StationSettings(
        waiting_area_size=rng.choice([2, 4, 8]),
        pile_queue_len=rng.choice([1, 2, 3]),
        dispatch=rng.choice([Dispatch.SHORTEST, Dispatch.SHORTEST, Dispatch.SINGLE_MIN_TOTAL]),
    )
    site = SiteSettings(rng.choice([0, 7_000, 15_000, 29_500, 40_000, 60_000]))
    return Config(settings, parse_tariff({}), tuple(piles), site=site)


def scenario(rng: random.Random, config: Config) -> list[ScenarioEvent]:
    raw = []
    cars = 0
    for _ in range(rng.randint(10, 40)):
        at = rng.randint(5 * 3600, 30 * 3600)
        roll = rng.random()
        if roll < 0.55:
            cars += 1
            car, letter = f"V{cars}", rng.choice("FT")
            kwh = Decimal(rng.randint(1, 400)) / 10
            raw.append((at, Kind.REQUEST, car, letter, kwh, f"(A,{car},{letter},{kwh})"))
        elif roll < 0.7 and cars:
            car = f"V{rng.randint(1, cars)}"
            raw.append((at, Kind.LEAVE, car, "O", None, f"(A,{car},O,0)"))
        elif roll < 0.8:
            pile = rng.choice(config.piles).name
            up = rng.random() < 0.5
            kind = Kind.RECOVER if up else Kind.FAULT
            raw.append((at, kind, pile, "O", None, f"(B,{pile},O,{int(up)})"))
        else:
            kw = Decimal(rng.randint(0, 600)) / 10
            raw.append((at, Kind.SITE, "SITE", "O", kw, f"(L,SITE,O,{kw})"))
    raw.sort(key=lambda e: e[0])
    return [ScenarioEvent(n, *e) for n, e in enumerate(raw, start=1)]


def check_snapshots(config: Config, replay: Replay) -> None:
    rated = {p.name: p.power_w for p in config.piles}
    for snap in replay.result.snapshots:
        assert snap.site is not None
        available_w, used_w = snap.site
        assert used_w == sum(p.power_w for p in snap.piles) <= available_w
        for pile in snap.piles:
            assert 0 <= pile.power_w <= rated[pile.name]
            if pile.cars and pile.cars[0].paused:
                assert pile.power_w == 0
            if pile.power_w:
                assert pile.cars and not pile.cars[0].paused


def check_meters(replay: Replay) -> None:
    result = replay.result
    billed = {p.id: Fraction(0) for p in replay.station.piles}
    for bill in result.bills:
        billed[bill.pile_id] += bill.energy
    now = replay.supply.at
    for pile in replay.station.piles:
        if pile.meter is not None:
            billed[pile.id] += pile.port.session_energy(now)
    assert replay.meters() == billed


@pytest.mark.parametrize("seed", range(60))
def test_fast_paths_change_nothing(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    config = station(rng)
    events = scenario(rng, config)
    fast = Replay(config)
    fast.run(events)
    check_snapshots(config, fast)
    check_meters(fast)
    with monkeypatch.context() as patch:
        patch.setattr(supply, "SitePiles", StepPiles)
        plain = Replay(config)
        plain.run(events)
    check_meters(plain)
    with monkeypatch.context() as patch:
        patch.setattr(dispatch, "_near_soonest", lambda st, wanted, piles, now: piles)
        exact = Replay(config)
        exact.run(events)
    assert dumps(fast.result) == dumps(plain.result) == dumps(exact.result)
    held = [[(s.car, s.pile, s.paused) for s in r.result.open_sessions] for r in (fast, plain)]
    assert held[0] == held[1]
