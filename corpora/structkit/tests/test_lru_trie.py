import unittest

import pytest

from structkit.lru import LRUCache, memoize
from structkit.trie import Trie


def test_lru_evicts_least_recently_used():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    assert cache.put("c", 3) == ("b", 2)
    assert cache.keys() == ["c", "a"]


def test_peek_does_not_refresh():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.peek("a") == 1
    cache.put("c", 3)
    assert "a" not in cache
    assert cache.items() == [("c", 3), ("b", 2)]


def test_eviction_callback_and_stats():
    evicted = []
    cache = LRUCache(1, on_evict=lambda key, value: evicted.append((key, value)))
    cache.put("x", 10)
    cache.put("y", 20)
    assert cache.get("x") is None
    assert cache.get("y") == 20
    assert evicted == [("x", 10)]
    assert (cache.stats.hits, cache.stats.misses, cache.stats.evictions) == (1, 1, 1)
    assert cache.stats.hit_ratio == 0.5


def test_invalid_capacity():
    with pytest.raises(ValueError):
        LRUCache(0)


def test_memoize_counts_calls():
    calls = []

    @memoize(capacity=2)
    def square(n):
        calls.append(n)
        return n * n

    assert [square(3), square(3), square(4), square(5), square(3)] == [9, 9, 16, 25, 9]
    assert calls == [3, 4, 5, 3]
    assert square.cache.keys() == [((3,), ()), ((5,), ())]


def test_trie_prefix_queries():
    trie = Trie({"car": 5, "cart": 9, "care": 9, "cat": 1, "dog": 3})
    assert trie.keys("car") == ["car", "care", "cart"]
    assert trie.count_prefix("ca") == 4
    assert trie.top_k("ca", 2) == ["care", "cart"]
    assert trie.longest_prefix_of("cartography") == "cart"


class LRUCacheTest(unittest.TestCase):
    def setUp(self):
        self.cache = LRUCache(3)
        for key in "abc":
            self.cache.put(key, key.upper())

    def test_put_existing_key_refreshes_without_eviction(self):
        self.assertIsNone(self.cache.put("a", "A2"))
        self.assertEqual(self.cache.items(), [("a", "A2"), ("c", "C"), ("b", "B")])

    def test_pop(self):
        self.assertEqual(self.cache.pop("b"), "B")
        self.assertEqual(self.cache.pop("b", "gone"), "gone")
        with self.assertRaises(KeyError):
            self.cache.pop("b")
        self.assertEqual(len(self.cache), 2)

    def test_resize_evicts_oldest(self):
        self.cache.get("a")
        self.assertEqual(self.cache.resize(1), [("b", "B"), ("c", "C")])
        self.assertEqual(self.cache.keys(), ["a"])
        self.assertEqual(self.cache.capacity, 1)

    def test_clear(self):
        self.cache.clear()
        self.assertEqual(len(self.cache), 0)
        self.assertEqual(self.cache.items(), [])
        self.cache.put("z", 1)
        self.assertEqual(self.cache.keys(), ["z"])

    def test_repr(self):
        self.assertEqual(
            repr(self.cache),
            "LRUCache(capacity=3, items=[('c', 'C'), ('b', 'B'), ('a', 'A')])",
        )


class TrieTest(unittest.TestCase):
    def setUp(self):
        self.trie = Trie()
        for word in ["tea", "ten", "to", "inn", "in", "i"]:
            self.trie.insert(word, len(word))

    def test_len_and_membership(self):
        self.assertEqual(len(self.trie), 6)
        self.assertIn("ten", self.trie)
        self.assertNotIn("te", self.trie)
        self.assertTrue(self.trie.has_prefix("te"))
        self.assertFalse(self.trie.has_prefix("tx"))

    def test_insert_existing_key_replaces_value(self):
        self.assertFalse(self.trie.insert("to", 99))
        self.assertEqual(self.trie["to"], 99)
        self.assertEqual(len(self.trie), 6)

    def test_remove_prunes_branches(self):
        self.assertEqual(self.trie.remove("inn"), 3)
        self.assertEqual(self.trie.count_prefix("in"), 1)
        self.assertFalse(self.trie.has_prefix("inn"))
        del self.trie["i"]
        self.assertEqual(list(self.trie), ["in", "tea", "ten", "to"])
        with self.assertRaises(KeyError):
            self.trie.remove("i")

    def test_prefixes_of(self):
        self.assertEqual(self.trie.prefixes_of("innkeeper"), ["i", "in", "inn"])
        self.assertIsNone(self.trie.longest_prefix_of("xyz"))

    def test_items_and_get(self):
        self.assertEqual(self.trie.items("t"), [("tea", 3), ("ten", 3), ("to", 2)])
        self.assertEqual(self.trie.get("tex", "none"), "none")
        with self.assertRaises(KeyError):
            self.trie["te"]

    def test_common_prefix(self):
        self.assertEqual(Trie([("interval", 1), ("internal", 2), ("internet", 3)]).common_prefix(), "inter")
        self.assertEqual(Trie().common_prefix(), "")
        self.assertEqual(self.trie.top_k("", 3), ["inn", "tea", "ten"])
