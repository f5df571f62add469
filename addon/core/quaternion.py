"""Unit quaternions, wxyz, acting on column vectors: v' = R(q) @ v.

q and -q are the same rotation; `canonical_sign` picks w >= 0 so that blended
or compared quaternions live on one hemisphere.
"""
from __future__ import annotations

import torch
from torch import Tensor


def normalize(q: Tensor) -> Tensor:  # q: [..., 4] -> [..., 4]
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def canonical_sign(q: Tensor) -> Tensor:  # q: [..., 4] wxyz -> [..., 4] with w >= 0
    return torch.where(q[..., :1] < 0, -q, q)


def multiply(a: Tensor, b: Tensor) -> Tensor:  # a, b: [..., 4] wxyz -> [..., 4]; R(a*b) = R(a) @ R(b)
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def conjugate(q: Tensor) -> Tensor:  # q: [..., 4] -> [..., 4], the inverse of a unit quaternion
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def to_matrix(q: Tensor) -> Tensor:  # q: [..., 4] wxyz (any length) -> [..., 3, 3]
    w, x, y, z = normalize(q).unbind(-1)
    return torch.stack(
        (
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ),
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def from_matrix(R: Tensor) -> Tensor:  # R: [..., 3, 3] rotation -> [..., 4] wxyz, w >= 0
    """Shepperd's method, branch-free: take the largest of the four candidate
    denominators per matrix so the division is always well conditioned."""
    m = R
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cands = torch.stack(
        (
            torch.stack((1 + trace, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]), -1),
            torch.stack((m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]), -1),
            torch.stack((m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], m[..., 1, 2] + m[..., 2, 1]), -1),
            torch.stack((m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]), -1),
        ),
        dim=-2,
    )  # [..., 4 candidates, 4]
    diag = torch.stack((1 + trace, 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                        1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]), -1)
    best = diag.argmax(dim=-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    return canonical_sign(normalize(q))


def from_axis_angle(axis: Tensor, angle: Tensor) -> Tensor:  # axis: [..., 3], angle: [...] radians -> [..., 4]
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    half = 0.5 * angle
    return torch.cat((torch.cos(half)[..., None], torch.sin(half)[..., None] * axis), dim=-1)
