"""Linear blend skinning of Gaussians to the ARAP control points.

Binding: each Gaussian takes its k nearest control points (rest pose) with weights
w_k ∝ (1 - d_k / d_{k+1})², d_{k+1} the distance to the next-nearest control
(Sumner et al., Embedded Deformation). Weights fall off with distance, sum to 1, and
the k-th weight reaches 0 exactly where that control would be swapped for another,
so the skinning field has no seams.

Deformation, per Gaussian with controls k (rest p_k, deformed p'_k, rotation R_k):
- centre:       μ' = Σ w_k (R_k (μ - p_k) + p'_k) = (Σ w_k R_k) μ + Σ w_k (p'_k - R_k p_k)
- orientation:  q' = b ⊗ q where b = normalise(Σ w_k s_k Q_k), Q_k the control's unit
  quaternion (w >= 0) and s_k = ±1 the sign that puts Q_k on the same hemisphere as the
  nearest control's Q (q and -q are the same rotation; without the alignment two
  nearly equal rotations could cancel). b is taken with w >= 0, so small deformations
  keep each quaternion's sign, and its length (files need not store unit quaternions).
- scales, opacity, SH colour, normals and extra properties: unchanged.

Speed: the per-control affine [R | t] and Q (as the four signed permutations that make
up quaternion left-multiplication) form one [M, 29] table, blended for all Gaussians by
a single `embedding_bag` (a gather-multiply-add kernel), so nothing of size
[N, k, 3, 3] is ever built; what is left is one elementwise product with per-Gaussian
constants (cached on the binding) and one small matmul. The sign alignment is only needed where two controls
that share a Gaussian have quaternions on opposite hemispheres; those pairs are
found on the [M, M] control level and only their Gaussians are blended again with
explicit signs.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from . import quaternion
from .gaussians import Gaussians

CHUNK = 1 << 15  # Gaussians per LBS chunk: its [chunk, 29] intermediates stay in the last-level cache


@dataclass
class SkinBinding:
    indices: Tensor        # [N, k] long, nearest control first
    weights: Tensor        # [N, k] float32, >= 0, rows sum to 1
    shared: Tensor         # [M, M] bool, True where two controls are bound to a common Gaussian
    # Per-Gaussian factors of the Gaussians last deformed with this binding (see
    # `_gaussian_factors`); rebuilt whenever those tensors change.
    _factors: tuple | None = field(default=None, repr=False, compare=False)
    # [P, 2] long, each True pair (a < b) of `shared` once; built on first use.
    _shared_pairs: Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def k(self) -> int:
        return self.indices.shape[1]

    def to(self, device: torch.device | str) -> "SkinBinding":
        return SkinBinding(self.indices.to(device), self.weights.to(device), self.shared.to(device))


def bind(
    means: Tensor,     # [N, 3] Gaussian centres
    controls: Tensor,  # [M, 3] rest positions of the control points
    k: int = 4,
) -> SkinBinding:
    """Bind every Gaussian to its k nearest controls (see the module docstring)."""
    import numpy as np
    from scipy.spatial import cKDTree

    m = controls.shape[0]
    if m == 0:
        raise ValueError("cannot bind to zero control points")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    k = min(k, m)
    tree = cKDTree(controls.detach().to("cpu", torch.float64).numpy())
    query = means.detach().to("cpu", torch.float64).numpy()
    dist, idx = tree.query(query, k=k + 1 if k < m else k, workers=-1)
    dist = dist.reshape(len(query), -1)
    idx = idx.reshape(len(query), -1)
    if k < m:
        reach = dist[:, k:k + 1]
        dist, idx = dist[:, :k], idx[:, :k]
    else:  # every control is a neighbour: fall off towards a little past the farthest one
        reach = dist[:, -1:] * 1.5
    reach = np.maximum(reach, 1e-12)
    weights = np.square(np.clip(1.0 - dist / reach, 0.0, 1.0))
    total = weights.sum(1, keepdims=True)
    # All k controls as far as the next one (a degenerate tie): weigh them equally.
    weights = np.where(total > 0, weights / np.maximum(total, 1e-300), 1.0 / k)
    indices = torch.from_numpy(idx.astype(np.int64)).to(means.device)
    shared = torch.zeros(m, m, dtype=torch.bool, device=means.device)
    for a in range(k):
        for b in range(a + 1, k):
            shared[indices[:, a], indices[:, b]] = True
    shared |= shared.T.clone()
    return SkinBinding(indices, torch.from_numpy(weights).to(means.device, torch.float32), shared)


def control_table(
    rest: Tensor,        # [M, 3]
    deformed: Tensor,    # [M, 3]
    rotations: Tensor,   # [M, 3, 3]
    quats: Tensor | None = None,  # [M, 4] wxyz of `rotations`, derived when None
) -> Tensor:             # -> [M, 29], see below
    """Per-control values that LBS blends linearly:
    [0:9]   R column-major (entry 3*b + a is R[a, b]),
    [9:12]  t = p' - R p,
    [12:28] the quaternion Q (w >= 0) as the 4 signed permutations that make up
            left-multiplication (block j is Q ⊗ e_j); block 0 is Q itself,
    [28]    Q's w again (its blend decides the sign of the blended rotation).
    """
    m = rest.shape[0]
    rotations = rotations.float()
    translation = deformed.float() - (rotations @ rest.float()[:, :, None])[:, :, 0]
    q = quaternion.from_matrix(rotations) if quats is None else quaternion.canonical_sign(quats.float())
    # Block j = Q ⊗ e_j, so that b ⊗ q = sum_j q_j (b ⊗ e_j) blends linearly.
    product = torch.cat([quaternion.multiply(q, e.expand_as(q)) for e in torch.eye(4, device=q.device)], dim=1)
    return torch.cat((rotations.transpose(1, 2).reshape(m, 9), translation, product, q[:, :1]), dim=1).contiguous()


def deform(
    g: Gaussians,
    binding: SkinBinding,
    rest: Tensor,        # [M, 3] rest control positions
    deformed: Tensor,    # [M, 3] deformed control positions
    rotations: Tensor,   # [M, 3, 3] per-control rotations
    quats: Tensor | None = None,  # [M, 4] the same rotations as wxyz (saves a conversion)
) -> Gaussians:
    """Move centres and orientations of `g` with the controls (see the module docstring)."""
    table = control_table(rest, deformed, rotations, quats).to(g.means.device)
    spread, own_length = _gaussian_factors(g, binding)
    sums = _constants(g.means.device).sums
    flagged = _flipped_controls(table, binding)
    means = torch.empty_like(g.means)
    quats = torch.empty_like(g.quats)
    # In chunks: the [chunk, 29] intermediates stay cache-sized and their memory is
    # reused instead of freshly mapped (page faults cost more than the maths at 1M).
    for start in range(0, len(g), CHUNK):
        rows = slice(start, start + CHUNK)
        idx, w = binding.indices[rows], binding.weights[rows]
        blended = F.embedding_bag(idx, table, per_sample_weights=w, mode="sum")  # [n, 29]
        if flagged is not None:
            _realign_signs(blended, idx, w, flagged, table)
        # Every output is a sum of (blended column) x (a per-Gaussian constant): one
        # elementwise product, then one matmul that sums the groups, written transposed so
        # that its result is component-major ([8, n]) and the rest are row operations.
        # (torch's CPU kernels for ops over a trailing dim of 3 or 4 are 5-20x slower.)
        out = torch.mm(sums, blended.mul_(spread[rows]).T)                        # [8, n]
        unnormalised = out[3:7]                                                   # (sum w Q) ⊗ q
        # |q| / |(sum w Q) ⊗ q| = 1 / |sum w Q|, with the sign that makes the blended w >= 0
        scale = (unnormalised * unnormalised).sum(0).rsqrt_().mul_(own_length[rows]).copysign_(out[7])
        # Written through transposed views of the outputs: torch copies [c, n] -> [n, c] several
        # times faster in that direction than from a transposed source.
        torch.mul(unnormalised, scale, out=quats[rows].T)
        means[rows].T.copy_(out[0:3])
    return g.replace(means=means, quats=quats)


def _gaussian_factors(g: Gaussians, binding: SkinBinding) -> tuple[Tensor, Tensor]:
    """[N, 29] per-Gaussian factors of the blended table columns (mu_b for R's column b,
    1 for t, q_j for block j, 1 for the sign column) and [N] |q|; cached on the
    binding for as long as g's means and quaternions are the same, unchanged tensors."""
    key = (g.means.data_ptr(), g.means._version, g.quats.data_ptr(), g.quats._version, len(g))
    if binding._factors is None or binding._factors[0] != key:
        mu, q = g.means.float(), g.quats.float()
        ones = torch.ones_like(mu[:, :1])
        spread = torch.cat([mu[:, b:b + 1].expand(-1, 3) for b in range(3)] + [ones.expand(-1, 3)]
                           + [q[:, j:j + 1].expand(-1, 4) for j in range(4)] + [ones], dim=1).contiguous()
        binding._factors = (key, spread, q.square().sum(1).sqrt())
    return binding._factors[1], binding._factors[2]


