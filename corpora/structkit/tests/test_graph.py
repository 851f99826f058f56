import unittest

import pytest

from structkit import (
    CycleError,
    Graph,
    GraphError,
    NoPathError,
    bfs,
    bfs_layers,
    connected_components,
    dfs,
    dijkstra,
    eccentricity,
    find_cycle,
    hop_path,
    is_dag,
    minimum_spanning_tree,
    shortest_path,
    spanning_weight,
    topological_sort,
)


def road_map():
    return Graph.from_edges(
        [("a", "b", 4), ("a", "c", 1), ("c", "b", 2), ("b", "d", 1), ("c", "d", 5), ("e", "f", 1)]
    )


def clothing():
    return Graph.from_edges(
        [
            ("shirt", "tie"), ("tie", "jacket"), ("pants", "shoes"), ("pants", "belt"),
            ("belt", "jacket"), ("shirt", "belt"), ("socks", "shoes"),
        ],
        directed=True,
    )


def test_dijkstra_distances_and_predecessors():
    distances, previous = dijkstra(road_map(), "a")
    assert distances == {"a": 0, "c": 1, "b": 3, "d": 4}
    assert previous == {"c": "a", "b": "c", "d": "b"}


def test_shortest_path_prefers_cheaper_detour():
    assert shortest_path(road_map(), "a", "d") == (4, ["a", "c", "b", "d"])


def test_unreachable_target():
    with pytest.raises(NoPathError, match="no path from 'a' to 'e'"):
        shortest_path(road_map(), "a", "e")


def test_negative_weight_is_rejected():
    graph = Graph.from_edges([("s", "t", -2)], directed=True)
    with pytest.raises(GraphError, match="negative weight on edge 's' -> 't'"):
        dijkstra(graph, "s")


def test_topological_sort_uses_insertion_order_for_ties():
    assert topological_sort(clothing()) == ["shirt", "tie", "pants", "belt", "jacket", "socks", "shoes"]


def test_topological_sort_reports_cycle():
    graph = clothing()
    graph.add_edge("jacket", "shirt")
    with pytest.raises(CycleError) as info:
        topological_sort(graph)
    assert info.value.cycle == ["shirt", "tie", "jacket", "shirt"]
    assert str(info.value) == "graph contains a cycle: shirt -> tie -> jacket -> shirt"


def test_minimum_spanning_tree():
    assert minimum_spanning_tree(road_map()) == [
        ("a", "c", 1), ("b", "d", 1), ("e", "f", 1), ("b", "c", 2)
    ]
    assert spanning_weight(road_map()) == 5


def test_components():
    assert connected_components(road_map()) == [["a", "b", "c", "d"], ["e", "f"]]
    assert connected_components(clothing()) == [
        ["shirt", "tie", "jacket", "pants", "shoes", "belt", "socks"]
    ]


class TraversalTest(unittest.TestCase):
    def setUp(self):
        self.graph = Graph.from_edges([(1, 2), (1, 3), (2, 4), (3, 4), (4, 5), (6, 7)])

    def test_bfs_order_and_layers(self):
        self.assertEqual(bfs(self.graph, 1), [1, 2, 3, 4, 5])
        self.assertEqual(bfs_layers(self.graph, 1), [[1], [2, 3], [4], [5]])

    def test_dfs_preorder(self):
        self.assertEqual(dfs(self.graph, 1), [1, 2, 4, 3, 5])
        self.assertEqual(dfs(self.graph, 6), [6, 7])

    def test_hop_path(self):
        self.assertEqual(hop_path(self.graph, 5, 1), [5, 4, 2, 1])
        with self.assertRaises(NoPathError):
            hop_path(self.graph, 1, 7)
        with self.assertRaises(KeyError):
            hop_path(self.graph, 1, 99)

    def test_undirected_cycle(self):
        self.assertEqual(find_cycle(self.graph), [1, 2, 4, 3, 1])
        tree = Graph.from_edges([(1, 2), (2, 3)])
        self.assertIsNone(find_cycle(tree))
        tree.add_edge(3, 3)
        self.assertEqual(find_cycle(tree), [3, 3])

    def test_directed_graph_checks(self):
        dag = clothing()
        self.assertTrue(is_dag(dag))
        self.assertFalse(is_dag(self.graph))
        with self.assertRaises(ValueError):
            topological_sort(self.graph)


class GraphStructureTest(unittest.TestCase):
    def test_edges_listed_once_for_undirected(self):
        graph = road_map()
        self.assertEqual(graph.edge_count, 6)
        self.assertEqual(graph.edges()[:3], [("a", "b", 4), ("a", "c", 1), ("b", "c", 2)])
        self.assertEqual(graph.weight("b", "a"), 4)

    def test_remove_node_drops_incident_edges(self):
        graph = road_map()
        graph.remove_node("b")
        self.assertEqual(graph.nodes(), ["a", "c", "d", "e", "f"])
        self.assertEqual(graph.neighbors("c"), ["a", "d"])
        self.assertEqual(shortest_path(graph, "a", "d"), (6, ["a", "c", "d"]))

    def test_directed_degrees_and_reverse(self):
        graph = clothing()
        self.assertEqual(graph.in_degree("jacket"), 2)
        self.assertEqual(graph.out_degree("pants"), 2)
        self.assertEqual(graph.predecessors("shoes"), ["pants", "socks"])
        flipped = graph.reversed()
        self.assertEqual(flipped.neighbors("jacket"), ["tie", "belt"])
        self.assertEqual(topological_sort(flipped)[:2], ["jacket", "tie"])

    def test_path_cache_is_invalidated_on_change(self):
        graph = road_map()
        self.assertEqual(shortest_path(graph, "a", "d")[0], 4)
        self.assertEqual(len(graph.path_cache), 1)
        graph.add_edge("a", "d", 2)
        self.assertEqual(len(graph.path_cache), 0)
        self.assertEqual(shortest_path(graph, "a", "d"), (2, ["a", "d"]))
        self.assertEqual(graph.path_cache.stats.hits, 0)
        shortest_path(graph, "a", "b")
        self.assertEqual(graph.path_cache.stats.hits, 1)

    def test_remove_missing_edge(self):
        graph = road_map()
        graph.remove_edge("c", "b")
        self.assertFalse(graph.has_edge("b", "c"))
        with self.assertRaises(KeyError):
            graph.remove_edge("c", "b")

    def test_eccentricity(self):
        graph = road_map()
        graph.remove_node("e")
        graph.remove_node("f")
        self.assertEqual(eccentricity(graph, "a"), 4)
        with self.assertRaises(NoPathError):
            eccentricity(road_map(), "a")

    def test_spanning_tree_requires_undirected_graph(self):
        with self.assertRaises(GraphError):
            minimum_spanning_tree(clothing())
