"""structkit: classic data structures and the graph algorithms built on them."""

from .graph import CycleError, Graph, GraphError, NoPathError
from .heap import BinaryHeap, EmptyHeapError, PriorityQueue, merge_sorted, nlargest, nsmallest
from .intervals import IntervalSet, assign_rooms, max_concurrency, merge_intervals
from .lru import CacheStats, LRUCache, memoize
from .paths import (
    connected_components,
    dijkstra,
    eccentricity,
    minimum_spanning_tree,
    shortest_path,
    spanning_weight,
)
from .traversal import bfs, bfs_layers, dfs, find_cycle, hop_path, is_dag, topological_sort
from .trie import Trie
from .unionfind import DisjointSet

__all__ = [
    "BinaryHeap", "CacheStats", "CycleError", "DisjointSet", "EmptyHeapError", "Graph",
    "GraphError", "IntervalSet", "LRUCache", "NoPathError", "PriorityQueue", "Trie",
    "assign_rooms", "bfs", "bfs_layers", "connected_components", "dfs", "dijkstra",
    "eccentricity", "find_cycle", "hop_path", "is_dag", "max_concurrency", "memoize",
    "merge_intervals", "merge_sorted", "minimum_spanning_tree", "nlargest", "nsmallest",
    "shortest_path", "spanning_weight", "topological_sort",
]
