"""Binary heaps and an addressable priority queue.

:class:`BinaryHeap` is a stable min-heap (or max-heap with ``reverse=True``)
over arbitrary items ordered by a key function.  Items with equal keys come
out in insertion order, which keeps every algorithm built on top of it
deterministic.

:class:`PriorityQueue` additionally tracks where each item lives so that
priorities can be changed or items removed in logarithmic time.
"""

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any


class EmptyHeapError(IndexError):
    """Raised when reading from an empty heap or queue."""


def _identity(item: Any) -> Any:
    return item


class BinaryHeap:
    """A stable binary heap ordered by ``key(item)``."""

    def __init__(
        self,
        items: Iterable = (),
        key: Callable[[Any], Any] | None = None,
        reverse: bool = False,
    ) -> None:
        self._key = key or _identity
        self._reverse = reverse
        self._counter = 0
        self._data: list[list] = []
        for item in items:
            self._data.append(self._entry(self._key(item), item))
        self._heapify()

    def _entry(self, priority: Any, item: Any) -> list:
        entry = [priority, self._counter, item]
        self._counter += 1
        return entry

    def _before(self, a: list, b: list) -> bool:
        """True when entry ``a`` must leave the heap before entry ``b``."""
        if a[0] != b[0]:
            return a[0] > b[0] if self._reverse else a[0] < b[0]
        return a[1] < b[1]

    def _place(self, index: int, entry: list) -> None:
        self._data[index] = entry

    def _sift_up(self, index: int) -> None:
        entry = self._data[index]
        while index > 0:
            parent = (index - 1) // 2
            if not self._before(entry, self._data[parent]):
                break
            self._place(index, self._data[parent])
            index = parent
        self._place(index, entry)

    def _sift_down(self, index: int) -> None:
        size = len(self._data)
        entry = self._data[index]
        while True:
            child = 2 * index + 1
            if child >= size:
                break
            right = child + 1
            if right < size and self._before(self._data[right], self._data[child]):
                child = right
            if not self._before(self._data[child], entry):
                break
            self._place(index, self._data[child])
            index = child
        self._place(index, entry)

    def _heapify(self) -> None:
        for index in range(len(self._data) // 2 - 1, -1, -1):
            self._sift_down(index)

    def _push_entry(self, entry: list) -> None:
        self._data.append(entry)
        self._sift_up(len(self._data) - 1)

    def _pop_entry(self) -> list:
        if not self._data:
            raise EmptyHeapError("pop from an empty heap")
        last = self._data.pop()
        if not self._data:
            return last
        top = self._data[0]
        self._place(0, last)
        self._sift_down(0)
        return top

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def push(self, item: Any) -> None:
        """Add ``item`` to the heap."""
        self._push_entry(self._entry(self._key(item), item))

    def peek(self) -> Any:
        """Return the first item without removing it."""
        if not self._data:
            raise EmptyHeapError("peek at an empty heap")
        return self._data[0][2]

    def pop(self) -> Any:
        """Remove and return the first item."""
        return self._pop_entry()[2]

    def pushpop(self, item: Any) -> Any:
        """Push ``item`` and then pop, faster than the two calls separately."""
        entry = self._entry(self._key(item), item)
        if not self._data or not self._before(self._data[0], entry):
            return item
        top = self._data[0]
        self._place(0, entry)
        self._sift_down(0)
        return top[2]

    def replace(self, item: Any) -> Any:
        """Pop the first item and then push ``item``."""
        if not self._data:
            raise EmptyHeapError("replace on an empty heap")
        top = self._data[0]
        self._place(0, self._entry(self._key(item), item))
        self._sift_down(0)
        return top[2]

    def drain(self) -> Iterator[Any]:
        """Pop every item in order."""
        while self._data:
            yield self.pop()

    def sorted_items(self) -> list:
        """All items in pop order, leaving the heap untouched."""
        clone = BinaryHeap(key=self._key, reverse=self._reverse)
        clone._data = [list(entry) for entry in self._data]
        clone._counter = self._counter
        return list(clone.drain())


def nsmallest(n: int, items: Iterable, key: Callable[[Any], Any] | None = None) -> list:
    """The ``n`` smallest items in ascending order (stable for ties)."""
    if n <= 0:
        return []
    keyed = key or _identity
    # Keep the n best seen so far in a max-heap; ties prefer earlier items.
    best = BinaryHeap(key=lambda pair: (keyed(pair[1]), pair[0]), reverse=True)
    for position, item in enumerate(items):
        pair = (position, item)
        if len(best) < n:
            best.push(pair)
        elif (keyed(item), position) < (keyed(best.peek()[1]), best.peek()[0]):
            best.replace(pair)
    return [pair[1] for pair in reversed(best.sorted_items())]


def nlargest(n: int, items: Iterable, key: Callable[[Any], Any] | None = None) -> list:
    """The ``n`` largest items in descending order (stable for ties)."""
    if n <= 0:
        return []
    keyed = key or _identity
    best = BinaryHeap(key=lambda pair: (keyed(pair[1]), -pair[0]))
    for position, item in enumerate(items):
        pair = (position, item)
        if len(best) < n:
            best.push(pair)
        elif (keyed(item), -position) > (keyed(best.peek()[1]), -best.peek()[0]):
            best.replace(pair)
    return [pair[1] for pair in reversed(best.sorted_items())]


def merge_sorted(*iterables: Iterable, key: Callable[[Any], Any] | None = None) -> list:
    """Merge already sorted iterables into one sorted list."""
    keyed = key or _identity
    iterators = [iter(iterable) for iterable in iterables]
    heap = BinaryHeap(key=lambda pair: (keyed(pair[1]), pair[0]))
    for source, iterator in enumerate(iterators):
        for item in iterator:
            heap.push((source, item))
            break
    merged = []
    while heap:
        source, item = heap.pop()
        merged.append(item)
        for following in iterators[source]:
            heap.push((source, following))
            break
    return merged


class PriorityQueue(BinaryHeap):
    """A min-priority queue of distinct hashable items.

    Unlike :class:`BinaryHeap`, items are pushed with an explicit priority
    that can later be changed with :meth:`update`, and any item can be
    removed with :meth:`remove`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._index: dict[Hashable, int] = {}

    def _place(self, index: int, entry: list) -> None:
        self._data[index] = entry
        self._index[entry[2]] = index

    def __contains__(self, item: Hashable) -> bool:
        return item in self._index

    def push(self, item: Hashable, priority: Any = 0) -> None:  # type: ignore[override]
        """Insert ``item`` with ``priority``; the item must not be queued yet."""
        if item in self._index:
            raise ValueError(f"{item!r} is already queued")
        entry = self._entry(priority, item)
        self._data.append(entry)
        self._index[item] = len(self._data) - 1
        self._sift_up(len(self._data) - 1)

    def pop(self) -> Any:
        """Remove the item with the lowest priority and return ``(item, priority)``."""
        entry = self._pop_entry()
        del self._index[entry[2]]
        return entry[2], entry[0]

    def peek(self) -> Any:
        if not self._data:
            raise EmptyHeapError("peek at an empty queue")
        return self._data[0][2], self._data[0][0]

    def pushpop(self, item: Any) -> Any:
        raise NotImplementedError("use push() and pop() on a PriorityQueue")

    replace = pushpop

    def priority(self, item: Hashable) -> Any:
        """Current priority of a queued item."""
        return self._data[self._index[item]][0]

    def update(self, item: Hashable, priority: Any) -> None:
        """Change the priority of a queued item in either direction."""
        index = self._index[item]
        entry = self._data[index]
        old = entry[0]
        entry[0] = priority
        if priority < old:
            self._sift_up(index)
        elif old < priority:
            self._sift_down(index)

    def push_or_decrease(self, item: Hashable, priority: Any) -> bool:
        """Queue ``item`` or lower its priority; return True if anything changed."""
        if item not in self._index:
            self.push(item, priority)
            return True
        if priority < self.priority(item):
            self.update(item, priority)
            return True
        return False

    def remove(self, item: Hashable) -> Any:
        """Remove ``item`` from the queue and return its priority."""
        index = self._index.pop(item)
        removed = self._data[index]
        last = self._data.pop()
        if index < len(self._data):
            self._place(index, last)
            self._sift_up(index)
            self._sift_down(self._index[last[2]])
        return removed[0]
