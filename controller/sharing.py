"""Sharing the site's power among the open sessions (RULES §9): equal shares, none above its
pile's rated power, and minimums that pause the session that started last.

Powers are exact: whole watts, or a Fraction of a watt when an equal share does not come out
whole (40 kW over three slowed sessions is 40000/3 W each).
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from operator import attrgetter

Power = int | Fraction  # watts, exact


# Plain classes rather than NamedTuples: they cost the replay's start a fraction as much.
class Session:
    """An open session, as the sharing sees it."""

    __slots__ = ("index", "min_w", "pile_id", "rated_w", "start_tick")

    def __init__(
        self, pile_id: int, index: int, rated_w: int, min_w: int, start_tick: int | Fraction
    ) -> None:
        self.pile_id = pile_id
        self.index = index  # the pile's place in the configuration: a tie pauses the last
        self.rated_w = rated_w
        self.min_w = min_w
        self.start_tick = start_tick  # when the session opened (its bill's start)


class Shares:
    """Each open session's power from one instant on, until something that enters it changes."""

    __slots__ = ("available_w", "level", "paused", "powers", "slowed")

    def __init__(
        self,
        available_w: int,
        level: Power | None,
        powers: dict[int, Power],
        slowed: frozenset[int],
        paused: frozenset[int],
    ) -> None:
        self.available_w = available_w
        # The power of every slowed session (the equal share); None when the ratings fit.
        self.level = level
        self.powers = powers  # pile id -> watts, for every open session (0 when paused)
        self.slowed = slowed  # pile ids of the sessions held at the level, below their rating
        self.paused = paused  # pile ids of the paused sessions

    def power_w(self, pile_id: int) -> Power:
        """The power of the pile's session; 0 if it has none or it is paused."""
        return self.powers.get(pile_id, 0)

    @property
    def used_w(self) -> Power:
        return sum(self.powers.values())


NO_SHARES = Shares(0, None, {}, frozenset(), frozenset())
_RATED = attrgetter("rated_w")


class SiteState:
    """The site's limit in force, what its other consumers draw, and the shares they leave the
    open sessions (RULES §9)."""

    __slots__ = ("limit_w", "other_load_w", "shares", "stale", "version")

    def __init__(self, limit_w: int) -> None:
        self.limit_w = limit_w
        self.other_load_w = 0  # until something says otherwise (RULES §9)
        self.shares = NO_SHARES
        self.version = 0  # counts the sharings
        self.stale = True  # something that enters the sharing changed since the last one

    @property
    def available_w(self) -> int:
        return max(0, self.limit_w - self.other_load_w)

    def set_other_load(self, other_load_w: int) -> None:
        self.other_load_w = other_load_w
        self.stale = True

    def set_limit(self, limit_w: int) -> None:
        self.limit_w = limit_w
        self.stale = True

    def reshare(self, sessions: list[Session]) -> None:
        """Share the power anew among the open sessions."""
        self.shares = share(sessions, self.available_w)
        self.version += 1
        self.stale = False


def share(sessions: Iterable[Session], available_w: int) -> Shares:
    """The shares of `available_w` (whole watts, at least 0) among the open sessions.

    Each session gets min(rated, level), the level being the largest at which the shares add up
    to at most available_w. While a session's share is below its pile's minimum, the session
    that started last among those below theirs is paused (ties: the pile listed last) and the
    sharing starts again without it (RULES §9).
    """
    active = sorted(sessions, key=_RATED)
    paused: list[Session] = []
    while True:
        capped, rest_w, slowed = _fill(active, available_w)
        below = [s for s in active[:capped] if s.rated_w < s.min_w]
        if slowed:
            # A slowed session's share is rest_w / slowed: below min_w when min_w * slowed is more.
            below += [s for s in active[capped:] if s.min_w * slowed > rest_w]
        if not below:
            break
        last = max(below, key=_started)
        active.remove(last)
        paused.append(last)
    powers: dict[int, Power] = {s.pile_id: s.rated_w for s in active[:capped]}
    level: Power | None = None
    if slowed:
        level = rest_w // slowed if rest_w % slowed == 0 else Fraction(rest_w, slowed)
        for s in active[capped:]:
            powers[s.pile_id] = level
    for s in paused:
        powers[s.pile_id] = 0
    return Shares(
        available_w,
        level,
        powers,
        frozenset(s.pile_id for s in active[capped:]),
        frozenset(s.pile_id for s in paused),
    )


def _fill(active: list[Session], available_w: int) -> tuple[int, int, int]:
    """Water-filling over sessions sorted by rated power: (how many of the first ones get their
    rated power, the watts left for the others, how many others share them equally)."""
    left_w = available_w
    count = len(active)
    for i, s in enumerate(active):
        # s fits if its rating is at most an equal share of what is left: every later session
        # is rated at least as high, so if s does not fit, none of them does.
        if s.rated_w * (count - i) > left_w:
            return i, left_w, count - i
        left_w -= s.rated_w
    return count, left_w, 0


def _started(s: Session) -> tuple[int | Fraction, int]:
    return s.start_tick, s.index
