"""The quaternion formulas inlined for speed agree with core/quaternion.py (see bench/quaternion.py)."""
import torch

from uplift.core import quaternion
from uplift.core.arap import quats_to_matrices_cm
from uplift.core.skinning import control_table


def test_arap_flat_rotations_equal_core_to_matrix():
    q = quaternion.normalize(torch.randn(300, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    flat = quats_to_matrices_cm(q.T.contiguous())  # [9, M] row-major
    assert torch.allclose(flat.T.reshape(-1, 3, 3), quaternion.to_matrix(q), atol=1e-12)


def test_lbs_table_blocks_are_left_multiplications():
    gen = torch.Generator().manual_seed(1)
    q = quaternion.canonical_sign(quaternion.normalize(torch.randn(50, 4, generator=gen)))
    table = control_table(torch.randn(50, 3, generator=gen), torch.randn(50, 3, generator=gen),
                          quaternion.to_matrix(q), q)
    b = torch.randn(50, 4, generator=gen)
    blocks = table[:, 12:28].reshape(50, 4, 4)  # block j = Q ⊗ e_j
    assert torch.allclose((blocks * b[:, :, None]).sum(1), quaternion.multiply(q, b), atol=1e-6)
    assert torch.equal(table[:, 12:16], q) and torch.equal(table[:, 28], q[:, 0])
