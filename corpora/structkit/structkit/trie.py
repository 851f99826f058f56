"""A prefix tree mapping strings to values."""

from collections.abc import Iterable, Iterator
from typing import Any

from .heap import nlargest

_MISSING = object()


class _TrieNode:
    __slots__ = ("children", "value", "terminal", "count")

    def __init__(self) -> None:
        self.children: dict[str, _TrieNode] = {}
        self.value: Any = None
        self.terminal = False
        self.count = 0


class Trie:
    """A mapping from strings to values supporting prefix queries.

    Each node records how many keys live below it so that
    :meth:`count_prefix` runs in time proportional to the prefix length.
    """

    def __init__(self, items: Iterable[tuple[str, Any]] | dict = ()) -> None:
        self._root = _TrieNode()
        pairs = items.items() if isinstance(items, dict) else items
        for key, value in pairs:
            self[key] = value

    def _node(self, prefix: str) -> _TrieNode | None:
        node = self._root
        for char in prefix:
            node = node.children.get(char)
            if node is None:
                return None
        return node

    def __len__(self) -> int:
        return self._root.count

    def __contains__(self, key: str) -> bool:
        node = self._node(key)
        return node is not None and node.terminal

    def __getitem__(self, key: str) -> Any:
        node = self._node(key)
        if node is None or not node.terminal:
            raise KeyError(key)
        return node.value

    def get(self, key: str, default: Any = None) -> Any:
        node = self._node(key)
        if node is None or not node.terminal:
            return default
        return node.value

    def __setitem__(self, key: str, value: Any) -> None:
        self.insert(key, value)

    def insert(self, key: str, value: Any = None) -> bool:
        """Store ``value`` under ``key``; return True if the key is new."""
        if key in self:
            self._node(key).value = value
            return False
        node = self._root
        node.count += 1
        for char in key:
            node = node.children.setdefault(char, _TrieNode())
            node.count += 1
        node.terminal = True
        node.value = value
        return True

    def __delitem__(self, key: str) -> None:
        self.remove(key)

    def remove(self, key: str) -> Any:
        """Delete ``key`` and return its value, pruning empty branches."""
        target = self._node(key)
        if target is None or not target.terminal:
            raise KeyError(key)
        value = target.value
        target.terminal = False
        target.value = None
        node = self._root
        node.count -= 1
        for char in key:
            child = node.children[char]
            child.count -= 1
            if child.count == 0:
                del node.children[char]
                break
            node = child
        return value

    def has_prefix(self, prefix: str) -> bool:
        """True when at least one key starts with ``prefix``."""
        node = self._node(prefix)
        return node is not None and node.count > 0

    def count_prefix(self, prefix: str) -> int:
        """Number of keys starting with ``prefix``."""
        node = self._node(prefix)
        return 0 if node is None else node.count

    def _walk(self, node: _TrieNode, path: list[str]) -> Iterator[tuple[str, Any]]:
        if node.terminal:
            yield "".join(path), node.value
        for char in sorted(node.children):
            path.append(char)
            yield from self._walk(node.children[char], path)
            path.pop()

    def items(self, prefix: str = "") -> list[tuple[str, Any]]:
        """``(key, value)`` pairs with the given prefix in lexicographic order."""
        node = self._node(prefix)
        if node is None:
            return []
        return list(self._walk(node, list(prefix)))

    def keys(self, prefix: str = "") -> list[str]:
        """Keys with the given prefix in lexicographic order."""
        return [key for key, _ in self.items(prefix)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def prefixes_of(self, text: str) -> list[str]:
        """Every stored key that is a prefix of ``text``, shortest first."""
        found = []
        node = self._root
        if node.terminal:
            found.append("")
        for index, char in enumerate(text):
            node = node.children.get(char)
            if node is None:
                break
            if node.terminal:
                found.append(text[:index + 1])
        return found

    def longest_prefix_of(self, text: str) -> str | None:
        """The longest stored key that is a prefix of ``text``, or None."""
        found = self.prefixes_of(text)
        return found[-1] if found else None

    def top_k(self, prefix: str, k: int) -> list[str]:
        """The ``k`` keys under ``prefix`` with the largest numeric values.

        Ties are broken alphabetically.  Keys whose value is None count
        as zero.
        """
        candidates = self.items(prefix)
        best = nlargest(k, candidates, key=lambda pair: pair[1] or 0)
        return [key for key, _ in best]

    def common_prefix(self) -> str:
        """The longest prefix shared by every key."""
        path = []
        node = self._root
        while len(node.children) == 1 and not node.terminal:
            char, node = next(iter(node.children.items()))
            path.append(char)
        return "".join(path) if self._root.count else ""
