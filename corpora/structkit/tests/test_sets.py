import unittest

import pytest

from structkit.intervals import IntervalSet, assign_rooms, max_concurrency, merge_intervals
from structkit.unionfind import DisjointSet


def test_add_merges_touching_and_overlapping():
    spans = IntervalSet([(1, 3), (3, 5), (8, 10), (4, 6)])
    assert list(spans) == [(1, 6), (8, 10)]
    assert spans.total_length == 7


def test_remove_splits_interval():
    spans = IntervalSet([(0, 10)])
    spans.remove(3, 5)
    assert list(spans) == [(0, 3), (5, 10)]
    spans.remove(-5, 1)
    spans.remove(9, 20)
    assert list(spans) == [(1, 3), (5, 9)]


def test_point_membership_is_half_open():
    spans = IntervalSet([(2, 4)])
    assert [point in spans for point in range(1, 6)] == [False, True, True, False, False]


def test_set_algebra():
    a = IntervalSet([(0, 5), (10, 15)])
    b = IntervalSet([(3, 12)])
    assert list(a | b) == [(0, 15)]
    assert list(a & b) == [(3, 5), (10, 12)]
    assert list(a - b) == [(0, 3), (12, 15)]
    assert list(b - a) == [(5, 10)]


def test_invalid_interval():
    with pytest.raises(ValueError, match=r"invalid interval \[5, 2\)"):
        IntervalSet([(5, 2)])


def test_room_assignment_reuses_lowest_free_room():
    meetings = [(9, 10), (9, 12), (10, 11), (11, 13), (12, 14)]
    assert assign_rooms(meetings) == [0, 1, 0, 0, 1]
    assert max_concurrency(meetings) == 2
    assert max_concurrency([]) == 0


def test_union_find_basics():
    groups = DisjointSet("abcde")
    assert groups.union("a", "b")
    assert groups.union("c", "d")
    assert not groups.union("b", "a")
    assert groups.component_count == 3
    assert groups.groups() == [["a", "b"], ["c", "d"], ["e"]]


class IntervalSetTest(unittest.TestCase):
    def setUp(self):
        self.spans = IntervalSet([(0, 4), (6, 8), (12, 20)])

    def test_overlapping_query(self):
        self.assertEqual(self.spans.overlapping(3, 13), [(0, 4), (6, 8), (12, 20)])
        self.assertEqual(self.spans.overlapping(4, 6), [])
        self.assertFalse(self.spans.overlaps(8, 12))
        self.assertTrue(self.spans.overlaps(7, 9))

    def test_covers(self):
        self.assertTrue(self.spans.covers(12, 20))
        self.assertFalse(self.spans.covers(3, 7))
        self.assertTrue(self.spans.covers(5, 5))

    def test_complement_within_bounds(self):
        self.assertEqual(list(self.spans.complement(-2, 15)), [(-2, 0), (4, 6), (8, 12)])

    def test_bounds_and_equality(self):
        self.assertEqual(self.spans.bounds, (0, 20))
        self.assertIsNone(IntervalSet().bounds)
        self.assertEqual(self.spans, IntervalSet([(12, 16), (0, 2), (2, 4), (6, 8), (15, 20)]))
        self.assertEqual(repr(IntervalSet([(1, 2)])), "IntervalSet([(1, 2)])")

    def test_empty_intervals_are_ignored(self):
        copy = self.spans.copy()
        copy.add(30, 30)
        copy.remove(2, 2)
        self.assertEqual(copy, self.spans)
        self.assertEqual(len(copy), 3)

    def test_merge_intervals(self):
        self.assertEqual(merge_intervals([(5, 7), (1, 2), (2, 3), (6, 9)]), [(1, 3), (5, 9)])


class DisjointSetTest(unittest.TestCase):
    def test_sizes_follow_unions(self):
        groups = DisjointSet()
        for a, b in [(1, 2), (3, 4), (2, 3), (5, 6)]:
            groups.union(a, b)
        self.assertEqual(groups.size_of(4), 4)
        self.assertEqual(groups.size_of(6), 2)
        self.assertEqual(len(groups), 6)
        self.assertTrue(groups.connected(1, 4))
        self.assertFalse(groups.connected(1, 5))

    def test_strict_mode_rejects_unknown_elements(self):
        groups = DisjointSet(["x"], auto_add=False)
        with self.assertRaises(KeyError):
            groups.find("y")
        self.assertFalse(groups.connected("x", "y"))
        self.assertFalse(groups.add("x"))

    def test_long_chain_is_compressed(self):
        groups = DisjointSet(range(100))
        for n in range(99):
            groups.union(n, n + 1)
        root = groups.find(0)
        self.assertTrue(all(groups.find(n) == root for n in range(100)))
        self.assertEqual(groups.component_count, 1)
        self.assertEqual(groups.groups(), [list(range(100))])
