"""Exact minimum-cost assignment of rows to columns (the Hungarian method, integer costs).

Extended dispatch (RULES §7) must minimise the sum of finish times exactly, not greedily; with
one column per free place this is the classic assignment problem.
"""

from __future__ import annotations


def min_cost_assignment(cost: list[list[int]]) -> list[int]:
    """For an n x m matrix (n <= m), the column of each row in an assignment of least total cost.

    O(n^2 m) shortest augmenting paths with potentials; integer costs keep it exact.
    """
    n = len(cost)
    if n == 0:
        return []
    m = len(cost[0])
    if m < n:
        raise ValueError("more rows than columns")
    inf = float("inf")
    u = [0] * (n + 1)
    v = [0] * (m + 1)
    match = [0] * (m + 1)  # match[j] = row (1-based) in column j, 0 if free
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        match[0] = i
        j0 = 0
        minv = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = match[j0]
            delta = inf
            j1 = 0
            row = cost[i0 - 1]
            for j in range(1, m + 1):
                if not used[j]:
                    cur = row[j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[match[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    result = [0] * n
    for j in range(1, m + 1):
        if match[j]:
            result[match[j] - 1] = j - 1
    return result
