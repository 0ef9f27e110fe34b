"""The exact assignment solver behind RULES §7, checked against brute force."""

from __future__ import annotations

from itertools import permutations

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.assign import min_cost_assignment


def brute_force(cost: list[list[int]]) -> int:
    n, m = len(cost), len(cost[0])
    return min(sum(cost[i][cols[i]] for i in range(n)) for cols in permutations(range(m), n))


@st.composite
def matrices(draw: st.DrawFn) -> list[list[int]]:
    n = draw(st.integers(1, 5))
    m = draw(st.integers(n, 6))
    return [[draw(st.integers(0, 50)) for _ in range(m)] for _ in range(n)]


@settings(max_examples=200, derandomize=True)
@given(matrices())
def test_assignment_is_optimal_and_uses_each_column_once(cost: list[list[int]]) -> None:
    cols = min_cost_assignment(cost)
    assert len(set(cols)) == len(cost)
    assert sum(cost[i][c] for i, c in enumerate(cols)) == brute_force(cost)


def test_small_known_case() -> None:
    # Row 0 is cheap everywhere but row 1 is cheap only in column 0.
    assert min_cost_assignment([[1, 2], [1, 100]]) == [1, 0]
    assert min_cost_assignment([]) == []
