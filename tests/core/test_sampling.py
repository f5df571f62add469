"""Farthest-point sampling and the opacity filter on candidates."""
import numpy as np
import torch

from uplift.core.gaussians import Gaussians
from uplift.core.sampling import control_candidates, farthest_point_sampling


def reference_fps(points: np.ndarray, first: int, count: int) -> list[int]:
    """Textbook FPS, one point at a time."""
    chosen = [first]
    for _ in range(count - 1):
        d = np.min([[np.sum((p - points[c]) ** 2) for c in chosen] for p in points], axis=1)
        chosen.append(int(np.argmax(d)))
    return chosen


def test_matches_the_textbook_greedy_choice(device):
    pts = torch.rand(300, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = farthest_point_sampling(pts.to(device), 20, seed=3).cpu()
    assert got.dtype == torch.long
    assert got.tolist() == reference_fps(pts.numpy(), int(got[0]), 20)


def test_deterministic_per_seed():
    pts = torch.rand(2000, 3, generator=torch.Generator().manual_seed(1))
    a = farthest_point_sampling(pts, 64, seed=5)
    assert torch.equal(a, farthest_point_sampling(pts, 64, seed=5))
    assert not torch.equal(a, farthest_point_sampling(pts, 64, seed=6))
    assert len(set(a.tolist())) == 64


def test_fewer_points_than_requested_and_duplicates():
    pts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 2, 0]])
    got = farthest_point_sampling(pts, 10)
    assert sorted(pts[got].tolist()) == sorted([[0.0, 0, 0], [1, 0, 0], [0, 2, 0]])  # distinct positions only
    assert farthest_point_sampling(torch.zeros(7, 3), 3).numel() == 1


def test_huge_clouds_sample_from_a_voxel_thinning_and_keep_thin_parts():
    gen = torch.Generator().manual_seed(2)
    body = torch.rand(20000, 3, generator=gen)                        # a dense unit cube
    tip = torch.tensor([[0.5, 0.5, 3.0]]) + 0.001 * torch.randn(5, 3, generator=gen)  # five points far out
    pts = torch.cat((body, tip))
    got = farthest_point_sampling(pts, 32, seed=0, max_candidates=1000)
    assert got.numel() == 32 and len(set(got.tolist())) == 32
    assert (got < pts.shape[0]).all()
    assert (pts[got][:, 2] > 2.9).any()  # the tip got a control
    # every point is reasonably close to a control (coverage), cube side 1, 32 controls
    nearest = torch.cdist(pts, pts[got]).min(1).values
    assert nearest.max() < 0.6


def test_transparent_gaussians_are_not_candidates():
    n = 10
    op = torch.full((n,), 0.9)
    op[[2, 5]] = 0.01
    g = Gaussians.from_colors(torch.randn(n, 3), torch.rand(n, 3), torch.full((n, 3), 0.1), op)
    keep = control_candidates(g, 0.05)
    assert 2 not in keep.tolist() and 5 not in keep.tolist() and keep.numel() == 8
    all_faint = Gaussians.from_colors(torch.randn(n, 3), torch.rand(n, 3), torch.full((n, 3), 0.1), torch.full((n,), 0.01))
    assert control_candidates(all_faint, 0.05).numel() == n  # nothing opaque: every Gaussian is a candidate
