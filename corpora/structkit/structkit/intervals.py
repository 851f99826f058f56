"""Sorted sets of half-open intervals and interval scheduling helpers."""

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

from .heap import BinaryHeap

Interval = tuple[int, int]


def _check(start: int, end: int) -> None:
    if start > end:
        raise ValueError(f"invalid interval [{start}, {end})")


class IntervalSet:
    """A set of numbers represented as disjoint half-open intervals.

    Intervals are kept sorted and normalised: overlapping or touching
    intervals are merged, so ``[1, 3)`` and ``[3, 5)`` become ``[1, 5)``.
    """

    def __init__(self, intervals: Iterable[Interval] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in intervals:
            self.add(start, end)

    def __iter__(self) -> Iterator[Interval]:
        return zip(self._starts, self._ends)

    def __len__(self) -> int:
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return self._starts == other._starts and self._ends == other._ends

    def __repr__(self) -> str:
        return f"IntervalSet({list(self)!r})"

    def copy(self) -> "IntervalSet":
        clone = IntervalSet()
        clone._starts = list(self._starts)
        clone._ends = list(self._ends)
        return clone

    def add(self, start: int, end: int) -> None:
        """Include ``[start, end)``, merging with neighbours."""
        _check(start, end)
        if start == end:
            return
        first = bisect_left(self._ends, start)
        last = bisect_right(self._starts, end)
        if first < last:
            start = min(start, self._starts[first])
            end = max(end, self._ends[last - 1])
        self._starts[first:last] = [start]
        self._ends[first:last] = [end]

    def remove(self, start: int, end: int) -> None:
        """Exclude ``[start, end)``, splitting intervals where needed."""
        _check(start, end)
        if start == end:
            return
        first = bisect_right(self._ends, start)
        last = bisect_left(self._starts, end)
        if first >= last:
            return
        new_starts: list[int] = []
        new_ends: list[int] = []
        if self._starts[first] < start:
            new_starts.append(self._starts[first])
            new_ends.append(start)
        if self._ends[last - 1] > end:
            new_starts.append(end)
            new_ends.append(self._ends[last - 1])
        self._starts[first:last] = new_starts
        self._ends[first:last] = new_ends

    def __contains__(self, point: int) -> bool:
        index = bisect_right(self._starts, point) - 1
        return index >= 0 and point < self._ends[index]

    def overlapping(self, start: int, end: int) -> list[Interval]:
        """Stored intervals that share at least one point with ``[start, end)``."""
        _check(start, end)
        if start == end:
            return []
        first = bisect_right(self._ends, start)
        last = bisect_left(self._starts, end)
        return list(zip(self._starts[first:last], self._ends[first:last]))

    def overlaps(self, start: int, end: int) -> bool:
        return bool(self.overlapping(start, end))

    def covers(self, start: int, end: int) -> bool:
        """True when every point of ``[start, end)`` is in the set."""
        _check(start, end)
        if start == end:
            return True
        index = bisect_right(self._starts, start) - 1
        return index >= 0 and self._ends[index] >= end

    @property
    def total_length(self) -> int:
        return sum(end - start for start, end in self)

    @property
    def bounds(self) -> Interval | None:
        """``(min, max)`` of the whole set, or None when empty."""
        if not self._starts:
            return None
        return self._starts[0], self._ends[-1]

    def complement(self, low: int, high: int) -> "IntervalSet":
        """Points of ``[low, high)`` that are not in the set."""
        _check(low, high)
        result = IntervalSet([(low, high)])
        for start, end in self.overlapping(low, high):
            result.remove(start, end)
        return result

    def union(self, other: "IntervalSet") -> "IntervalSet":
        result = self.copy()
        for start, end in other:
            result.add(start, end)
        return result

    def difference(self, other: "IntervalSet") -> "IntervalSet":
        result = self.copy()
        for start, end in other:
            result.remove(start, end)
        return result

    def intersection(self, other: "IntervalSet") -> "IntervalSet":
        result = IntervalSet()
        i = j = 0
        mine, theirs = list(self), list(other)
        while i < len(mine) and j < len(theirs):
            start = max(mine[i][0], theirs[j][0])
            end = min(mine[i][1], theirs[j][1])
            if start < end:
                result.add(start, end)
            if mine[i][1] < theirs[j][1]:
                i += 1
            else:
                j += 1
        return result

    __or__ = union
    __and__ = intersection
    __sub__ = difference


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Merge overlapping or touching intervals into a sorted list."""
    return list(IntervalSet(intervals))


def max_concurrency(intervals: Iterable[Interval]) -> int:
    """The largest number of intervals that share a common point."""
    return len({room for room in assign_rooms(intervals)})


def assign_rooms(intervals: Iterable[Interval]) -> list[int]:
    """Assign each interval a room so that no room hosts overlapping intervals.

    Rooms are numbered from 0 and the minimum number of rooms is used.
    Intervals are processed by start time; a freed room with the lowest
    number is reused first.  The result lists the room of each interval in
    input order.
    """
    items = list(intervals)
    for start, end in items:
        _check(start, end)
    order = sorted(range(len(items)), key=lambda index: (items[index][0], items[index][1], index))
    busy = BinaryHeap()
    free = BinaryHeap()
    rooms = [0] * len(items)
    opened = 0
    for index in order:
        start, end = items[index]
        while busy and busy.peek()[0] <= start:
            free.push(busy.pop()[1])
        if free:
            room = free.pop()
        else:
            room = opened
            opened += 1
        rooms[index] = room
        busy.push((end, room))
    return rooms
