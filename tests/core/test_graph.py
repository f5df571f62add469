"""The topology-preserving control graph."""
import math

import pytest
import torch

from uplift.core.graph import build_control_graph


def legs(points_per_leg=20, length=2.0, gap=0.4):
    """Two parallel vertical legs joined by a hip bar at the top: an upside-down U.

    The legs are `gap` apart, far less than their length, so near their feet each
    leg is closer (in space) to the other leg than to its own top.
    """
    z = torch.linspace(0, length, points_per_leg)
    left = torch.stack((torch.zeros_like(z), torch.zeros_like(z), z), 1)
    right = left + torch.tensor([gap, 0.0, 0.0])
    step = length / (points_per_leg - 1)
    bar_x = torch.arange(step, gap - step / 2, step)
    hip = torch.stack((bar_x, torch.zeros_like(bar_x), torch.full_like(bar_x, length)), 1)
    return torch.cat((left, right, hip)), points_per_leg


def neighbour_sets(graph):
    return [set(graph.neighbours[i][graph.mask[i]].tolist()) for i in range(graph.num_points)]


@pytest.mark.parametrize("knn", [2, 6])
def test_parallel_legs_are_not_linked(knn):
    points, n = legs()
    # Euclidean k-NN with the same k does link the feet across the gap: the trap the graph avoids.
    k = 8
    euclid = torch.cdist(points, points).argsort(1)[:, 1:k + 1]
    assert any(int(j) >= n for j in euclid[0] if int(j) < 2 * n)
    graph = build_control_graph(points, knn=knn, geodesic_k=k)
    sets = neighbour_sets(graph)
    for i in range(2 * n):
        own = range(0, n) if i < n else range(n, 2 * n)
        other = set(range(n, 2 * n)) if i < n else set(range(0, n))
        # no cross-links except around the hip, where the legs really are joined
        if points[i, 2] < 1.5:
            assert not (sets[i] & other), (i, sets[i] & other)
        assert sets[i] & set(own)
    assert graph.num_components == 1


def test_neighbours_and_weights_are_symmetric():
    points = torch.rand(200, 3, generator=torch.Generator().manual_seed(0))
    graph = build_control_graph(points, knn=5, geodesic_k=8)
    weight = {}
    for i in range(graph.num_points):
        for j, w, real in zip(graph.neighbours[i].tolist(), graph.weights[i].tolist(), graph.mask[i].tolist()):
            if real:
                assert j != i
                weight[(i, j)] = w
            else:
                assert w == 0.0 and j == i  # padding points at itself with no weight
    assert weight and all(w > 0 for w in weight.values())
    for (i, j), w in weight.items():
        assert math.isclose(weight[(j, i)], w, rel_tol=1e-6)
    assert min(int(m.sum()) for m in graph.mask) >= 8  # each point keeps at least its own k
    edges = graph.edges()
    assert edges.shape == (len(weight) // 2, 2) and (edges[:, 0] < edges[:, 1]).all()


def test_separate_pieces_are_separate_components():
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(30, 3, generator=gen)
    b = torch.rand(30, 3, generator=gen) + torch.tensor([10.0, 0, 0])
    graph = build_control_graph(torch.cat((a, b)), knn=4, geodesic_k=6)
    assert graph.num_components == 2
    assert len(set(graph.component[:30].tolist())) == 1 and len(set(graph.component[30:].tolist())) == 1
    sets = neighbour_sets(graph)
    assert all(all(j < 30 for j in sets[i]) for i in range(30))


def test_tiny_inputs():
    assert build_control_graph(torch.zeros(1, 3)).mask.sum() == 0
    g = build_control_graph(torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]]), knn=6, geodesic_k=8)
    assert g.num_components == 1 and g.mask.sum() == 6


def test_device_follows_the_points(device):
    g = build_control_graph(torch.rand(40, 3, device=device))
    assert g.neighbours.device.type == device.type and g.weights.dtype == torch.float32
