"""Weighted directed or undirected graphs over hashable nodes.

Nodes and edges remember their insertion order, and every algorithm in
structkit visits neighbours in that order, so results never depend on hash
ordering.
"""

from collections.abc import Hashable, Iterable
from typing import Any

from .lru import LRUCache

Node = Hashable


class GraphError(Exception):
    """Base class for graph errors."""


class CycleError(GraphError):
    """Raised when an acyclic graph was required but a cycle exists."""

    def __init__(self, cycle: list) -> None:
        self.cycle = cycle
        super().__init__("graph contains a cycle: " + " -> ".join(str(node) for node in cycle))


class NoPathError(GraphError):
    """Raised when no path connects two nodes."""


class Graph:
    """Adjacency-map graph with optional direction and numeric weights.

    Results of expensive path computations are memoised in
    :attr:`path_cache`, which is cleared on every structural change.
    """

    def __init__(self, directed: bool = False, cache_size: int = 16) -> None:
        self.directed = directed
        self._succ: dict[Node, dict[Node, Any]] = {}
        self._pred: dict[Node, dict[Node, Any]] = {}
        self._order: dict[Node, int] = {}
        self._next_index = 0
        self.path_cache = LRUCache(cache_size)

    @classmethod
    def from_edges(cls, edges: Iterable[tuple], directed: bool = False) -> "Graph":
        """Build a graph from ``(u, v)`` or ``(u, v, weight)`` tuples."""
        graph = cls(directed=directed)
        for edge in edges:
            if len(edge) == 2:
                graph.add_edge(edge[0], edge[1])
            else:
                graph.add_edge(edge[0], edge[1], edge[2])
        return graph

    def _changed(self) -> None:
        self.path_cache.clear()

    def add_node(self, node: Node) -> bool:
        """Add ``node``; return False if it was already present."""
        if node in self._succ:
            return False
        self._succ[node] = {}
        self._pred[node] = {} if self.directed else self._succ[node]
        self._order[node] = self._next_index
        self._next_index += 1
        self._changed()
        return True

    def add_edge(self, u: Node, v: Node, weight: Any = 1) -> None:
        """Add or re-weight the edge ``u -> v`` (both ways if undirected)."""
        self.add_node(u)
        self.add_node(v)
        self._succ[u][v] = weight
        self._pred[v][u] = weight
        self._changed()

    def remove_edge(self, u: Node, v: Node) -> None:
        if not self.has_edge(u, v):
            raise KeyError((u, v))
        del self._succ[u][v]
        if v in self._pred and u in self._pred[v]:
            del self._pred[v][u]
        self._changed()

    def remove_node(self, node: Node) -> None:
        """Remove ``node`` and all edges touching it."""
        if node not in self._succ:
            raise KeyError(node)
        for other in list(self._succ[node]):
            self._pred[other].pop(node, None)
        for other in list(self._pred[node]):
            self._succ[other].pop(node, None)
        del self._succ[node]
        del self._pred[node]
        del self._order[node]
        self._changed()

    def __contains__(self, node: Node) -> bool:
        return node in self._succ

    def __len__(self) -> int:
        return len(self._succ)

    def order_of(self, node: Node) -> int:
        """Insertion index of ``node``, used for deterministic tie-breaking."""
        return self._order[node]

    def nodes(self) -> list[Node]:
        return list(self._succ)

    def has_edge(self, u: Node, v: Node) -> bool:
        return u in self._succ and v in self._succ[u]

    def weight(self, u: Node, v: Node) -> Any:
        try:
            return self._succ[u][v]
        except KeyError:
            raise KeyError((u, v)) from None

    def neighbors(self, node: Node) -> list[Node]:
        """Successors of ``node`` (all adjacent nodes if undirected)."""
        return list(self._succ[node])

    def neighbor_items(self, node: Node) -> list[tuple[Node, Any]]:
        return list(self._succ[node].items())

    def predecessors(self, node: Node) -> list[Node]:
        return list(self._pred[node])

    def out_degree(self, node: Node) -> int:
        return len(self._succ[node])

    def in_degree(self, node: Node) -> int:
        return len(self._pred[node])

    def edges(self) -> list[tuple[Node, Node, Any]]:
        """Every edge once, as ``(u, v, weight)`` in insertion order."""
        result = []
        for u, targets in self._succ.items():
            for v, weight in targets.items():
                if self.directed or self._order[u] <= self._order[v]:
                    result.append((u, v, weight))
        return result

    @property
    def edge_count(self) -> int:
        return len(self.edges())

    def reversed(self) -> "Graph":
        """A copy with every edge direction flipped."""
        graph = Graph(directed=self.directed)
        for node in self._succ:
            graph.add_node(node)
        for u, v, weight in self.edges():
            if self.directed:
                graph.add_edge(v, u, weight)
            else:
                graph.add_edge(u, v, weight)
        return graph

    def subgraph(self, nodes: Iterable[Node]) -> "Graph":
        """The graph induced by ``nodes`` (kept in this graph's order)."""
        wanted = set(nodes)
        graph = Graph(directed=self.directed)
        for node in self._succ:
            if node in wanted:
                graph.add_node(node)
        for u, v, weight in self.edges():
            if u in wanted and v in wanted:
                graph.add_edge(u, v, weight)
        return graph
