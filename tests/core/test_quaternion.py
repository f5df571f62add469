"""Quaternion conventions: wxyz, v' = R(q) v, multiply = matrix product, sign canonicalisation."""
import math

import torch

from uplift.core import quaternion as Q


def random_quats(n, seed=0, dtype=torch.float64):
    return Q.normalize(torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=dtype))


def test_identity_is_w_first(device):
    q = torch.tensor([1.0, 0.0, 0.0, 0.0], device=device)
    assert torch.equal(Q.to_matrix(q), torch.eye(3, device=device))


def test_quarter_turn_about_z_maps_x_to_y(device):
    half = math.pi / 4
    q = torch.tensor([math.cos(half), 0.0, 0.0, math.sin(half)], dtype=torch.float64, device=device)  # wxyz
    v = Q.to_matrix(q) @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64, device=device)
    assert torch.allclose(v, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64, device=device), atol=1e-12)
    assert torch.allclose(Q.from_axis_angle(torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64), torch.tensor(math.pi / 2)),
                          q.cpu(), atol=1e-12)


def test_matrices_are_proper_rotations():
    R = Q.to_matrix(random_quats(100))
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(100, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(100, dtype=torch.float64), atol=1e-12)


def test_multiply_is_the_matrix_product(device):
    a, b = random_quats(50, 1).to(device), random_quats(50, 2).to(device)
    assert torch.allclose(Q.to_matrix(Q.multiply(a, b)), Q.to_matrix(a) @ Q.to_matrix(b), atol=1e-12)


def test_conjugate_is_the_inverse():
    a = random_quats(20, 3)
    ident = Q.multiply(a, Q.conjugate(a))
    assert torch.allclose(ident, torch.tensor([1.0, 0, 0, 0], dtype=torch.float64).expand(20, 4), atol=1e-12)


def test_matrix_round_trip_including_half_turns():
    q = random_quats(200, 4)
    # half turns (w = 0) and near-identity, where naive trace formulas break down
    q = torch.cat((q, Q.normalize(torch.tensor([[0.0, 1, 0, 0], [0, 0, 1, 1], [0, 1, 1, 1], [1e-9, 0, 0, 1], [1, 1e-9, 0, 0]],
                                               dtype=torch.float64))))
    back = Q.from_matrix(Q.to_matrix(q))
    assert torch.allclose(Q.to_matrix(back), Q.to_matrix(q), atol=1e-9)
    assert (back[:, 0] >= 0).all()
    clear = q[:, 0].abs() > 1e-6  # with w = 0 both signs are canonical
    assert torch.allclose(back[clear], Q.canonical_sign(q)[clear], atol=1e-9)


def test_sign_canonicalisation_keeps_the_rotation_and_puts_w_non_negative():
    q = random_quats(100, 5)
    c = Q.canonical_sign(-q)
    assert (c[:, 0] >= 0).all()
    assert torch.allclose(Q.to_matrix(c), Q.to_matrix(q), atol=1e-12)
    assert torch.equal(Q.canonical_sign(c), c)  # idempotent
