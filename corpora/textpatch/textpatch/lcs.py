"""Dynamic-programming longest common subsequence.

This quadratic algorithm is simpler than Myers' and serves both as an
alternative diff engine and as a reference implementation.
"""

from collections.abc import Sequence


def _suffix_table(a: Sequence, b: Sequence) -> list[list[int]]:
    """``table[i][j]`` is the LCS length of ``a[i:]`` and ``b[j:]``."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row = table[i]
        below = table[i + 1]
        item = a[i]
        for j in range(m - 1, -1, -1):
            if item == b[j]:
                row[j] = below[j + 1] + 1
            else:
                row[j] = max(below[j], row[j + 1])
    return table


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence using two rolling rows."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for item in a:
        current = [0] * (len(b) + 1)
        for j, other in enumerate(b):
            if item == other:
                current[j + 1] = previous[j] + 1
            else:
                current[j + 1] = max(previous[j + 1], current[j])
        previous = current
    return previous[-1]


def lcs_matches(a: Sequence, b: Sequence) -> list[tuple[int, int]]:
    """Matched index pairs of one longest common subsequence.

    Ties are broken by preferring to skip items of ``a`` first, which puts
    deletions before insertions in the resulting edit script.
    """
    if not a or not b:
        return []
    table = _suffix_table(a, b)
    i = j = 0
    matches: list[tuple[int, int]] = []
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            matches.append((i, j))
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return matches


def lcs(a: Sequence, b: Sequence) -> list:
    """Return the items of one longest common subsequence of ``a`` and ``b``."""
    return [a[i] for i, _ in lcs_matches(a, b)]
