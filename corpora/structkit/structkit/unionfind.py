"""Disjoint-set forest with union by size and path halving."""

from collections.abc import Hashable, Iterable


class DisjointSet:
    """Partition of hashable elements into disjoint groups.

    Elements are added lazily: :meth:`find` and :meth:`union` create
    singleton sets for unknown elements when ``auto_add`` is true.
    """

    def __init__(self, elements: Iterable[Hashable] = (), auto_add: bool = True) -> None:
        self._parent: dict[Hashable, Hashable] = {}
        self._size: dict[Hashable, int] = {}
        self._auto_add = auto_add
        self._components = 0
        for element in elements:
            self.add(element)

    def add(self, element: Hashable) -> bool:
        """Add ``element`` as a singleton; return False if it already exists."""
        if element in self._parent:
            return False
        self._parent[element] = element
        self._size[element] = 1
        self._components += 1
        return True

    def __contains__(self, element: Hashable) -> bool:
        return element in self._parent

    def __len__(self) -> int:
        return len(self._parent)

    @property
    def component_count(self) -> int:
        return self._components

    def find(self, element: Hashable) -> Hashable:
        """Representative of the set containing ``element``."""
        if element not in self._parent:
            if not self._auto_add:
                raise KeyError(element)
            self.add(element)
            return element
        parent = self._parent
        while parent[element] != element:
            parent[element] = parent[parent[element]]
            element = parent[element]
        return element

    def union(self, a: Hashable, b: Hashable) -> bool:
        """Merge the sets of ``a`` and ``b``; return False if already joined."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return False
        if self._size[root_a] < self._size[root_b]:
            root_a, root_b = root_b, root_a
        self._parent[root_b] = root_a
        self._size[root_a] += self._size.pop(root_b)
        self._components -= 1
        return True

    def connected(self, a: Hashable, b: Hashable) -> bool:
        """True when ``a`` and ``b`` belong to the same set."""
        if not self._auto_add and (a not in self._parent or b not in self._parent):
            return False
        return self.find(a) == self.find(b)

    def size_of(self, element: Hashable) -> int:
        """Number of elements in the set containing ``element``."""
        return self._size[self.find(element)]

    def groups(self) -> list[list[Hashable]]:
        """All sets, each listed in insertion order, ordered by first element."""
        by_root: dict[Hashable, list[Hashable]] = {}
        for element in self._parent:
            by_root.setdefault(self.find(element), []).append(element)
        return list(by_root.values())
