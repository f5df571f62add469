"""Real spherical harmonics of degree 0-3, evaluated along view directions.

Same basis, signs and ordering as gsplat (`_eval_sh_bases_fast`, Sloan's
"Efficient Spherical Harmonic Evaluation", JCGT 2013) and the original 3DGS code,
so a PLY trained with either renders the same colours. Colour = max(0, 0.5 + SH).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..gaussians import sh_degree_for


def sh_bases(degree: int, dirs: Tensor) -> Tensor:  # dirs: [N, 3] unit -> [N, (degree+1)^2]
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0-3, got {degree}")
    out = dirs.new_empty((dirs.shape[0], (degree + 1) ** 2))
    out[:, 0] = 0.2820947917738781
    if degree == 0:
        return out
    x, y, z = dirs.unbind(-1)
    out[:, 1] = -0.48860251190292 * y
    out[:, 2] = 0.48860251190292 * z
    out[:, 3] = -0.48860251190292 * x
    if degree == 1:
        return out
    z2 = z * z
    c1 = x * x - y * y
    s1 = 2 * x * y
    out[:, 4] = 0.5462742152960395 * s1
    out[:, 5] = -1.092548430592079 * z * y
    out[:, 6] = 0.9461746957575601 * z2 - 0.3153915652525201
    out[:, 7] = -1.092548430592079 * z * x
    out[:, 8] = 0.5462742152960395 * c1
    if degree == 2:
        return out
    tmp_c = -2.285228997322329 * z2 + 0.4570457994644658
    tmp_b = 1.445305721320277 * z
    c2 = x * c1 - y * s1
    s2 = x * s1 + y * c1
    out[:, 9] = -0.5900435899266435 * s2
    out[:, 10] = tmp_b * s1
    out[:, 11] = tmp_c * y
    out[:, 12] = z * (1.865881662950577 * z2 - 1.119528997770346)
    out[:, 13] = tmp_c * x
    out[:, 14] = tmp_b * c1
    out[:, 15] = -0.5900435899266435 * c2
    return out


def sh_to_rgb(
    sh: Tensor,         # [N, K, 3] coefficients, sh[:, 0] the DC term
    means: Tensor,      # [N, 3] world positions
    camera_center: Tensor,  # [3] world position of the camera
) -> Tensor:            # [N, 3] colour, >= 0 (not clamped above, as in gsplat)
    degree = sh_degree_for(sh.shape[1])
    if degree == 0:
        return (0.5 + 0.2820947917738781 * sh[:, 0]).clamp_min(0.0)
    dirs = torch.nn.functional.normalize(means - camera_center, dim=-1)
    bases = sh_bases(degree, dirs)  # [N, K]
    return (0.5 + torch.einsum("nk,nkc->nc", bases, sh)).clamp_min(0.0)
