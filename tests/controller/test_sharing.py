"""The sharing of a site's power (RULES §9), worked by hand: equal shares under the ratings,
the water level, minimums that pause the session that started last, ties, and 0 available."""

from __future__ import annotations

from fractions import Fraction

import pytest

from controller.config import Config, PileConfig, StationSettings, default_config, parse_tariff
from controller.replay.runner import Replay
from controller.sharing import Session, share
from controller.site_config import SiteSettings
from controller.station import Refused
from controller.values import Mode


def session(pile_id: int, rated_kw: float, start: int = 0, min_kw: float = 0) -> Session:
    """A session at the pile with this id (listed in id order), opened at tick `start`."""
    return Session(pile_id, pile_id - 1, int(rated_kw * 1000), int(min_kw * 1000), start)


def test_equal_shares_under_the_ratings() -> None:
    # 40 kW over piles of 30, 30 and 7 kW: 7 fits below an equal third (40/3 = 13.3), so the
    # 7 kW pile gets its 7 and the other two share 40 - 7 = 33: 16.5 each (< 30).
    shares = share([session(1, 30), session(2, 30), session(3, 7)], 40_000)
    assert shares.powers == {1: 16_500, 2: 16_500, 3: 7_000}
    assert shares.level == 16_500
    assert shares.slowed == {1, 2}
    assert shares.paused == frozenset()
    assert shares.used_w == 40_000


def test_every_session_at_its_rating_when_they_fit() -> None:
    # The default station: 2 x 30 + 3 x 7 = 81 kW under a limit of 81 kW.
    sessions = [session(1, 30), session(2, 30), session(3, 7), session(4, 7), session(5, 7)]
    shares = share(sessions, 81_000)
    assert shares.powers == {1: 30_000, 2: 30_000, 3: 7_000, 4: 7_000, 5: 7_000}
    assert shares.level is None and shares.slowed == frozenset()


def test_a_share_that_is_not_whole_watts_stays_exact() -> None:
    # 40 kW over three 30 kW piles: 40000/3 W each, and the three add up to exactly 40 kW.
    shares = share([session(1, 30), session(2, 30), session(3, 30)], 40_000)
    assert set(shares.powers.values()) == {Fraction(40_000, 3)}
    assert shares.used_w == 40_000


def test_nothing_available_gives_every_session_zero_but_pauses_none() -> None:
    # RULES §9: with a minimum of 0 a session is never paused; at a share of 0 it draws 0.
    shares = share([session(1, 30), session(2, 7)], 0)
    assert shares.powers == {1: 0, 2: 0}
    assert shares.paused == frozenset()
    assert shares.slowed == {1, 2}


def test_the_last_started_below_its_minimum_is_paused_and_the_rest_share_again() -> None:
    # 40 kW: pile 1 (30 kW, min 20, opened at tick 0), pile 2 (30 kW, min 20, tick 10),
    # pile 3 (7 kW). First sharing: 7, and 33/2 = 16.5 for piles 1 and 2, both below 20: the
    # later one, pile 2, is paused. Again without it: 7 + 30 = 37 <= 40, both at their ratings.
    sessions = [session(1, 30, 0, 20), session(2, 30, 10, 20), session(3, 7, 5)]
    shares = share(sessions, 40_000)
    assert shares.powers == {1: 30_000, 2: 0, 3: 7_000}
    assert shares.paused == {2}


def test_a_share_equal_to_the_minimum_is_enough() -> None:
    # 40 kW over two 30 kW piles with a minimum of 20: 20 each, not paused.
    shares = share([session(1, 30, 0, 20), session(2, 30, 1, 20)], 40_000)
    assert shares.powers == {1: 20_000, 2: 20_000}
    assert shares.paused == frozenset()


def test_a_session_below_its_minimum_pauses_even_when_started_first() -> None:
    # Only sessions below their minimum are candidates: pile 1 (7 kW, min 5, opened first)
    # and pile 2 (30 kW, no minimum, opened later) under 8 kW: 7 * 2 = 14 > 8, so both get
    # 4 kW; pile 1 is below its 5 and the only one below: paused. Pile 2 then gets all 8 kW.
    shares = share([session(1, 7, 0, 5), session(2, 30, 100)], 8_000)
    assert shares.powers == {1: 0, 2: 8_000}
    assert shares.paused == {1}


def test_a_tie_of_starts_pauses_the_pile_listed_last() -> None:
    # Three 30 kW piles (min 20) opened at the same instant under 30 kW: 10 each, all below:
    # pile 3 (listed last) is paused; then 15 each, both below: pile 2 is paused; pile 1 alone
    # gets 30. The order the sessions are given in does not matter.
    sessions = [session(3, 30, 7, 20), session(1, 30, 7, 20), session(2, 30, 7, 20)]
    shares = share(sessions, 30_000)
    assert shares.powers == {1: 30_000, 2: 0, 3: 0}
    assert shares.paused == {2, 3}


def test_a_minimum_above_the_rating_always_pauses() -> None:
    # REPLAY: min_power_kw above the rated power: that pile's sessions are always paused,
    # whatever is available.
    shares = share([session(1, 7, 0, 8), session(2, 30, 5)], 1_000_000)
    assert shares.powers == {1: 0, 2: 30_000}
    assert shares.paused == {1}


def test_the_rules_tell_each_sessions_share_after_every_event() -> None:
    """The station's `shares`: what the live loop will ask (pile id -> exact watts)."""
    piles = (
        PileConfig(1, "F1", Mode.FAST, 30_000),
        PileConfig(2, "F2", Mode.FAST, 30_000, min_power_w=20_000),
        PileConfig(3, "T1", Mode.COMMON, 7_000),
    )
    config = Config(StationSettings(), parse_tariff({}), piles, site=SiteSettings(40_000))
    st = Replay(config).station
    kwh = st.units.energy_per_kwh
    st.request(0, "V1", Mode.FAST, 30 * kwh)  # -> F1
    assert st.shares.powers == {1: 30_000}
    st.request(0, "V2", Mode.COMMON, 7 * kwh)  # -> T1
    st.request(0, "V3", Mode.FAST, 30 * kwh)  # -> F2: 1 h rather than F1's 1 + 1 h
    # 7 for T1; F1 and F2 share 33: 16.5 each, below F2's minimum of 20 (F1 has none): F2 is
    # paused, and F1 gets its 30 (7 + 30 <= 40).
    assert st.shares.powers == {1: 30_000, 2: 0, 3: 7_000}
    assert st.shares.paused == {2}
    # An operator's profile lowers the limit to 20 kW: 20/3 each (T1's 7 does not fit), F2
    # below its 20: paused; then T1 7 fits (7 x 2 <= 20) and F1 gets 20 - 7 = 13.
    st.site_limit(0, 20_000)
    assert st.shares.powers == {1: 13_000, 2: 0, 3: 7_000}
    # The grid meter sees 25 kW of other load: nothing is left.
    st.site_load(0, 25_000)
    assert st.shares.available_w == 0
    assert st.shares.powers == {1: 0, 2: 0, 3: 0}


def test_without_a_site_limit_there_are_no_shares() -> None:
    st = Replay(default_config()).station
    st.request(0, "V1", Mode.FAST, 30 * st.units.energy_per_kwh)
    assert st.shares.powers == {}
    with pytest.raises(Refused) as refused:
        st.site_load(0, 1_000)
    assert refused.value.error == "no_site_limit"
