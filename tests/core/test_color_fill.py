"""Harmonic colour fill for unseen Gaussians: the defining properties of the solution."""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from uplift.core.color_fill import NEIGHBOURS, fill_unseen_colors, laplace_fill
from uplift.core.gaussians import Gaussians


def shell(n: int = 1500, seed: int = 0) -> np.ndarray:  # [n, 3] points on a unit sphere
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def test_unknowns_are_the_mean_of_their_neighbours_and_knowns_stay():
    points = shell()
    known = points[:, 1] < 0  # the half facing a camera on -Y
    values = np.stack([np.sin(4 * points[:, 0]), points[:, 2], np.ones(len(points))], 1)
    noisy = np.where(known[:, None], values, np.random.default_rng(1).uniform(-5, 5, values.shape))
    out = laplace_fill(points, noisy, known)
    assert np.array_equal(out[known], values[known])
    # Discrete harmonic on the symmetrised k-NN graph: every unknown is its neighbours' average.
    _, nbr = cKDTree(points).query(points, k=NEIGHBOURS + 1)
    neighbours = [set() for _ in points]
    for i, row in enumerate(nbr[:, 1:]):
        for j in row:
            neighbours[i].add(int(j))
            neighbours[int(j)].add(i)
    for i in np.flatnonzero(~known)[:200]:
        assert np.allclose(out[i], out[sorted(neighbours[i])].mean(0), atol=1e-9)
    # Maximum principle, and a constant stays constant.
    assert out[~known, 0].max() <= values[known, 0].max() + 1e-9
    assert out[~known, 0].min() >= values[known, 0].min() - 1e-9
    assert np.allclose(out[:, 2], 1.0)


def test_a_part_with_no_seen_point_keeps_its_values():
    points = np.concatenate([shell(400), shell(300, seed=2) + 10.0])  # two far-apart spheres
    known = np.zeros(len(points), bool)
    known[:50] = True
    values = np.random.default_rng(3).uniform(size=(len(points), 3))
    out = laplace_fill(points, values, known)
    assert np.array_equal(out[400:], values[400:])
    assert not np.allclose(out[50:400], values[50:400])


def test_stripes_on_the_unseen_side_fade_away_from_the_seen_edge():
    """A seen stripe pattern on the front cap of a sphere: its variation across the unseen back
    decays (harmonic functions smooth high frequencies fastest), unlike extruded rim colours."""
    points = shell(3000, seed=4)
    known = points[:, 1] < -0.3
    stripes = (np.sin(12 * np.arctan2(points[:, 2], points[:, 0])) > 0).astype(float)
    out = laplace_fill(points, np.repeat(stripes[:, None], 3, 1), known)
    back = points[:, 1] > 0.5
    assert out[back, 0].std() < 0.1 * stripes[known].std()


def test_fill_unseen_colors_changes_only_unseen_gaussians():
    points = torch.from_numpy(shell(600)).float()
    colors = torch.rand(600, 3, generator=torch.Generator().manual_seed(0))
    g = Gaussians.from_colors(points, colors, torch.full((600, 3), 0.05), torch.full((600,), 0.9))
    visibility = (points[:, 1] < 0).float()
    out = fill_unseen_colors(g, visibility)
    seen = visibility >= 0.5
    assert torch.equal(out.sh[seen], g.sh[seen])
    assert not torch.allclose(out.base_colors[~seen], g.base_colors[~seen])
    assert out.base_colors.min() >= colors.min() - 1e-5 and out.base_colors.max() <= colors.max() + 1e-5
    assert fill_unseen_colors(g, torch.ones(600)) is g  # nothing unseen: nothing to do
