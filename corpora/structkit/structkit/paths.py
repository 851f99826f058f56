"""Weighted shortest paths, connectivity and spanning trees."""

from typing import Any

from .graph import Graph, GraphError, NoPathError, Node
from .heap import BinaryHeap, PriorityQueue
from .unionfind import DisjointSet


def dijkstra(graph: Graph, source: Node) -> tuple[dict[Node, Any], dict[Node, Node]]:
    """Single-source shortest distances and predecessor links.

    Returns ``(distances, previous)``; unreachable nodes are absent from
    both.  Raises :class:`GraphError` on a negative edge weight.  Results are
    cached on the graph until it is modified.
    """
    if source not in graph:
        raise KeyError(source)
    key = ("dijkstra", source)
    cached = graph.path_cache.get(key)
    if cached is None:
        cached = _dijkstra(graph, source)
        graph.path_cache.put(key, cached)
    distances, previous = cached
    return dict(distances), dict(previous)


def _dijkstra(graph: Graph, source: Node) -> tuple[dict[Node, Any], dict[Node, Node]]:
    distances: dict[Node, Any] = {source: 0}
    previous: dict[Node, Node] = {}
    settled: set[Node] = set()
    queue = PriorityQueue()
    queue.push(source, 0)
    while queue:
        node, distance = queue.pop()
        settled.add(node)
        for neighbor, weight in graph.neighbor_items(node):
            if weight < 0:
                raise GraphError(f"negative weight on edge {node!r} -> {neighbor!r}")
            if neighbor in settled:
                continue
            candidate = distance + weight
            if neighbor not in distances or candidate < distances[neighbor]:
                distances[neighbor] = candidate
                previous[neighbor] = node
                queue.push_or_decrease(neighbor, candidate)
    return distances, previous


def shortest_path(graph: Graph, source: Node, target: Node) -> tuple[Any, list[Node]]:
    """``(cost, nodes)`` of a cheapest path from ``source`` to ``target``."""
    if target not in graph:
        raise KeyError(target)
    distances, previous = dijkstra(graph, source)
    if target not in distances:
        raise NoPathError(f"no path from {source!r} to {target!r}")
    path = [target]
    while path[-1] != source:
        path.append(previous[path[-1]])
    path.reverse()
    return distances[target], path


def connected_components(graph: Graph) -> list[list[Node]]:
    """Connected components (weakly connected for directed graphs)."""
    groups = DisjointSet(graph.nodes())
    for u, v, _ in graph.edges():
        groups.union(u, v)
    return groups.groups()


def minimum_spanning_tree(graph: Graph) -> list[tuple[Node, Node, Any]]:
    """Kruskal's algorithm; returns a minimum spanning forest's edges.

    Equal weights are resolved by edge insertion order.
    """
    if graph.directed:
        raise GraphError("spanning trees are defined for undirected graphs")
    edges = graph.edges()
    candidates = BinaryHeap(range(len(edges)), key=lambda index: (edges[index][2], index))
    forest = DisjointSet(graph.nodes())
    chosen = []
    while candidates and len(chosen) < len(graph) - 1:
        u, v, weight = edges[candidates.pop()]
        if forest.union(u, v):
            chosen.append((u, v, weight))
    return chosen


def spanning_weight(graph: Graph) -> Any:
    """Total weight of :func:`minimum_spanning_tree`."""
    return sum(weight for _, _, weight in minimum_spanning_tree(graph))


def eccentricity(graph: Graph, node: Node) -> Any:
    """Largest shortest-path distance from ``node`` to any node.

    Raises :class:`NoPathError` if some node is unreachable.
    """
    distances, _ = dijkstra(graph, node)
    if len(distances) != len(graph):
        missing = next(other for other in graph.nodes() if other not in distances)
        raise NoPathError(f"{missing!r} is unreachable from {node!r}")
    return max(distances.values())
