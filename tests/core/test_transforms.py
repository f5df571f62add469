"""Similarity edits of Gaussians: identity, inverse, composition, rigid invariants,
and the camera-frame meaning of yaw / pitch / roll / translate / scale."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from uplift.core import quaternion
from uplift.core.camera import Camera
from uplift.core.errors import ConfigError
from uplift.core.gaussians import Gaussians
from uplift.core.transforms import (
    ObjectFrame, Similarity, apply_affine, apply_similarity, camera_axes, camera_edit, camera_rotation, frame_of_points,
    object_frame,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_gaussians(n: int = 64, seed: int = 0, device: str = "cpu") -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    q = quaternion.normalize(torch.randn(n, 4, generator=gen))
    return Gaussians(
        means=torch.randn(n, 3, generator=gen) + torch.tensor([0.0, 4.0, 0.0]),
        quats=q, log_scales=torch.randn(n, 3, generator=gen) * 0.3 - 3,
        opacity_logits=torch.randn(n, generator=gen), sh=torch.randn(n, 1, 3, generator=gen),
    ).to(device)


def random_similarity(seed: int) -> Similarity:
    rng = np.random.default_rng(seed)
    q = torch.tensor(rng.normal(size=4))
    R = quaternion.to_matrix(q).numpy()
    return Similarity(R, rng.normal(size=3), float(np.exp(rng.normal() * 0.3)))


def covariances(g: Gaussians) -> torch.Tensor:  # [N, 3, 3], one Gaussian at a time (slow reference)
    out = []
    for q, ls in zip(g.quats.double(), g.log_scales.double()):
        R = quaternion.to_matrix(q)
        out.append(R @ torch.diag(ls.exp() ** 2) @ R.T)
    return torch.stack(out)


def same_rotation(qa: torch.Tensor, qb: torch.Tensor) -> torch.Tensor:  # q and -q are one rotation
    return (quaternion.canonical_sign(quaternion.normalize(qa)) - quaternion.canonical_sign(quaternion.normalize(qb))).abs().max()


@pytest.mark.parametrize("device", DEVICES)
def test_identity_leaves_gaussians_unchanged(device):
    g = random_gaussians(device=device)
    out = apply_similarity(g, Similarity.identity())
    assert torch.allclose(out.means, g.means, atol=1e-6)
    assert same_rotation(out.quats, g.quats) < 1e-6
    assert torch.equal(out.log_scales, g.log_scales)
    assert torch.equal(out.opacity_logits, g.opacity_logits) and torch.equal(out.sh, g.sh)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(4))
def test_inverse_undoes_the_edit(device, seed):
    g = random_gaussians(seed=seed, device=device)
    sim = random_similarity(seed)
    back = apply_similarity(apply_similarity(g, sim), sim.inverse())
    assert torch.allclose(back.means, g.means, atol=1e-4)
    assert same_rotation(back.quats, g.quats) < 1e-5
    assert torch.allclose(back.log_scales, g.log_scales, atol=1e-5)
    assert sim.compose(sim.inverse()).is_identity(atol=1e-9)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(4))
def test_composition_matches_applying_in_turn(device, seed):
    g = random_gaussians(seed=seed, device=device)
    a, b = random_similarity(seed), random_similarity(seed + 100)
    in_turn = apply_similarity(apply_similarity(g, a), b)
    at_once = apply_similarity(g, b.compose(a))
    assert torch.allclose(in_turn.means, at_once.means, atol=1e-4)
    assert same_rotation(in_turn.quats, at_once.quats) < 1e-5
    assert torch.allclose(in_turn.log_scales, at_once.log_scales, atol=1e-5)
    assert np.allclose(b.compose(a).matrix, b.matrix @ a.matrix)


@pytest.mark.parametrize("device", DEVICES)
def test_rigid_invariants_distances_and_covariances(device):
    g = random_gaussians(n=32, device=device)
    sim = random_similarity(7)
    out = apply_similarity(g, sim)
    # Pairwise distances scale by s.
    d0 = torch.cdist(g.means.double(), g.means.double())
    d1 = torch.cdist(out.means.double(), out.means.double())
    assert torch.allclose(d1, sim.scale * d0, atol=1e-4)
    # Each covariance becomes s^2 R Sigma R^T (per-Gaussian reference).
    R = torch.as_tensor(sim.rotation)
    expected = sim.scale ** 2 * R @ covariances(g.to("cpu")) @ R.T
    assert torch.allclose(covariances(out.to("cpu")), expected, rtol=1e-4, atol=1e-9)
    # Appearance untouched.
    assert torch.equal(out.opacity_logits, g.opacity_logits) and torch.equal(out.sh, g.sh)


def test_inputs_are_not_modified():
    g = random_gaussians()
    means, quats = g.means.clone(), g.quats.clone()
    apply_similarity(g, random_similarity(1))
    assert torch.equal(g.means, means) and torch.equal(g.quats, quats)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_view_dependent_colour_turns_with_the_object(degree):
    """Seen from direction R d after the edit, a Gaussian shows the colour it showed from d."""
    from uplift.core.render.sh import sh_to_rgb

    gen = torch.Generator().manual_seed(degree)
    g = random_gaussians(n=16).replace(sh=torch.randn(16, (degree + 1) ** 2, 3, generator=gen) * 0.3)
    sim = random_similarity(degree)
    out = apply_similarity(g, sim)
    R = torch.as_tensor(sim.rotation, dtype=torch.float32)
    for d in torch.randn(5, 3, generator=gen):
        eye_before = g.means - 3 * d / d.norm()       # cameras 3 units from each Gaussian along -d
        eye_after = out.means - 3 * (R @ d) / d.norm()
        before = torch.stack([sh_to_rgb(g.sh[i:i + 1], g.means[i:i + 1], eye_before[i]) for i in range(16)])
        after = torch.stack([sh_to_rgb(out.sh[i:i + 1], out.means[i:i + 1], eye_after[i]) for i in range(16)])
        assert torch.allclose(before, after, atol=1e-4)


@pytest.mark.parametrize("bad", [
    dict(rotation=np.eye(3), translation=np.zeros(3), scale=0.0),
    dict(rotation=np.diag([1.0, 1.0, -1.0]), translation=np.zeros(3)),
    dict(rotation=2 * np.eye(3), translation=np.zeros(3)),
    dict(rotation=np.eye(3), translation=np.array([np.nan, 0, 0])),
])
def test_bad_similarities_are_refused(bad):
    with pytest.raises(ConfigError):
        Similarity(**bad)


# -- camera-frame meaning ------------------------------------------------------------

CAM = Camera.from_fov(320, 240)  # photo pose: at the origin looking along +Y, Z up
FRAME = ObjectFrame(center=np.array([0.0, 5.0, 0.0]), size=2.0)


def test_photo_camera_axes_are_blender_right_up_forward():
    right, up, forward = camera_axes(CAM)
    assert np.allclose(right, [1, 0, 0]) and np.allclose(up, [0, 0, 1]) and np.allclose(forward, [0, 1, 0])


def test_yaw_turns_the_side_facing_the_camera_to_the_right():
    sim = camera_edit(CAM, FRAME, rotate_deg=(90, 0, 0))
    facing = FRAME.center + np.array([0.0, -1.0, 0.0])  # the point nearest the camera
    assert np.allclose(sim.apply_points(facing[None])[0], FRAME.center + [1.0, 0, 0])
    assert np.allclose(sim.apply_points(FRAME.center[None])[0], FRAME.center)  # about the centre


def test_pitch_tilts_the_top_towards_the_camera():
    sim = camera_edit(CAM, FRAME, rotate_deg=(0, 90, 0))
    top = FRAME.center + np.array([0.0, 0.0, 1.0])
    assert np.allclose(sim.apply_points(top[None])[0], FRAME.center + [0, -1.0, 0])


def test_positive_roll_turns_clockwise_on_screen():
    sim = camera_edit(CAM, FRAME, rotate_deg=(0, 0, 30))
    right_point = FRAME.center + np.array([1.0, 0.0, 0.0])
    (uv0, uv1), _ = CAM.project(np.stack([right_point, sim.apply_points(right_point[None])[0]]))
    centre_uv = CAM.project(FRAME.center[None])[0][0]
    a0 = math.atan2(uv0[1] - centre_uv[1], uv0[0] - centre_uv[0])
    a1 = math.atan2(uv1[1] - centre_uv[1], uv1[0] - centre_uv[0])
    assert math.degrees(a1 - a0) == pytest.approx(30, abs=1e-6)  # image y is down: +angle is clockwise


def test_euler_order_is_yaw_then_pitch_then_roll():
    R = camera_rotation(CAM, 20, 30, 40)
    right, up, forward = camera_axes(CAM)
    from uplift.core.transforms import axis_angle_matrix
    manual = axis_angle_matrix(forward, math.radians(40)) @ axis_angle_matrix(right, math.radians(30)) \
        @ axis_angle_matrix(up, math.radians(20))
    assert np.allclose(R, manual)
    assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) == pytest.approx(1.0)


def test_translate_is_in_object_sizes_along_camera_axes():
    sim = camera_edit(CAM, FRAME, translate=(1.0, 0.5, 2.0))
    # right 1 size, down 0.5 size (world -Z), forward 2 sizes (world +Y)
    assert np.allclose(sim.apply_points(FRAME.center[None])[0], FRAME.center + [2.0, 4.0, -1.0])


def test_scale_is_about_the_centre():
    sim = camera_edit(CAM, FRAME, scale=2.0)
    p = FRAME.center + np.array([0.5, 0.0, 0.0])
    assert np.allclose(sim.apply_points(p[None])[0], FRAME.center + [1.0, 0, 0])
    with pytest.raises(ConfigError):
        camera_edit(CAM, FRAME, scale=-1.0)


def test_camera_edit_with_a_turned_camera_uses_that_cameras_axes():
    # A camera looking along world +X (yawed 90 degrees): its right axis is world -Y.
    turn = np.eye(4)
    turn[:3, :3] = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # world +X -> old +Y
    w2c = Camera.from_fov(320, 240).world_to_camera @ turn
    cam = Camera.from_fov(320, 240, world_to_camera=w2c)
    right, up, forward = camera_axes(cam)
    assert np.allclose(forward, [1, 0, 0]) and np.allclose(up, [0, 0, 1]) and np.allclose(right, [0, -1, 0])
    frame = ObjectFrame(np.array([5.0, 0, 0]), 1.0)
    moved = camera_edit(cam, frame, translate=(1, 0, 0)).apply_points(frame.center[None])[0]
    assert np.allclose(moved, [5.0, -1.0, 0.0])


def test_object_frame_is_the_camera_aligned_box():
    pts = np.array([[-1.0, 4.0, -0.5], [3.0, 6.0, 0.5], [0.0, 5.0, 0.0]])
    frame = frame_of_points(pts, CAM)
    assert np.allclose(frame.center, [1.0, 5.0, 0.0]) and frame.size == pytest.approx(4.0)
    g = Gaussians.from_colors(torch.tensor(pts, dtype=torch.float32), torch.full((3, 3), 0.5),
                              torch.full((3, 3), 0.01), torch.tensor([0.9, 0.9, 0.01]))
    faint_dropped = object_frame(g, CAM)  # the third point is too faint to count; the box is the same
    assert np.allclose(faint_dropped.center, [1.0, 5.0, 0.0], atol=1e-6)


def _matrix(sim: Similarity) -> np.ndarray:
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = sim.scale * sim.rotation, sim.translation
    return M


@pytest.mark.parametrize("seed", [0, 1])
def test_affine_of_a_similarity_is_apply_similarity(seed):
    g = random_gaussians(seed=seed).replace(sh=torch.randn(64, 9, 3, generator=torch.Generator().manual_seed(seed)))
    sim = random_similarity(seed)
    a, b = apply_affine(g, _matrix(sim)), apply_similarity(g, sim)
    for name in ("means", "quats", "log_scales", "sh"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["stretch", "shear", "mirror"])
def test_affine_maps_every_covariance_exactly(kind):
    """Sigma' = A Sigma A^T and mu' = A mu + t for a non-uniform scale, a shear and a mirror."""
    g = random_gaussians(seed=3).replace(normals=torch.nn.functional.normalize(torch.randn(64, 3), dim=1))
    A = {"stretch": np.diag([2.0, 0.5, 1.0]), "shear": np.array([[1.0, 0.4, 0.0], [0.0, 1.0, 0.2], [0.1, 0.0, 0.8]]),
         "mirror": np.diag([-1.0, 1.0, 1.0]) * 1.5}[kind] @ random_similarity(4).rotation
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = A, [0.3, -2.0, 1.0]
    out = apply_affine(g, M)
    A_t = torch.as_tensor(A)
    torch.testing.assert_close(out.means.double(), g.means.double() @ A_t.T + torch.tensor([0.3, -2.0, 1.0],
                               dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(covariances(out), A_t @ covariances(g) @ A_t.T, atol=1e-7, rtol=1e-4)
    assert torch.allclose(out.quats.norm(dim=1), torch.ones(64), atol=1e-5)
    # Normals stay perpendicular to the mapped tangent plane: n' . (A v) = 0 where n . v = 0.
    tangent = torch.linalg.cross(g.normals.double(), torch.randn(64, 3, dtype=torch.float64))
    assert (out.normals.double() * (tangent @ A_t.T)).sum(1).abs().max() < 1e-5


def test_affine_refuses_a_flattening_matrix():
    with pytest.raises(ConfigError, match="not invertible"):
        apply_affine(random_gaussians(), np.diag([1.0, 0.0, 1.0, 1.0]))
