import unittest

import pytest

from structkit.heap import BinaryHeap, EmptyHeapError, PriorityQueue, merge_sorted, nlargest, nsmallest


def test_heap_pops_in_sorted_order():
    heap = BinaryHeap([5, 1, 4, 1, 5, 9, 2, 6])
    assert list(heap.drain()) == [1, 1, 2, 4, 5, 5, 6, 9]
    assert len(heap) == 0


def test_max_heap_with_key():
    words = ["pear", "fig", "banana", "kiwi"]
    heap = BinaryHeap(words, key=len, reverse=True)
    assert heap.sorted_items() == ["banana", "pear", "kiwi", "fig"]
    assert heap.peek() == "banana"
    assert len(heap) == 4


def test_equal_keys_leave_in_insertion_order():
    heap = BinaryHeap(key=lambda pair: pair[0])
    for pair in [(2, "a"), (1, "b"), (2, "c"), (1, "d")]:
        heap.push(pair)
    assert [label for _, label in heap.drain()] == ["b", "d", "a", "c"]


def test_pushpop_and_replace():
    heap = BinaryHeap([3, 7])
    assert heap.pushpop(1) == 1
    assert heap.pushpop(5) == 3
    assert heap.replace(0) == 5
    assert heap.sorted_items() == [0, 7]


def test_empty_heap_errors():
    heap = BinaryHeap()
    with pytest.raises(EmptyHeapError):
        heap.pop()
    with pytest.raises(EmptyHeapError):
        heap.peek()
    with pytest.raises(IndexError):
        heap.replace(1)


def test_nsmallest_and_nlargest_are_stable():
    records = [("ann", 3), ("bob", 1), ("cid", 3), ("dan", 2), ("eve", 3)]
    assert nsmallest(2, records, key=lambda r: r[1]) == [("bob", 1), ("dan", 2)]
    assert nlargest(2, records, key=lambda r: r[1]) == [("ann", 3), ("cid", 3)]
    assert nlargest(0, records) == []


def test_merge_sorted():
    assert merge_sorted([1, 4, 9], [2, 3, 10], [], [0]) == [0, 1, 2, 3, 4, 9, 10]
    assert merge_sorted(["b", "d"], ["a", "c"], key=str.upper) == ["a", "b", "c", "d"]


class PriorityQueueTest(unittest.TestCase):
    def setUp(self):
        self.queue = PriorityQueue()
        for item, priority in [("write", 5), ("test", 3), ("ship", 9), ("plan", 1)]:
            self.queue.push(item, priority)

    def test_pop_returns_item_and_priority(self):
        self.assertEqual(self.queue.pop(), ("plan", 1))
        self.assertEqual(self.queue.peek(), ("test", 3))
        self.assertEqual(len(self.queue), 3)

    def test_update_moves_items_both_ways(self):
        self.queue.update("ship", 0)
        self.queue.update("plan", 10)
        order = [self.queue.pop()[0] for _ in range(4)]
        self.assertEqual(order, ["ship", "test", "write", "plan"])

    def test_remove_from_the_middle(self):
        self.assertEqual(self.queue.remove("test"), 3)
        self.assertNotIn("test", self.queue)
        self.assertEqual([self.queue.pop()[0] for _ in range(3)], ["plan", "write", "ship"])

    def test_duplicate_push_is_rejected(self):
        with self.assertRaises(ValueError):
            self.queue.push("plan", 4)

    def test_push_or_decrease(self):
        self.assertFalse(self.queue.push_or_decrease("test", 7))
        self.assertTrue(self.queue.push_or_decrease("write", 2))
        self.assertTrue(self.queue.push_or_decrease("deploy", 4))
        self.assertEqual(self.queue.priority("write"), 2)
        self.assertEqual(
            [self.queue.pop() for _ in range(5)],
            [("plan", 1), ("write", 2), ("test", 3), ("deploy", 4), ("ship", 9)],
        )

    def test_pushpop_is_not_supported(self):
        with self.assertRaises(NotImplementedError):
            self.queue.pushpop("x")

    def test_empty_queue(self):
        queue = PriorityQueue()
        with self.assertRaises(EmptyHeapError):
            queue.pop()
        with self.assertRaises(KeyError):
            queue.remove("missing")
