"""Inlined quaternion maths against `core/quaternion.py`, at the sizes each hot path sees.

One place inlines quaternion formulas instead of calling core/quaternion.py: ARAP's
local step (quaternions -> flat rotations, M controls, every ARAP iteration). The row is
inline time / core time for the same result (tests/core/test_quaternion_inline.py checks
they agree); a ratio well below 1 is why the inline copy stays. The rasteriser's
projection (0.75-1.0 at 200k Gaussians) and LBS's control table (core faster: its signed
permutations measured slower than four core multiplies) now call core/quaternion.py.
"""
from __future__ import annotations

import torch

from .common import Row, median_time

SECTION = "quaternion"


def rows() -> list[Row]:
    from uplift.core import quaternion
    from uplift.core.arap import quats_to_matrices_cm

    gen = torch.Generator().manual_seed(0)
    out = []

    m = 512
    qm = quaternion.normalize(torch.randn(4, m, generator=gen))
    buffer = torch.empty(9, m)
    inline = median_time(lambda: quats_to_matrices_cm(qm, out=buffer), repeats=201)
    core = median_time(lambda: quaternion.to_matrix(qm.T).reshape(m, 9).T.contiguous(), repeats=201)
    out.append(Row(SECTION, "ARAP local step: inline / core", inline / core, "ratio", f"{m} controls"))

    return out
