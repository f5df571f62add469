"""Linear blend skinning: binding weights, the fast path against a per-Gaussian reference,
and geometric properties (identity, rigid motion, untouched attributes)."""
import numpy as np
import pytest
import torch

from uplift.core import quaternion as Q
from uplift.core.gaussians import Gaussians
from uplift.core.skinning import bind, deform


def cloud(n=400, seed=0, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    g = Gaussians(
        means=torch.rand(n, 3, generator=gen) * 2 - 1,
        quats=torch.randn(n, 4, generator=gen),  # deliberately not unit: the norm must be kept
        log_scales=torch.randn(n, 3, generator=gen) - 3,
        opacity_logits=torch.randn(n, generator=gen),
        sh=torch.randn(n, 4, 3, generator=gen),
        normals=torch.randn(n, 3, generator=gen),
        extra={"tag": np.arange(n, dtype=np.int16)},
    )
    return g.to(device)


def controls(m=24, seed=1):
    return torch.rand(m, 3, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def random_pose(rest, seed=2, angle=0.6):
    gen = torch.Generator().manual_seed(seed)
    axis = torch.randn(len(rest), 3, generator=gen)
    q = Q.from_axis_angle(axis, angle * torch.rand(len(rest), generator=gen))
    return rest + 0.2 * torch.randn(rest.shape, generator=gen), Q.to_matrix(q), q


def reference_deform(g, binding, rest, deformed, rotations):
    """Per Gaussian, in float64: μ' = Σ w (R (μ - p) + p'); q' = normalise(Σ w s Q) ⊗ q."""
    means, quats = [], []
    qs = Q.from_matrix(rotations.double())
    for n in range(len(g)):
        mu = g.means[n].double()
        idx, w = binding.indices[n].tolist(), binding.weights[n].double()
        means.append(sum(w[k] * (rotations[i].double() @ (mu - rest[i].double()) + deformed[i].double())
                         for k, i in enumerate(idx)))
        first = qs[idx[0]]
        blend = sum(w[k] * (qs[i] if float(qs[i] @ first) >= 0 else -qs[i]) for k, i in enumerate(idx))
        blend = blend / blend.norm()
        if blend[0] < 0:
            blend = -blend
        quats.append(Q.multiply(blend, g.quats[n].double()))
    return torch.stack(means), torch.stack(quats)


def test_weights_fall_off_and_sum_to_one(device):
    g = cloud(device=device)
    c = controls().to(device)
    b = bind(g.means, c, k=4)
    assert b.indices.shape == (len(g), 4) and b.weights.dtype == torch.float32
    assert torch.allclose(b.weights.sum(1), torch.ones(len(g), device=device), atol=1e-6)
    assert (b.weights >= 0).all()
    d = (g.means[:, None, :] - c[b.indices]).norm(dim=2)
    assert (d[:, :-1] <= d[:, 1:] + 1e-6).all()              # nearest first
    assert (b.weights[:, :-1] >= b.weights[:, 1:] - 1e-6).all()  # nearer weighs more
    brute = torch.cdist(g.means, c).argsort(1)[:, :4]
    assert torch.equal(b.indices.sort(1).values, brute.sort(1).values)


def test_a_gaussian_on_a_control_weighs_it_most():
    c = controls()
    g = Gaussians.from_colors(c[:3].clone(), torch.rand(3, 3), torch.full((3, 3), 0.1), torch.full((3,), 0.5))
    b = bind(g.means, c, k=4)
    assert torch.equal(b.indices[:, 0], torch.arange(3))
    assert (b.weights[:, 0] > b.weights[:, 1]).all()


def test_k_at_least_the_number_of_controls():
    b = bind(cloud(50).means, controls(3), k=8)
    assert b.indices.shape == (50, 3)
    assert torch.allclose(b.weights.sum(1), torch.ones(50), atol=1e-6) and (b.weights > 0).all()


def test_fast_path_matches_the_reference(device):
    g = cloud(device=device)
    rest = controls().to(device)
    b = bind(g.means, rest, k=4)
    deformed, R, q = (t.to(device) for t in random_pose(rest.cpu()))
    out = deform(g, b, rest, deformed, R, q)
    want_means, want_quats = reference_deform(g.to("cpu"), b.to("cpu"), rest.cpu(), deformed.cpu(), R.cpu())
    # float32 fast path vs float64 reference: a few ulps of values of order 1
    assert torch.allclose(out.means.cpu().double(), want_means, atol=2e-6)
    assert torch.allclose(out.quats.cpu().double(), want_quats, atol=2e-6)


def test_opposite_hemisphere_rotations_are_aligned_before_blending():
    """Rotations near a half turn: canonical (w >= 0) quaternions of neighbouring
    controls land on opposite hemispheres, and a naive blend would cancel."""
    g = cloud(300, seed=3)
    rest = controls(16, seed=4)
    b = bind(g.means, rest, k=4)
    angles = torch.where(torch.arange(16) % 2 == 0, torch.tensor(3.10), torch.tensor(3.18))  # just below / above pi
    q = Q.from_axis_angle(torch.tensor([0.0, 0.0, 1.0]).expand(16, 3), angles)
    R = Q.to_matrix(q)
    canonical = Q.canonical_sign(q)
    assert (canonical @ canonical.T < 0).any()  # the case under test really occurs
    out = deform(g, b, rest, rest, R, q)
    _, want_quats = reference_deform(g, b, rest, rest, R)
    assert torch.allclose(out.quats.double(), want_quats, atol=2e-6)
    # every Gaussian turned by about pi about z: no cancellation to a random rotation
    turn = Q.multiply(out.quats, Q.conjugate(g.quats)) / (g.quats.norm(dim=1, keepdim=True) ** 2)
    assert (turn[:, 3].abs() > 0.99).all()


def test_identity_leaves_gaussians_unchanged(device):
    g = cloud(device=device)
    rest = controls().to(device)
    b = bind(g.means, rest, k=4)
    out = deform(g, b, rest, rest.clone(), torch.eye(3, device=device).expand(len(rest), 3, 3))
    # the blend of identities is (sum w, 0, 0, 0), sum w = 1 up to rounding: a few ulps
    assert torch.allclose(out.quats, g.quats, rtol=1e-6, atol=0)
    assert torch.allclose(out.means, g.means, atol=1e-6)


def test_rigid_motion_moves_every_gaussian_rigidly(device):
    g = cloud(device=device)
    rest = controls().to(device)
    b = bind(g.means, rest, k=4)
    q = Q.normalize(torch.tensor([0.3, -0.5, 0.7, 0.2]))
    R, t = Q.to_matrix(q).to(device), torch.tensor([0.5, -1.0, 2.0], device=device)
    out = deform(g, b, rest, rest @ R.T + t, R.expand(len(rest), 3, 3))
    assert torch.allclose(out.means, g.means @ R.T + t, atol=1e-5)
    want = Q.multiply(Q.canonical_sign(q).to(device).expand(len(g), 4), g.quats)
    assert torch.allclose(out.quats, want, atol=1e-5)
    # the quaternion's length (not necessarily 1 in a file) is kept
    assert torch.allclose(out.quats.norm(dim=1), g.quats.norm(dim=1), rtol=1e-5)


def test_other_attributes_are_untouched():
    g = cloud()
    rest = controls()
    b = bind(g.means, rest, k=4)
    deformed, R, q = random_pose(rest)
    out = deform(g, b, rest, deformed, R, q)
    assert out.log_scales is g.log_scales and out.opacity_logits is g.opacity_logits and out.sh is g.sh
    assert out.normals is g.normals and out.extra is g.extra
    assert not torch.equal(out.means, g.means)


def test_binding_refuses_bad_arguments():
    with pytest.raises(ValueError, match="zero control"):
        bind(cloud(5).means, torch.zeros(0, 3))
    with pytest.raises(ValueError, match="at least 1"):
        bind(cloud(5).means, controls(), k=0)


def test_chunked_blending_equals_one_pass(monkeypatch):
    """Large sets are skinned in chunks; chunk borders must not change anything,
    including the sign re-alignment of half-turn rotations."""
    import uplift.core.skinning as skinning

    g = cloud(300, seed=5)
    rest = controls(16, seed=6)
    b = bind(g.means, rest, k=4)
    angles = torch.where(torch.arange(16) % 2 == 0, torch.tensor(3.10), torch.tensor(3.18))
    q = Q.from_axis_angle(torch.tensor([0.3, 0.0, 1.0]).expand(16, 3), angles)
    deformed = rest + 0.1
    whole = deform(g, b, rest, deformed, Q.to_matrix(q), q)
    monkeypatch.setattr(skinning, "CHUNK", 64)
    chunked = deform(g, b, rest, deformed, Q.to_matrix(q), q)
    assert torch.allclose(chunked.means, whole.means, atol=1e-6)
    assert torch.allclose(chunked.quats, whole.quats, atol=1e-6)
    want_means, want_quats = reference_deform(g, b, rest, deformed, Q.to_matrix(q))
    assert torch.allclose(chunked.quats.double(), want_quats, atol=2e-6)
