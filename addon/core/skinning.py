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
  nearly equal rotations could cancel). b is returned with w >= 0, so an identity
  deformation leaves every quaternion bit-for-bit unchanged.
- scales, opacity, SH colour, normals and extra properties: unchanged.

Speed: the per-control affine [R | t] and Q form one [M, 16] table, blended for all
Gaussians by a single `embedding_bag` (a gather-multiply-add kernel), so nothing of
size [N, k, 3, 3] is ever built. The sign alignment is only needed where two controls
that share a Gaussian have quaternions on opposite hemispheres; those pairs are
found on the [M, M] control level and only their Gaussians are blended again with
explicit signs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from . import quaternion
from .gaussians import Gaussians


@dataclass
class SkinBinding:
    indices: Tensor        # [N, k] long, nearest control first
    weights: Tensor        # [N, k] float32, >= 0, rows sum to 1
    shared: Tensor         # [M, M] bool, True where two controls are bound to a common Gaussian

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
) -> Tensor:             # -> [M, 16]: R row-major (9), t = p' - R p (3), Q with w >= 0 (4)
    m = rest.shape[0]
    rotations = rotations.float()
    translation = deformed.float() - (rotations @ rest.float()[:, :, None])[:, :, 0]
    q = quaternion.from_matrix(rotations) if quats is None else quaternion.canonical_sign(quats.float())
    return torch.cat((rotations.reshape(m, 9), translation, q), dim=1).contiguous()


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
    blended = F.embedding_bag(binding.indices, table, per_sample_weights=binding.weights, mode="sum")  # [N, 16]
    _realign_signs(blended, binding, table[:, 12:16])
    # Component-major from here: elementwise ops on contiguous [N] rows are several
    # times faster in torch than ops that broadcast over a trailing dim of 3 or 4.
    b = blended.T.contiguous()                           # [16, N]
    mu = g.means.T.contiguous()                          # [3, N]
    means = torch.empty_like(mu)
    for a in range(3):
        torch.addcmul(b[9 + a], b[3 * a], mu[0], out=means[a])
        means[a].addcmul_(b[3 * a + 1], mu[1]).addcmul_(b[3 * a + 2], mu[2])
    q = b[12:16]
    # normalise and put w >= 0 in one scale factor
    scale = torch.where(q[0] < 0, -1.0, 1.0) / (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt()
    q.mul_(scale)
    quats = quaternion.multiply(q.T, g.quats.T.contiguous().T)  # [N, 4] views over [4, N] rows
    return g.replace(means=means.T.contiguous(), quats=quats)


def _realign_signs(blended: Tensor, binding: SkinBinding, control_q: Tensor) -> None:
    """Re-blend, in place, the quaternion part (columns 12:16 of `blended` [N, 16]) of the
    Gaussians whose controls' quaternions lie on opposite hemispheres."""
    opposite = (control_q @ control_q.T < 0) & binding.shared          # [M, M]
    if not bool(opposite.any()):
        return
    touched = opposite.any(1)[binding.indices].any(1)                   # [N]
    rows = torch.nonzero(touched).squeeze(1)
    q = control_q[binding.indices[rows]]                                # [S, k, 4]
    sign = torch.where((q * q[:, :1]).sum(-1) < 0, -1.0, 1.0)           # align with the nearest control
    blended[rows, 12:16] = ((binding.weights[rows] * sign)[:, :, None] * q).sum(1)
