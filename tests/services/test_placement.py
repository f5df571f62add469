"""Placement of a canonical-frame object in a photo's camera (`services.backends.placement`):
a known random pose is recovered from its rendered mask; a left-right symmetric object's
mirror pose is among the hypotheses; cancel, progress and bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from uplift.core.camera import Camera
from uplift.core.errors import BackendFailedError, CancelledError, ConfigError, MaskError
from uplift.core.gaussians import Gaussians
from uplift.core.transforms import Similarity, apply_similarity, camera_rotation
from uplift.services.backends import placement
from uplift.services.backends.placement import (
    Placement, PlacementConfig, best_fit_error, camera_angles, fit_error, iou, mirror_rotation, place,
    place_hypotheses, refine_placement, rotation_error_deg, silhouette, super_fibonacci_rotations,
)

# Unions of boxes (lo, hi) in a TRELLIS-like canonical frame (Z up, inside [-0.5, 0.5]^3).
BAR = ([-0.4, -0.1, -0.3], [0.4, 0.1, -0.1])       # along X
POST = ([0.2, -0.1, -0.1], [0.4, 0.1, 0.4])        # at +X, going up
ARM = ([-0.4, -0.1, -0.1], [-0.25, 0.35, 0.05])    # at -X, going +Y: breaks the y -> -y mirror
ASYMMETRIC = (BAR, POST, ARM)
MIRROR_SYMMETRIC = (BAR, POST)                     # symmetric under y -> -y
MIRROR_Y = np.diag([1.0, -1.0, 1.0])


def box_surface_gaussians(boxes, n: int, seed: int = 0, sigma: float = 0.01) -> Gaussians:
    """n Gaussians uniformly on the outer surface of a union of boxes (a surface object, as
    TRELLIS and mesh samplers give)."""
    rng = np.random.default_rng(seed)
    lo_all, hi_all = np.array([b[0] for b in boxes], float), np.array([b[1] for b in boxes], float)
    sides = hi_all - lo_all
    face_areas = np.stack([sides[:, 1] * sides[:, 2], sides[:, 0] * sides[:, 2], sides[:, 0] * sides[:, 1]], 1)
    points = []
    for lo, hi, areas in zip(lo_all, hi_all, face_areas):
        m = int(6 * n * areas.sum() / face_areas.sum())
        p = rng.uniform(lo, hi, (m, 3))
        axis = rng.choice(3, m, p=areas / areas.sum())
        p[np.arange(m), axis] = np.where(rng.integers(0, 2, m) == 1, hi[axis], lo[axis])
        points.append(p)
    points = np.concatenate(points)
    inside_another = np.zeros(len(points), bool)
    for lo, hi in zip(lo_all, hi_all):
        inside_another |= np.all((points > lo + 1e-9) & (points < hi - 1e-9), axis=1)
    points = points[~inside_another]
    points = points[rng.choice(len(points), n, replace=False)]
    return Gaussians.from_colors(torch.tensor(points, dtype=torch.float32), torch.full((n, 3), 0.6),
                                 torch.full((n, 3), sigma), torch.full((n,), 0.95))


def posed_scene(boxes, seed: int, camera: Camera, depth: float, n: int = 3000):
    """The object, a random true pose at `depth` in front of the photo camera, its mask."""
    rng = np.random.default_rng(seed)
    g = box_surface_gaussians(boxes, n, seed)
    half_width, half_height = camera.width / 2 / camera.K[0, 0], camera.height / 2 / camera.K[1, 1]
    offset = rng.uniform(-0.2, 0.2, 2) * [half_width, half_height] * depth  # well inside the view
    truth = Similarity(Rotation.random(random_state=seed).as_matrix(),
                       np.array([offset[0], depth, offset[1]]), rng.uniform(0.8, 1.2))
    return g, truth, silhouette(apply_similarity(g, truth), camera)


def canonical_center(g: Gaussians) -> np.ndarray:
    means = g.means.double().numpy()
    return (means.min(0) + means.max(0)) / 2


# -- rotations ---------------------------------------------------------------------

def test_rotation_error_is_the_angle_between_rotations():
    a = Rotation.random(random_state=1).as_matrix()
    turn = Rotation.from_rotvec(np.radians(37.0) * np.array([0.6, 0.0, 0.8])).as_matrix()
    assert rotation_error_deg(a, a) == pytest.approx(0.0, abs=1e-5)
    assert rotation_error_deg(turn @ a, a) == pytest.approx(37.0, abs=1e-9)
    assert rotation_error_deg(a, turn @ a) == pytest.approx(37.0, abs=1e-9)  # symmetric
    batch = rotation_error_deg(np.stack([a, turn @ a]), a[None])
    assert np.allclose(batch, [0.0, 37.0], atol=1e-5)


def test_super_fibonacci_rotations_cover_so3_evenly():
    rotations = super_fibonacci_rotations(512)
    assert rotations.shape == (512, 3, 3)
    assert np.allclose(rotations @ rotations.transpose(0, 2, 1), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(rotations), 1.0)
    probes = Rotation.random(200, random_state=3).as_matrix()
    nearest = rotation_error_deg(probes[:, None], rotations[None]).min(1)
    # 512 random rotations leave holes near 40 deg; an even cover keeps every probe within ~25 deg.
    assert nearest.max() < 25.0


def test_camera_angles_invert_camera_rotation():
    cam = Camera.from_fov(64, 48)
    for yaw, pitch, roll in [(10.0, -20.0, 30.0), (-150.0, 45.0, -60.0), (0.0, 0.0, 0.0)]:
        R = camera_rotation(cam, yaw, pitch, roll)
        assert np.allclose(camera_angles(cam, R), (yaw, pitch, roll), atol=1e-9)


def test_mirror_rotation_of_a_symmetric_object_keeps_its_orthographic_silhouette():
    """Seen along the ray to its centre, the mirror pose puts every point where the true pose
    puts its mirror partner, but for depth: the same orthographic silhouette."""
    g = box_surface_gaussians(MIRROR_SYMMETRIC, 500)
    center = canonical_center(g)
    cam = Camera.from_fov(64, 48)
    R = Rotation.random(random_state=5).as_matrix()
    truth = Similarity(R, np.array([0.0, 5.0, 0.0]) - R @ center, 1.0)  # centre on the optical axis
    R_m = mirror_rotation(truth, cam, MIRROR_Y, center)
    assert np.linalg.det(R_m) == pytest.approx(1.0) and rotation_error_deg(R_m, truth.rotation) > 30
    mirrored = Similarity(R_m, np.array([0.0, 5.0, 0.0]) - R_m @ center, 1.0)
    points = g.means.double().numpy()
    partners = (points - center) @ MIRROR_Y + center
    R_wc = cam.world_to_camera[:3, :3]
    a = truth.apply_points(points) @ R_wc.T
    b = mirrored.apply_points(partners) @ R_wc.T
    assert np.allclose(a[:, :2], b[:, :2], atol=1e-9)
    assert not np.allclose(a[:, 2], b[:, 2], atol=1e-3)  # depth differs: only perspective tells them apart


def test_batched_coarse_costs_equal_the_one_at_a_time_reference():
    cam = Camera.from_fov(96, 72)
    g, _, mask = posed_scene(ASYMMETRIC, seed=7, camera=cam, depth=2.0, n=800)
    problem = placement._Chamfer(g, mask, cam, PlacementConfig(), np.random.default_rng(0)).lighter(
        200, 64, np.random.default_rng(1))
    rotations = super_fibonacci_rotations(40)
    costs, xs = problem.coarse(rotations, chunk=16)
    for R, cost, x in zip(rotations, costs, xs):
        reference = problem.fit_box(R)
        assert np.allclose(x, reference, rtol=1e-12, atol=1e-9)
        assert cost == pytest.approx(problem.cost(R, reference), rel=1e-9)


# -- recovery ----------------------------------------------------------------------

def test_a_random_pose_of_an_asymmetric_object_is_recovered():
    cam = Camera.from_fov(160, 120, 50.0)
    g, truth, mask = posed_scene(ASYMMETRIC, seed=2, camera=cam, depth=2.0)
    fractions = []
    hypotheses = place_hypotheses(g, mask, cam, k=3, progress=fractions.append)
    best = hypotheses[0]
    assert rotation_error_deg(best.rotation, truth.rotation) <= 5.0
    assert iou(silhouette(best.gaussians, cam), mask) >= 0.95
    assert [h.rank for h in hypotheses] == list(range(len(hypotheses)))
    for a in range(len(hypotheses)):  # distinct hypotheses
        for b in range(a):
            assert rotation_error_deg(hypotheses[a].rotation, hypotheses[b].rotation) > 15.0
    assert best.score < 0.01 and all(np.isfinite(h.score) for h in hypotheses)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    # The reported angles rebuild the rotation; the depth follows the inflate lifter's rule.
    assert np.allclose(camera_rotation(cam, best.yaw_deg, best.pitch_deg, best.roll_deg), best.rotation, atol=1e-6)
    from uplift.services.backends.inflate import reference_depth
    center = best.similarity.apply_points(canonical_center(g)[None])[0]
    assert (center @ cam.world_to_camera[:3, :3].T + cam.world_to_camera[:3, 3])[2] == pytest.approx(
        reference_depth(mask, cam))


def test_a_mirror_symmetric_object_reports_both_poses():
    """Nearly orthographic: only perspective tells the true pose from its mirror."""
    cam = Camera.from_fov(160, 120, 12.0)
    g, truth, mask = posed_scene(MIRROR_SYMMETRIC, seed=1, camera=cam, depth=9.0)
    mirror = mirror_rotation(truth, cam, MIRROR_Y, canonical_center(g))
    hypotheses = place_hypotheses(g, mask, cam, k=3)
    errors = [rotation_error_deg(h.rotation, truth.rotation) for h in hypotheses]
    mirror_errors = [rotation_error_deg(h.rotation, mirror) for h in hypotheses]
    assert min(errors[:2]) <= 5.0, errors
    assert min(mirror_errors[:3]) <= 8.0, mirror_errors


def test_an_object_already_lined_up_keeps_its_pose_and_depth():
    """'As placed': refining the artist's pose, perturbed by a few degrees, scale and pixels,
    returns to the true pose at the artist's depth (not the inflate convention's)."""
    cam = Camera.from_fov(128, 96, 50.0)
    g, truth, mask = posed_scene(ASYMMETRIC, seed=3, camera=cam, depth=2.5, n=2000)
    center = canonical_center(g)
    nudge = Rotation.from_rotvec(np.radians(4.0) * np.array([0.6, -0.8, 0.0])).as_matrix()
    artist = Similarity.about(truth.apply_points(center[None])[0], nudge, 1.03,
                              np.array([0.02, 0.0, -0.015])).compose(truth)
    refined = refine_placement(g, mask, cam, artist)
    assert rotation_error_deg(refined.rotation, truth.rotation) < 2.0
    error = fit_error(refined, truth, g, cam, mask)
    assert error.center_px < 1.0 and error.rest_iou >= 0.95
    depth = lambda sim: (cam.world_to_camera[:3, :3] @ sim.apply_points(center[None])[0] + cam.world_to_camera[:3, 3])[2]
    assert depth(refined.similarity) == pytest.approx(depth(artist), rel=1e-9)


def test_fit_error_measures_rotation_centre_and_iou():
    cam = Camera.from_fov(96, 72)
    g, truth, mask = posed_scene(ASYMMETRIC, seed=6, camera=cam, depth=2.0, n=1500)
    center = truth.apply_points(canonical_center(g)[None])[0]
    exact = Placement(apply_similarity(g, truth), truth, 1.0, 0.0, 0.0)
    error = fit_error(exact, truth, g, cam, mask)
    assert error.rotation_deg == pytest.approx(0.0, abs=1e-5) and error.center_px == pytest.approx(0.0, abs=1e-9)
    assert error.rest_iou == 1.0
    turned = Similarity.about(center, Rotation.from_rotvec([0.0, 0.0, np.radians(20.0)]).as_matrix()).compose(truth)
    wrong = Placement(apply_similarity(g, turned), turned, 0.0, 0.0, 0.0, rank=1)
    error = fit_error(wrong, truth, g, cam, mask)
    assert error.rotation_deg == pytest.approx(20.0, abs=1e-6) and error.center_px == pytest.approx(0.0, abs=1e-6)
    assert error.rest_iou < 0.95 and error.rank == 1
    assert best_fit_error([wrong, exact], truth, g, cam, mask).rank == 0  # the closer of the top two


# -- control and errors ------------------------------------------------------------

def test_cancel_stops_the_search_with_a_cancelled_error():
    cam = Camera.from_fov(64, 48)
    g, _, mask = posed_scene(ASYMMETRIC, seed=0, camera=cam, depth=2.0, n=500)
    polls = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) > 2

    with pytest.raises(CancelledError, match="cancelled"):
        place_hypotheses(g, mask, cam, cancel=cancel)
    assert len(polls) == 3


def test_bad_input_is_a_clear_error():
    cam = Camera.from_fov(64, 48)
    g = box_surface_gaussians(ASYMMETRIC, 500)
    with pytest.raises(MaskError, match="empty mask"):
        place(g, np.zeros((48, 64), bool), cam)
    with pytest.raises(MaskError, match="camera's size"):
        place(g, np.ones((10, 10), bool), cam)
    mask = np.zeros((48, 64), bool)
    mask[10:30, 20:40] = True
    with pytest.raises(BackendFailedError, match="opaque Gaussians"):
        place(g.subset(torch.arange(5)), mask, cam)
    with pytest.raises(ConfigError):
        PlacementConfig(start_rotations=0)
    with pytest.raises(ConfigError):
        place_hypotheses(g, mask, cam, k=0)


def test_place_keeps_trellis_call_shape():
    """`place` (TRELLIS's call) returns the best hypothesis as a Placement on the camera's world."""
    cam = Camera.from_fov(96, 72)
    g, truth, mask = posed_scene(ASYMMETRIC, seed=4, camera=cam, depth=2.0, n=1500)
    result = place(g, mask, cam, PlacementConfig(contour_rounds=0))
    assert isinstance(result, placement.Placement) and result.rank == 0
    assert len(result.gaussians) == len(g)
    assert iou(silhouette(result.gaussians, cam), mask) >= 0.9
