"""The control graph: which control points hold each other rigid under ARAP.

Built in two steps (the paper's topology-preserving graph):
1. a Euclidean k-NN graph with a small k (`knn`) — it only links points that are
   immediate neighbours, so it follows the object's surface. Edges longer than
   `max_edge_ratio` times the median nearest-neighbour distance are dropped (each
   point keeps its nearest neighbour): farthest-point samples are evenly spaced, so
   such an edge jumps a gap — between two legs, say — rather than following a part.
   Dropped edges that are needed to keep the k-NN graph's connectivity are put back,
   shortest first, so pruning never splits a piece off;
2. each point's `geodesic_k` nearest points by shortest-path distance inside that
   graph (Dijkstra). Two parts that are close in space but far along the object
   (a pair of legs) are far apart in step 2, so they never become neighbours.

The neighbour relation is then made symmetric (j in N(i) <=> i in N(j)) with
symmetric weights, which is what the ARAP global step's Laplacian needs.
Weights are w_ij = exp(-(d_ij / s_ij)^2), d_ij the rest distance and s_ij the mean
of the two points' average neighbour distance: close neighbours count more, and
the weights do not depend on the object's scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# Dijkstra from this many sources at once keeps memory at sources x M distances.
_DIJKSTRA_CHUNK = 1024


@dataclass
class ControlGraph:
    neighbours: Tensor   # [M, K] long; padded slots hold the point's own index
    weights: Tensor      # [M, K] float32, 0 in padded slots, w_ij == w_ji
    mask: Tensor         # [M, K] bool, True for real edges
    component: Tensor    # [M] long, connected-component label of each point (0..C-1)
    num_components: int

    @property
    def num_points(self) -> int:
        return self.neighbours.shape[0]

    def edges(self) -> Tensor:  # -> [E, 2] long, each undirected edge once (i < j); for drawing
        rows = torch.arange(self.num_points, device=self.neighbours.device)[:, None].expand_as(self.neighbours)
        keep = self.mask & (rows < self.neighbours)
        return torch.stack((rows[keep], self.neighbours[keep]), dim=1)

    def to(self, device: torch.device | str) -> "ControlGraph":
        return ControlGraph(self.neighbours.to(device), self.weights.to(device), self.mask.to(device),
                            self.component.to(device), self.num_components)


def build_control_graph(
    points: Tensor,  # [M, 3] rest positions of the control points
    knn: int = 6,
    geodesic_k: int = 8,
    max_edge_ratio: float = 2.5,
) -> ControlGraph:
    """Topology-preserving neighbour graph over `points`; see the module docstring."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra
    from scipy.spatial import cKDTree

    if knn < 1 or geodesic_k < 1:
        raise ValueError(f"knn and geodesic_k must be at least 1 (got {knn}, {geodesic_k})")
    xyz = points.detach().to("cpu", torch.float64).numpy()
    m = xyz.shape[0]
    if m < 2:
        return _assemble(points, xyz, [np.zeros(0, dtype=np.int64)] * m)

    # Step 1: Euclidean k-NN graph, symmetrised, edge length = distance.
    k1 = min(knn, m - 1)
    dist, idx = cKDTree(xyz).query(xyz, k=k1 + 1)
    dist, idx = dist[:, 1:], idx[:, 1:]
    reach = max_edge_ratio * np.median(dist[:, 0])
    keep = (dist <= reach) | (np.arange(k1) == 0)
    _restore_bridges(keep, dist, idx)
    rows = np.repeat(np.arange(m), k1)[keep.reshape(-1)]
    cols = idx[keep]
    lengths = np.maximum(dist[keep], 1e-12)  # coincident points stay linked
    knn_graph = coo_matrix((lengths, (rows, cols)), shape=(m, m)).tocsr()
    knn_graph = knn_graph.maximum(knn_graph.T)

    # Step 2: geodesic k-NN inside that graph.
    k2 = min(geodesic_k, m - 1)
    neighbour_lists = []
    for start in range(0, m, _DIJKSTRA_CHUNK):
        sources = np.arange(start, min(start + _DIJKSTRA_CHUNK, m))
        geo = dijkstra(knn_graph, directed=False, indices=sources)  # [S, M], inf across components
        geo[np.arange(sources.size), sources] = np.inf
        nearest = np.argpartition(geo, k2 - 1, axis=1)[:, :k2] if k2 < m else np.argsort(geo, axis=1)
        for row, cand in zip(geo, nearest):
            neighbour_lists.append(cand[np.isfinite(row[cand])])
    return _assemble(points, xyz, neighbour_lists)


def _restore_bridges(keep: np.ndarray, dist: np.ndarray, idx: np.ndarray) -> None:
    """Re-enable (in `keep`, [M, k]) the shortest dropped edges that join components of the
    kept graph, until it is as connected as the full k-NN graph (Kruskal over components)."""
    m = keep.shape[0]
    parent = np.arange(m)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows = np.repeat(np.arange(m), keep.shape[1]).reshape(keep.shape)
    for i, j in zip(rows[keep], idx[keep]):
        parent[root(i)] = root(j)
    dropped = np.argwhere(~keep)
    for r, c in dropped[np.argsort(dist[~keep], kind="stable")]:
        a, b = root(r), root(idx[r, c])
        if a != b:
            parent[a] = b
            keep[r, c] = True


def _assemble(points: Tensor, xyz: np.ndarray, neighbour_lists: list[np.ndarray]) -> ControlGraph:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    m = xyz.shape[0]
    rows = np.concatenate([np.full(len(c), i) for i, c in enumerate(neighbour_lists)] + [np.zeros(0, np.int64)])
    cols = np.concatenate(list(neighbour_lists) + [np.zeros(0, np.int64)]).astype(np.int64)
    adjacency = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(m, m)).tocsr()
    adjacency = ((adjacency + adjacency.T) > 0).tocsr()  # symmetric neighbour relation
    adjacency.sort_indices()
    num_components, component = connected_components(adjacency, directed=False)

    degree = np.diff(adjacency.indptr)
    width = max(int(degree.max()) if m else 0, 1)
    neighbours = np.repeat(np.arange(m)[:, None], width, axis=1)
    mask = np.zeros((m, width), dtype=bool)
    slot = np.arange(adjacency.nnz) - np.repeat(adjacency.indptr[:-1], degree)
    edge_rows = np.repeat(np.arange(m), degree)
    neighbours[edge_rows, slot] = adjacency.indices
    mask[edge_rows, slot] = True

    lengths = np.linalg.norm(xyz[:, None, :] - xyz[neighbours], axis=2)  # [M, K]
    mean_length = np.where(degree > 0, (lengths * mask).sum(1) / np.maximum(degree, 1), 1.0)
    mean_length = np.maximum(mean_length, 1e-12)
    scale = 0.5 * (mean_length[:, None] + mean_length[neighbours])  # symmetric in i, j
    weights = np.where(mask, np.exp(-np.square(lengths / scale)), 0.0)

    device = points.device
    return ControlGraph(
        neighbours=torch.from_numpy(neighbours).to(device),
        weights=torch.from_numpy(weights).to(device, torch.float32),
        mask=torch.from_numpy(mask).to(device),
        component=torch.from_numpy(component.astype(np.int64)).to(device),
        num_components=int(num_components),
    )
