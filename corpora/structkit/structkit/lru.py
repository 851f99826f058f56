"""A least-recently-used cache built on a hash map and a doubly linked list."""

import functools
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

_MISSING = object()


class _Node:
    __slots__ = ("key", "value", "prev", "next")

    def __init__(self, key: Any = None, value: Any = None) -> None:
        self.key = key
        self.value = value
        self.prev: "_Node" = self
        self.next: "_Node" = self


@dataclass
class CacheStats:
    """Counters describing how a cache has been used."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0


class LRUCache:
    """Fixed-capacity mapping that evicts the least recently used entry.

    ``get`` and ``put`` count as uses; ``peek`` and ``in`` do not.  When an
    entry is evicted the optional ``on_evict(key, value)`` callback runs.
    """

    def __init__(self, capacity: int, on_evict: Callable[[Any, Any], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._on_evict = on_evict
        self._map: dict[Hashable, _Node] = {}
        self._root = _Node()
        self.stats = CacheStats()

    @property
    def capacity(self) -> int:
        return self._capacity

    def _unlink(self, node: _Node) -> None:
        node.prev.next = node.next
        node.next.prev = node.prev

    def _push_front(self, node: _Node) -> None:
        first = self._root.next
        node.prev = self._root
        node.next = first
        first.prev = node
        self._root.next = node

    def _touch(self, node: _Node) -> None:
        self._unlink(node)
        self._push_front(node)

    def _evict_oldest(self) -> tuple[Any, Any]:
        oldest = self._root.prev
        self._unlink(oldest)
        del self._map[oldest.key]
        self.stats.evictions += 1
        if self._on_evict is not None:
            self._on_evict(oldest.key, oldest.value)
        return oldest.key, oldest.value

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._map

    def get(self, key: Hashable, default: Any = None) -> Any:
        """Return the cached value and mark it as most recently used."""
        node = self._map.get(key)
        if node is None:
            self.stats.misses += 1
            return default
        self.stats.hits += 1
        self._touch(node)
        return node.value

    def peek(self, key: Hashable, default: Any = None) -> Any:
        """Return the cached value without changing recency or statistics."""
        node = self._map.get(key)
        return default if node is None else node.value

    def put(self, key: Hashable, value: Any) -> tuple[Any, Any] | None:
        """Store ``value``; return the evicted ``(key, value)`` pair if any."""
        node = self._map.get(key)
        if node is not None:
            node.value = value
            self._touch(node)
            return None
        node = _Node(key, value)
        self._map[key] = node
        self._push_front(node)
        if len(self._map) > self._capacity:
            return self._evict_oldest()
        return None

    def pop(self, key: Hashable, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (no eviction callback)."""
        node = self._map.pop(key, None)
        if node is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        self._unlink(node)
        return node.value

    def resize(self, capacity: int) -> list[tuple[Any, Any]]:
        """Change the capacity, evicting old entries as needed."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        evicted = []
        while len(self._map) > capacity:
            evicted.append(self._evict_oldest())
        return evicted

    def clear(self) -> None:
        """Drop every entry without calling the eviction callback."""
        self._map.clear()
        self._root.prev = self._root.next = self._root

    def keys(self) -> list:
        """Keys from most to least recently used."""
        return [key for key, _ in self.items()]

    def items(self) -> list[tuple[Any, Any]]:
        """``(key, value)`` pairs from most to least recently used."""
        return list(self._iter_nodes())

    def _iter_nodes(self) -> Iterator[tuple[Any, Any]]:
        node = self._root.next
        while node is not self._root:
            yield node.key, node.value
            node = node.next

    def __repr__(self) -> str:
        return f"LRUCache(capacity={self._capacity}, items={self.items()!r})"


def memoize(capacity: int = 128) -> Callable:
    """Decorator caching a function's results in an :class:`LRUCache`.

    Arguments must be hashable; keyword arguments are part of the key.  The
    cache is exposed as ``wrapper.cache``.
    """

    def decorate(function: Callable) -> Callable:
        cache = LRUCache(capacity)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = (args, tuple(sorted(kwargs.items())))
            result = cache.get(key, _MISSING)
            if result is _MISSING:
                result = function(*args, **kwargs)
                cache.put(key, result)
            return result

        wrapper.cache = cache  # type: ignore[attr-defined]
        return wrapper

    return decorate
