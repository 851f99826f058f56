"""Breadth-first and depth-first traversals, cycle detection and topological order."""

from collections import deque

from .graph import CycleError, Graph, NoPathError, Node
from .heap import BinaryHeap


def _require(graph: Graph, node: Node) -> None:
    if node not in graph:
        raise KeyError(node)


def bfs(graph: Graph, start: Node) -> list[Node]:
    """Nodes reachable from ``start`` in breadth-first order."""
    return [node for layer in bfs_layers(graph, start) for node in layer]


def bfs_layers(graph: Graph, start: Node) -> list[list[Node]]:
    """Reachable nodes grouped by their hop distance from ``start``."""
    _require(graph, start)
    seen = {start}
    layers = [[start]]
    while True:
        following = []
        for node in layers[-1]:
            for neighbor in graph.neighbors(node):
                if neighbor not in seen:
                    seen.add(neighbor)
                    following.append(neighbor)
        if not following:
            return layers
        layers.append(following)


def hop_path(graph: Graph, start: Node, goal: Node) -> list[Node]:
    """A path from ``start`` to ``goal`` with the fewest edges."""
    _require(graph, start)
    _require(graph, goal)
    parents: dict[Node, Node | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = [node]
            while parents[path[-1]] is not None:
                path.append(parents[path[-1]])
            return path[::-1]
        for neighbor in graph.neighbors(node):
            if neighbor not in parents:
                parents[neighbor] = node
                queue.append(neighbor)
    raise NoPathError(f"no path from {start!r} to {goal!r}")


def dfs(graph: Graph, start: Node) -> list[Node]:
    """Depth-first preorder from ``start``, matching the recursive definition."""
    _require(graph, start)
    order: list[Node] = []
    seen: set[Node] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        for neighbor in reversed(graph.neighbors(node)):
            if neighbor not in seen:
                stack.append(neighbor)
    return order


def find_cycle(graph: Graph) -> list[Node] | None:
    """Return one cycle as a closed node list (first == last), or None.

    For undirected graphs a cycle needs at least three distinct nodes or a
    self-loop; walking an edge back and forth does not count.
    """
    state: dict[Node, int] = {}
    for root in graph.nodes():
        if root in state:
            continue
        parent: dict[Node, Node | None] = {root: None}
        stack = [(root, iter(graph.neighbors(root)))]
        state[root] = 1
        while stack:
            node, neighbors = stack[-1]
            advanced = False
            for neighbor in neighbors:
                if not graph.directed and neighbor == parent[node] and neighbor != node:
                    continue
                if state.get(neighbor) == 1:
                    cycle = [neighbor]
                    walker = node
                    while walker != neighbor:
                        cycle.append(walker)
                        walker = parent[walker]
                    cycle.append(neighbor)
                    return cycle[::-1]
                if neighbor not in state:
                    state[neighbor] = 1
                    parent[neighbor] = node
                    stack.append((neighbor, iter(graph.neighbors(neighbor))))
                    advanced = True
                    break
            if not advanced:
                state[node] = 2
                stack.pop()
    return None


def topological_sort(graph: Graph) -> list[Node]:
    """Kahn's algorithm; among ready nodes the earliest inserted comes first.

    Raises :class:`CycleError` (carrying one offending cycle) when the graph
    is not a DAG.
    """
    if not graph.directed:
        raise ValueError("topological order requires a directed graph")
    remaining = {node: graph.in_degree(node) for node in graph.nodes()}
    ready = BinaryHeap((node for node, degree in remaining.items() if degree == 0), key=graph.order_of)
    order: list[Node] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for neighbor in graph.neighbors(node):
            remaining[neighbor] -= 1
            if remaining[neighbor] == 0:
                ready.push(neighbor)
    if len(order) != len(graph):
        stuck = graph.subgraph(node for node in graph.nodes() if remaining[node] > 0)
        raise CycleError(find_cycle(stuck) or [])
    return order


def is_dag(graph: Graph) -> bool:
    return graph.directed and find_cycle(graph) is None
