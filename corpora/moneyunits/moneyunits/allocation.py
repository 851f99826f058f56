"""Split integer amounts by ratios without creating or losing units.

All functions work on integers (minor units such as cents); the
:class:`~moneyunits.money.Money` type builds on them.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

from .numeric import to_fraction


def _normalise_ratios(ratios: Sequence) -> list[Fraction]:
    if not ratios:
        raise ValueError("at least one ratio is required")
    values = [to_fraction(ratio) for ratio in ratios]
    if any(value < 0 for value in values):
        raise ValueError("ratios must not be negative")
    if sum(values) == 0:
        raise ValueError("ratios must not all be zero")
    return values


def allocate(total: int, ratios: Sequence) -> list[int]:
    """Split ``total`` proportionally to ``ratios`` (largest remainder method).

    The parts always add up to ``total``.  Leftover units go to the parts
    with the largest fractional remainders; ties favour earlier parts.
    Negative totals are split symmetrically.
    """
    if not isinstance(total, int) or isinstance(total, bool):
        raise TypeError("total must be an integer number of units")
    weights = _normalise_ratios(ratios)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    weight_sum = sum(weights)
    exact = [magnitude * weight / weight_sum for weight in weights]
    parts = [math.floor(share) for share in exact]
    leftover = magnitude - sum(parts)
    order = sorted(range(len(parts)), key=lambda i: (-(exact[i] - parts[i]), i))
    for index in order[:leftover]:
        parts[index] += 1
    return [sign * part for part in parts]


def split_evenly(total: int, count: int) -> list[int]:
    """Split ``total`` into ``count`` parts differing by at most one unit."""
    if not isinstance(count, int) or count < 1:
        raise ValueError("count must be a positive integer")
    return allocate(total, [1] * count)


def allocate_with_minimum(total: int, ratios: Sequence, minimum: int) -> list[int]:
    """Like :func:`allocate`, but every part receives at least ``minimum``.

    The minimum is handed out first and the rest is split by ratio.
    """
    count = len(ratios)
    if minimum < 0:
        raise ValueError("minimum must not be negative")
    if total < minimum * count:
        raise ValueError(f"cannot give {count} parts at least {minimum} out of {total}")
    rest = allocate(total - minimum * count, ratios)
    return [minimum + part for part in rest]