@functools.lru_cache(maxsize=None)
def _constants(device: torch.device):
    """[8, 29] 0/1 matrix summing the products into means (3), q' (4) and the blended w (1)."""
    sums = torch.zeros(8, 29)
    for a in range(3):
        for b in range(3):
            sums[a, 3 * b + a] = 1.0
        sums[a, 9 + a] = 1.0
    for c in range(4):
        for j in range(4):
            sums[3 + c, 12 + 4 * j + c] = 1.0
    sums[7, 28] = 1.0
    from types import SimpleNamespace

    return SimpleNamespace(sums=sums.to(device))


def _flipped_controls(table: Tensor, binding: SkinBinding) -> Tensor | None:
    """[M] bool: controls whose quaternion lies on the opposite hemisphere from one it
    shares a Gaussian with (None when there are none, the usual case). Only the shared
    pairs are tested (a few per control, not all M^2)."""
    if binding._shared_pairs is None:
        binding._shared_pairs = torch.nonzero(torch.triu(binding.shared, diagonal=1))
    a, b = binding._shared_pairs.T
    control_q = table[:, 12:16]
    opposite = (control_q[a] * control_q[b]).sum(1) < 0                 # [P]
    if not bool(opposite.any()):
        return None
    flagged = torch.zeros(table.shape[0], dtype=torch.bool, device=table.device)
    flagged[a[opposite]] = True
    flagged[b[opposite]] = True
    return flagged


def _realign_signs(blended: Tensor, indices: Tensor, weights: Tensor, flagged: Tensor, table: Tensor) -> None:
    """Re-blend, in place, the quaternion columns (12:29) of the Gaussians (rows of
    `indices` [n, k], `weights` [n, k]) bound to a `flagged` control, each control's
    quaternion aligned with the nearest control's."""
    rows = torch.nonzero(flagged[indices].any(1)).squeeze(1)
    q = table[indices[rows], 12:]                                       # [S, k, 17]
    sign = torch.where((q[..., :4] * q[:, :1, :4]).sum(-1) < 0, -1.0, 1.0)
    blended[rows, 12:] = ((weights[rows] * sign)[:, :, None] * q).sum(1)
