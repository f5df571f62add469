"""The bpy-free half of the GPU splat draw: texture planes, the 16-bit back-to-front order,
the re-sort rule and Blender's view matrices in OpenCV terms (checked against plain OpenGL
projection written out here)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from uplift.core.camera import Camera
from uplift.core.errors import ConfigError, RenderBackendError
from uplift.core.gaussians import Gaussians
from uplift.core import splat_pack
from uplift.core.splat_pack import SplatView, ViewState


def _gaussians(n: int, degree: int = 0, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(means=torch.randn(n, 3, generator=gen), quats=torch.randn(n, 4, generator=gen) * 3,
                     log_scales=torch.randn(n, 3, generator=gen) - 3, opacity_logits=torch.randn(n, generator=gen),
                     sh=torch.randn(n, (degree + 1) ** 2, 3, generator=gen))


def test_geometry_planes_hold_each_splat_in_its_texel():
    g = _gaussians(5000)
    planes = splat_pack.pack_geometry(g)
    assert set(planes) == set(splat_pack.GEOMETRY_PLANES)
    for plane in planes.values():
        assert plane.shape == (2 * splat_pack.TEX_WIDTH, 4) and plane.dtype == np.float32
        assert not plane[len(g):].any()  # padding texels are zero
    np.testing.assert_allclose(planes["center"][:5000, :3], g.means.numpy())
    np.testing.assert_allclose(planes["center"][:5000, 3], g.opacities.numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(planes["rotation"][:5000], axis=1), 1.0, rtol=1e-6)
    q = g.quats.numpy()
    np.testing.assert_allclose(planes["rotation"][:5000], q / np.linalg.norm(q, axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(planes["scale"][:5000, :3], g.scales.numpy(), rtol=1e-6)


def test_color_plane_is_the_renderers_sh_rule():
    from uplift.core.render.sh import sh_to_rgb

    g = _gaussians(300, degree=3)
    eye = np.array([0.5, -4.0, 1.0])
    plane = splat_pack.pack_color(g, eye)
    expected = sh_to_rgb(g.sh, g.means, torch.tensor(eye, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(plane[:300, :3], expected, rtol=1e-6)
    assert (plane[:300, :3] >= 0).all()


def test_too_many_splats_is_a_clear_error():
    with pytest.raises(RenderBackendError, match="at most"):
        splat_pack.plane_rows(splat_pack.MAX_SPLATS + 1)


@pytest.mark.parametrize("n", [0, 1, 7, 10_000])
def test_back_to_front_equals_the_exact_reverse_sort(n):
    depths = np.random.default_rng(n).permutation(np.linspace(1.0, 50.0, n)).astype(np.float32)  # one per bin
    np.testing.assert_array_equal(splat_pack.back_to_front(depths), splat_pack.back_to_front_reference(depths))


def test_back_to_front_with_ties_and_close_depths_is_far_to_near():
    rng = np.random.default_rng(1)
    depths = np.round(rng.uniform(2.0, 3.0, 50_000), 3).astype(np.float32)  # many exact ties
    order = splat_pack.back_to_front(depths)
    assert sorted(order.tolist()) == list(range(len(depths)))
    bin_width = (depths.max() - depths.min()) / 65535
    assert (np.diff(depths[order]) <= bin_width).all()  # never nearer-then-farther by more than a bin
    ties = np.flatnonzero(depths == depths[order[0]])
    assert order[0] == ties.max()  # equal depths: reverse index order, as the reference


def test_order_plane_is_exact_for_large_indices():
    order = np.arange(splat_pack.MAX_SPLATS - 5, splat_pack.MAX_SPLATS)
    plane = splat_pack.order_plane(order)
    np.testing.assert_array_equal(plane[:5].astype(np.int64), order)


def _gl_matrices(cam: Camera, near=0.1, far=100.0):
    """OpenGL view and perspective projection matching an OpenCV camera (the usual formulas)."""
    fx, fy, cx, cy = cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]
    W, H = cam.width, cam.height
    view = np.diag([1.0, -1.0, -1.0, 1.0]) @ cam.world_to_camera
    P = np.zeros((4, 4))
    P[0, 0], P[0, 2] = 2 * fx / W, 1 - 2 * cx / W
    P[1, 1], P[1, 2] = 2 * fy / H, 2 * cy / H - 1
    P[2, 2], P[2, 3] = -(far + near) / (far - near), -2 * far * near / (far - near)
    P[3, 2] = -1.0
    return view, P


def _gl_pixels(view, P, model, points, W, H):  # -> [N, 2] pixels (y down, centres +0.5), [N] ndc z
    clip = (P @ view @ model @ np.c_[points, np.ones(len(points))].T).T
    ndc = clip[:, :3] / clip[:, 3:]
    return np.stack(((ndc[:, 0] + 1) * W / 2, (1 - ndc[:, 1]) * H / 2), 1), ndc[:, 2]


def _model():
    angle = 0.7
    model = np.eye(4)
    model[:3, :3] = 1.5 * np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0],
                                    [0, 0, 1]])
    model[:3, 3] = [0.2, 0.1, -0.3]
    return model


def test_blender_perspective_view_projects_like_opengl():
    cam = Camera.from_fov(320, 200, 55.0, world_to_camera=np.array(
        [[1.0, 0, 0, 0.1], [0, 0, -1, 0.2], [0, 1, 0, 4.0], [0, 0, 0, 1]]))
    cam = Camera(cam.width, cam.height, cam.K + np.array([[0, 0, 7.0], [0, 0, -5.0], [0, 0, 0]]), cam.world_to_camera)
    view, P = _gl_matrices(cam)
    model = _model()
    points = np.random.default_rng(0).normal(size=(50, 3)) * 0.5
    expected, ndc_z = _gl_pixels(view, P, model, points, cam.width, cam.height)
    sv = SplatView.from_blender(view, P, cam.width, cam.height, model)
    assert not sv.ortho
    np.testing.assert_allclose(sv.pixel(points), expected, atol=1e-9)
    np.testing.assert_allclose(sv.intrinsics, (cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]), atol=1e-9)
    z = (points @ sv.view_model[:3, :3].T + sv.view_model[:3, 3])[:, 2]
    a, b = sv.depth_ab
    np.testing.assert_allclose(a + b / z, ndc_z, atol=1e-9)
    # The same view from the camera record and the object's matrix.
    np.testing.assert_allclose(SplatView.from_camera(cam, model).view_model, sv.view_model, atol=1e-12)


def test_blender_orthographic_view_projects_like_opengl():
    view = np.diag([1.0, -1.0, -1.0, 1.0]) @ np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 6.0], [0, 0, 0, 1]])
    W, H, half_w, half_h, near, far = 300, 200, 3.0, 2.0, 0.5, 20.0
    P = np.array([[1 / half_w, 0, 0, 0.1], [0, 1 / half_h, 0, -0.2],
                  [0, 0, -2 / (far - near), -(far + near) / (far - near)], [0, 0, 0, 1.0]])
    points = np.random.default_rng(2).normal(size=(40, 3))
    model = _model()
    expected, ndc_z = _gl_pixels(view, P, model, points, W, H)
    sv = SplatView.from_blender(view, P, W, H, model)
    assert sv.ortho
    np.testing.assert_allclose(sv.pixel(points), expected, atol=1e-9)
    z = (points @ sv.view_model[:3, :3].T + sv.view_model[:3, 3])[:, 2]
    np.testing.assert_allclose(sv.depth_ab[0] * z + sv.depth_ab[1], ndc_z, atol=1e-9)


def test_camera_depths_match_the_view():
    cam = Camera.from_fov(64, 48, 50.0)
    model = _model()
    means = np.random.default_rng(3).normal(size=(100, 3)).astype(np.float32)
    view = SplatView.from_camera(cam, model)
    expected = (cam.world_to_camera @ model @ np.c_[means, np.ones(100)].T)[2]
    np.testing.assert_allclose(splat_pack.camera_depths(means, view.view_model), expected, rtol=1e-5, atol=1e-5)


def _turned(cam: Camera, degrees: float, shift=(0.0, 0.0, 0.0)) -> SplatView:
    t = math.radians(degrees)
    turn = np.eye(4)
    turn[:3, :3] = [[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]]  # about camera y
    turn[:3, 3] = shift
    return SplatView.from_camera(Camera(cam.width, cam.height, cam.K, turn @ cam.world_to_camera))


def test_view_state_resorts_on_turns_and_deformations_not_on_moves():
    cam = Camera.from_fov(64, 48, 50.0)
    state = ViewState()
    view = SplatView.from_camera(cam)
    assert state.needs_sort(view, generation=0)
    state.sorted_for(view, 0)
    assert not state.needs_sort(view, 0)
    assert not state.needs_sort(_turned(cam, 0.0, shift=(3.0, -1.0, 2.0)), 0)  # moved, not turned (KIRI #68)
    assert not state.needs_sort(_turned(cam, 0.5), 0)
    assert state.needs_sort(_turned(cam, 1.5), 0)
    assert state.needs_sort(_turned(cam, 1.5, shift=(0.0, 0.0, 1.0)), 0)
    assert state.needs_sort(view, 1)  # deformed


def test_moved_depths_keep_their_order():
    """Why a move needs no re-sort: camera z changes by the same amount for every splat."""
    cam = Camera.from_fov(64, 48, 50.0)
    means = np.random.default_rng(4).normal(size=(2000, 3)).astype(np.float32)
    before = splat_pack.back_to_front_reference(splat_pack.camera_depths(means, SplatView.from_camera(cam).view_model))
    moved = _turned(cam, 0.0, shift=(0.7, -0.4, 1.3))
    after = splat_pack.back_to_front_reference(splat_pack.camera_depths(means, moved.view_model).astype(np.float64))
    np.testing.assert_array_equal(before[:100], after[:100])


def test_view_state_recolors_when_the_eye_moves():
    cam = Camera.from_fov(64, 48, 50.0)
    state = ViewState()
    view = SplatView.from_camera(cam)
    state.sorted_for(view, 0)
    state.colored_for(view)
    assert not state.needs_color(view, 0, distance=4.0)
    assert state.needs_color(_turned(cam, 0.0, shift=(0.1, 0.0, 0.0)), 0, distance=4.0)


def test_bad_views_are_config_errors():
    with pytest.raises(ConfigError):
        SplatView(np.eye(3), (1.0, 1.0, 0.0, 0.0), 10, 10)
    with pytest.raises(ConfigError):
        SplatView(np.eye(4), (0.0, 1.0, 0.0, 0.0), 10, 10)
    with pytest.raises(ConfigError):
        SplatView(np.eye(4), (1.0, 1.0, 0.0, 0.0), 0, 10)


def test_photo_planes_map_a_zoomed_view_through_their_camera_and_no_other():
    """The pixel map takes a view's pixels to the planes' camera pixels wherever the view shares
    the camera's pose (Blender's view through the scene camera zooms and pans); other poses get None."""
    from uplift.core.render.reprojection import PhotoSource

    model = _model()
    cam = Camera.from_fov(64, 48, 50.0, world_to_camera=np.array(
        [[1.0, 0, 0, 0.1], [0, 0, -1, 0.2], [0, 1, 0, 4.0], [0, 0, 0, 1]]))
    g = _gaussians(40, degree=1)
    photo = PhotoSource(torch.rand(48, 64, 3), cam, g, torch.ones(len(g)))
    planes = splat_pack.photo_planes(g, model, cam, photo)
    assert len(planes.features) == 3 and planes.color.shape == planes.features[0].shape
    K = cam.K
    zoomed = Camera(101, 77, np.array([[K[0, 0] * 1.7, 0, K[0, 2] * 1.7 + 9], [0, K[1, 1] * 1.7, K[1, 2] * 1.7 - 4],
                                       [0, 0, 1.0]]), cam.world_to_camera)
    view = SplatView.from_camera(zoomed, model)
    sx, sy, ox, oy = planes.pixel_map(view)
    points = np.random.default_rng(1).normal(size=(20, 3))
    mapped = view.pixel(points) * [sx, sy] + [ox, oy]
    np.testing.assert_allclose(mapped, SplatView.from_camera(cam, model).pixel(points), atol=1e-9)
    turned = np.eye(4)
    turned[:3, :3] = [[math.cos(0.01), 0, math.sin(0.01)], [0, 1, 0], [-math.sin(0.01), 0, math.cos(0.01)]]
    other = Camera(zoomed.width, zoomed.height, zoomed.K, turned @ cam.world_to_camera)
    assert planes.pixel_map(SplatView.from_camera(other, model)) is None
    # Colours: the view's SH colours scaled by 1 - u (u = visibility x fade: photo_features column 0).
    from uplift.core.render.reprojection import photo_features
    from uplift.core.transforms import apply_similarity, similarity_from_matrix

    u = photo_features(apply_similarity(g, similarity_from_matrix(model)), cam, photo)[:, 0].numpy()
    plain = splat_pack.pack_color(g, SplatView.from_camera(cam, model).eye)
    np.testing.assert_allclose(planes.color[:40, :3], plain[:40, :3] * (1 - u[:, None]), rtol=1e-5, atol=1e-6)
