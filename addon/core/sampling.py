"""Control points: farthest-point sampling over the (opaque) Gaussian centres.

FPS costs O(N·M). On a million Gaussians 512 passes over every point take seconds,
so above `max_candidates` points the search runs on a voxel-grid thinning of the
cloud (one seeded-random representative per occupied voxel, then a seeded random
cap). The voxel size is chosen so that every point lies within one voxel diagonal
of a candidate, far below the spacing of 512 controls, so coverage of thin parts
is kept while the cost no longer grows with N.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .gaussians import Gaussians

DEFAULT_MAX_CANDIDATES = 65_536


def control_candidates(g: Gaussians, min_opacity: float) -> Tensor:  # -> [C] long indices into g
    """Indices of the Gaussians opaque enough to carry a control point.

    Near-transparent Gaussians (floaters, fading edges) would pull controls off the
    visible object. If none passes the threshold every Gaussian is a candidate.
    """
    keep = torch.nonzero(g.opacities >= min_opacity).squeeze(1)
    return keep if keep.numel() else torch.arange(len(g), device=g.device)


def _voxel_thin(points: Tensor, target: int, generator: torch.Generator) -> Tensor:  # [N,3] -> [C] long
    """One random representative per occupied voxel, at most `target` of them."""
    n = points.shape[0]
    lo = points.min(0).values
    extent = (points.max(0).values - lo).clamp_min(1e-12)
    # Grid of ~target cells along the surface of the bounding box (splats are surfaces).
    cell = float(extent.max()) / max(target ** 0.5, 1.0)
    keys3 = ((points - lo) / cell).floor().long()
    dims = keys3.max(0).values + 1
    keys = (keys3[:, 0] * dims[1] + keys3[:, 1]) * dims[2] + keys3[:, 2]
    order = torch.randperm(n, generator=generator, device="cpu").to(points.device)
    unique, inverse = torch.unique(keys[order], return_inverse=True)
    first = torch.full((unique.numel(),), n, dtype=torch.long, device=points.device)
    first.scatter_reduce_(0, inverse, torch.arange(n, device=points.device), reduce="amin")
    reps = order[first]
    if reps.numel() > target:
        reps = reps[torch.randperm(reps.numel(), generator=generator, device="cpu")[:target].to(points.device)]
    return reps


def farthest_point_sampling(
    points: Tensor,  # [N, 3]
    count: int,
    seed: int = 0,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
) -> Tensor:  # -> [M] long indices into points, M = min(count, distinct points)
    """Greedy farthest-point sampling, deterministic for a given seed.

    The seed picks the first point (and the voxel representatives on huge clouds).
    Sampling stops early when every remaining point coincides with a chosen one,
    so M can be smaller than `count` for clouds with few distinct positions.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    n = points.shape[0]
    if n == 0:
        raise ValueError("cannot sample control points from an empty cloud")
    generator = torch.Generator().manual_seed(seed)
    candidates = None
    pts = points.float()
    if n > max_candidates:
        candidates = _voxel_thin(pts, max_candidates, generator)
        pts = pts[candidates]
    m = min(count, pts.shape[0])
    chosen = torch.empty(m, dtype=torch.long, device=pts.device)
    # The loop stays on the device (no host syncs); the spread of each pick is kept
    # to cut the result where only duplicates of chosen points remained.
    current = torch.randint(pts.shape[0], (1,), generator=generator).to(pts.device)
    coords = pts.T.contiguous()  # [3, C]: broadcasting over a trailing dim of 3 is slow in torch
    nearest = torch.full((pts.shape[0],), float("inf"), device=pts.device)
    spread = torch.ones(m, device=pts.device)
    diff = torch.empty_like(coords)
    dist = torch.empty_like(nearest)
    chosen[0] = current[0]
    for i in range(1, m):
        torch.sub(coords, coords[:, current], out=diff)
        diff.square_()
        torch.add(diff[0], diff[1], out=dist).add_(diff[2])
        torch.minimum(nearest, dist, out=nearest)
        current = torch.argmax(nearest).reshape(1)
        chosen[i] = current[0]
        spread[i] = nearest[current[0]]
    exhausted = torch.nonzero(spread <= 0)
    if exhausted.numel():
        chosen = chosen[: int(exhausted[0, 0])]
    return candidates[chosen] if candidates is not None else chosen
