"""The replay's piles under a site limit (RULES §9): each draws exactly the power the rules
give its session, and every meter is kept exactly (REPLAY "Arithmetic").

Slowed sessions all draw the same power, the level, so they are kept together: `progress` is
what one of them would have received since the progress last started afresh, and a slowed
session's energy is its offset plus the progress. A change of the level is then one update
however many sessions share it, and the next of them to complete is the one with the lowest
target; only a session that moves between the level, a power of its own and a pause is touched
by itself (docs/site-power.md). Floats of the same values serve the rules' quick estimates.
"""

from __future__ import annotations

from fractions import Fraction
from heapq import heappop, heappush

from controller.sharing import Power, Shares
from controller.units import exact_quotient

Tick = int | Fraction
Energy = int | Fraction

# How a pile's open session draws: at the level, at a power of its own, or not at all.
SLOWED, STEADY, IDLE = 0, 1, 2


class SitePiles:
    """Every pile of the station, drawing the power of the rules' last sharing."""

    def __init__(self, pile_ids: list[int]) -> None:
        n = len(pile_ids)
        self.pile_ids = pile_ids
        self.at: Tick = 0  # the last instant the progress was brought up to
        self.level: Power = 0  # what each slowed session draws since `at`
        self.progress: Energy = 0
        self.open = [False] * n
        self.how = [IDLE] * n
        # SLOWED: energy - progress; STEADY: energy at `since`; IDLE: energy.
        self.offset: list[Energy] = [0] * n
        self.power: list[Power] = [0] * n  # STEADY
        self.since: list[Tick] = [0] * n  # STEADY
        self.limit: list[Energy] = [0] * n  # the session's energy limit: the car's amount
        self.billed: list[Energy] = [0] * n  # energy of the pile's ended sessions
        # Bumped whenever a pile's way of drawing changes: older predictions are stale.
        self.epoch = [0] * n
        self._slowed_due: list[tuple[Energy, int, int]] = []  # (progress target, epoch, pile)
        self._steady_due: list[tuple[Tick, int, int]] = []  # (completion instant, epoch, pile)
        # The same, as floats: each set from its exact value, so it stays within a rounding.
        self._at_f = self._level_f = self._progress_f = 0.0
        self._offset_f = [0.0] * n
        self._power_f = [0.0] * n
        self._since_f = [0.0] * n
        self._next: Tick | None = None  # next_completion's answer, while _next_known
        self._next_known = False

    # -- the pile contract (controller.station.PilePort) ---------------------------------------
    def start(self, i: int, now_tick: Tick, limit: Energy) -> None:
        self._catch_up(now_tick)
        self._next_known = False
        self.open[i] = True
        self.how[i] = IDLE  # until the rules' next sharing says what it draws
        self.offset[i] = 0
        self._offset_f[i] = 0.0
        self.limit[i] = limit
        self.epoch[i] += 1

    def stop(self, i: int, now_tick: Tick) -> Energy:
        energy = self.energy(i, now_tick)
        if type(energy) is Fraction and energy.denominator == 1:
            energy = energy.numerator  # whole (a completion's amount): its bill stays in ints
        self._next_known = False
        self.open[i] = False
        self.how[i] = IDLE
        self.offset[i] = 0
        self.billed[i] += energy
        self.epoch[i] += 1
        return energy

    def energy(self, i: int, now_tick: Tick) -> Energy:
        """The energy of pile i's open session at now_tick (never before the last update)."""
        how = self.how[i]
        if how == SLOWED:
            self._catch_up(now_tick)
            return self.offset[i] + self.progress
        if how == STEADY:
            return self.offset[i] + self.power[i] * (now_tick - self.since[i])
        return self.offset[i]

    def energy_guess(self, i: int, now: float) -> float:
        """About energy(i, now), quickly: a float from floats (now in float ticks)."""
        how = self.how[i]
        if how == SLOWED:
            return self._offset_f[i] + self._progress_f + self._level_f * (now - self._at_f)
        if how == STEADY:
            return self._offset_f[i] + self._power_f[i] * (now - self._since_f[i])
        return self._offset_f[i]

    def meter(self, i: int, now_tick: Tick) -> Energy:
        """Everything pile i has delivered, its open session's energy included."""
        return self.billed[i] + (self.energy(i, now_tick) if self.open[i] else 0)

    # -- the rules' sharing ------------------------------------------------------------------
    def apply(self, now_tick: Tick, shares: Shares) -> None:
        """From now_tick on, every open session draws what `shares` gives it."""
        self._catch_up(now_tick)
        self._next_known = False
        slowed = shares.slowed
        powers = shares.powers
        for i, pile_id in enumerate(self.pile_ids):
            if not self.open[i]:
                continue
            how = self.how[i]
            if pile_id in slowed:
                if how != SLOWED:
                    self._slow(i, now_tick)
                continue
            power = powers.get(pile_id, 0)
            if power == 0:
                if how != IDLE:
                    self.offset[i] = self.energy(i, now_tick)
                    self._offset_f[i] = float(self.offset[i])
                    self.how[i] = IDLE
                    self.epoch[i] += 1
            elif how != STEADY or self.power[i] != power:
                self._steady(i, now_tick, power)
        self.level = shares.level or 0
        self._level_f = float(self.level)
        if not slowed:
            # Nobody refers to the progress: start it afresh, so its fractions stay short.
            self.progress = 0
            self._progress_f = 0.0

    def _slow(self, i: int, now_tick: Tick) -> None:
        energy = self.energy(i, now_tick)
        self.how[i] = SLOWED
        self.offset[i] = energy - self.progress
        self._offset_f[i] = float(self.offset[i])
        self.epoch[i] += 1
        heappush(self._slowed_due, (self.limit[i] - self.offset[i], self.epoch[i], i))

    def _steady(self, i: int, now_tick: Tick, power: Power) -> None:
        energy = self.energy(i, now_tick)
        self.how[i] = STEADY
        self.offset[i] = energy
        self.power[i] = power
        self.since[i] = now_tick
        self._offset_f[i] = float(energy)
        self._power_f[i] = float(power)
        self._since_f[i] = float(now_tick)
        self.epoch[i] += 1
        finish = now_tick + exact_quotient(self.limit[i] - energy, power)
        heappush(self._steady_due, (finish, self.epoch[i], i))

    def _catch_up(self, now_tick: Tick) -> None:
        if now_tick != self.at:
            if self.level:
                self.progress += self.level * (now_tick - self.at)
                self._progress_f = float(self.progress)
            self.at = now_tick
            self._at_f = float(now_tick)

    # -- completions -------------------------------------------------------------------------
    def next_completion(self) -> Tick | None:
        """When the next session reaches its amount at the present powers, if one draws."""
        if self._next_known:
            return self._next
        steady = self._steady_due
        while steady and steady[0][1] != self.epoch[steady[0][2]]:
            heappop(steady)
        slowed = self._slowed_due
        while slowed and slowed[0][1] != self.epoch[slowed[0][2]]:
            heappop(slowed)
        tick = steady[0][0] if steady else None
        if slowed and self.level:
            due = self.at + exact_quotient(slowed[0][0] - self.progress, self.level)
            if tick is None or due < tick:
                tick = due
        self._next = tick
        self._next_known = True
        return tick

    def completing(self, tick: Tick) -> list[int]:
        """The piles (indices, in configuration order) whose sessions reach their amounts at
        tick, the instant next_completion gave."""
        self._next_known = False
        done = set()
        steady = self._steady_due
        while steady and steady[0][0] == tick:
            _, epoch, i = heappop(steady)
            if epoch == self.epoch[i]:
                done.add(i)
        if self.level:
            self._catch_up(tick)
            slowed = self._slowed_due
            while slowed and slowed[0][0] <= self.progress:
                _, epoch, i = heappop(slowed)
                if epoch == self.epoch[i]:
                    done.add(i)
        return sorted(done)


class SitePort:
    """The pile contract (controller.station.PilePort) of one of the SitePiles."""

    __slots__ = ("_i", "_piles")

    def __init__(self, piles: SitePiles, i: int) -> None:
        self._piles = piles
        self._i = i

    def start_session(self, now_tick: int, limit: int) -> None:
        self._piles.start(self._i, now_tick, limit)

    def stop_session(self, now_tick: int) -> int:
        return self._piles.stop(self._i, now_tick)  # type: ignore[return-value]

    def session_energy(self, now_tick: int) -> int:
        return self._piles.energy(self._i, now_tick)  # type: ignore[return-value]
