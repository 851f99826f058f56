"""Myers' O(ND) shortest-edit-script algorithm.

The public functions operate on arbitrary sequences of hashable items and
describe the result as a list of matched index pairs ``(i, j)`` meaning
``a[i] == b[j]`` is kept by the edit script.  Pairs are strictly increasing
in both coordinates.
"""

from collections.abc import Sequence


def _forward(a: Sequence, b: Sequence) -> list[dict[int, int]]:
    """Run the greedy forward pass and return the snapshot of each round.

    ``trace[d]`` holds the furthest reaching x coordinate for every
    diagonal ``k`` as it was *before* round ``d`` was computed.
    """
    n, m = len(a), len(b)
    frontier: dict[int, int] = {1: 0}
    trace: list[dict[int, int]] = []
    for d in range(n + m + 1):
        trace.append(dict(frontier))
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and frontier[k - 1] < frontier[k + 1]):
                x = frontier[k + 1]
            else:
                x = frontier[k - 1] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            frontier[k] = x
            if x >= n and y >= m:
                return trace
    raise RuntimeError("edit graph search did not terminate")


def _backtrack(trace: list[dict[int, int]], n: int, m: int) -> list[tuple[int, int]]:
    """Walk the recorded trace backwards and collect the diagonal moves."""
    x, y = n, m
    matches: list[tuple[int, int]] = []
    for d in range(len(trace) - 1, -1, -1):
        frontier = trace[d]
        k = x - y
        if k == -d or (k != d and frontier[k - 1] < frontier[k + 1]):
            prev_k = k + 1
        else:
            prev_k = k - 1
        prev_x = frontier[prev_k]
        prev_y = prev_x - prev_k
        while x > prev_x and y > prev_y:
            x -= 1
            y -= 1
            matches.append((x, y))
        x, y = prev_x, prev_y
    matches.reverse()
    return matches


def myers_matches(a: Sequence, b: Sequence) -> list[tuple[int, int]]:
    """Return the matched index pairs of a shortest edit script."""
    if not a or not b:
        return []
    return _backtrack(_forward(a, b), len(a), len(b))


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Number of insertions plus deletions needed to turn ``a`` into ``b``."""
    if not a or not b:
        return len(a) + len(b)
    return len(_forward(a, b)) - 1
