"""The embedded lifter on a real photo crop: rendering the lifted object through the same
camera reproduces the masked object (silhouette IoU >= 0.95, PSNR >= 30 dB inside the mask)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from uplift.core.camera import Camera
from uplift.core.image_io import load_image
from uplift.core.render import render
from uplift.services.backends.inflate import InflateConfig, InflateLifter, reference_depth

# The dog's head in dog.jpg, cropped to x 150..450, y 180..420 and halved: a hand-drawn outline.
DOG_HEAD = np.array([[60, 60], [90, 45], [150, 55], [215, 80], [265, 100], [272, 150], [250, 180],
                     [210, 175], [150, 215], [100, 240], [40, 240], [20, 180], [30, 110]]) / 2


@pytest.fixture(scope="module")
def dog(shared_data):
    import cv2

    photo = load_image(shared_data / "photos" / "dog.jpg")[180:420, 150:450]
    image = cv2.resize(photo, (150, 120), interpolation=cv2.INTER_AREA)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(DOG_HEAD).astype(np.int32)], 1)
    # A camera that is not the photo default: off-centre principal point, turned and moved.
    from uplift.core.transforms import axis_angle_matrix

    w2c = np.eye(4)
    w2c[:3, :3] = axis_angle_matrix(np.array([0.3, 1.0, 0.2]), 0.4) @ Camera.from_fov(2, 2).world_to_camera[:3, :3]
    w2c[:3, 3] = [0.3, -0.2, 0.5]
    K = np.array([[140.0, 0, 70.0], [0, 140.0, 64.0], [0, 0, 1]])
    return image, mask.astype(bool), Camera(150, 120, K, w2c)


def psnr_inside(rgb: np.ndarray, image: np.ndarray, mask: np.ndarray) -> float:
    mse = float(((rgb[mask] - image[mask] / 255.0) ** 2).mean())
    return 10 * np.log10(1.0 / mse)


@pytest.mark.slow
def test_render_reproduces_the_masked_object(dog):
    image, mask, cam = dog
    g = InflateLifter().lift(image, mask, cam)
    rgba = render(g, cam, backend="torch").rgba.numpy()
    silhouette = rgba[..., 3] > 0.5
    iou = (silhouette & mask).sum() / (silhouette | mask).sum()
    assert iou >= 0.95
    assert psnr_inside(rgba[..., :3], image, mask) >= 30.0


def test_colour_fit_is_what_reaches_30_db(dog):
    """Without the fit the overlapping splats blur the photo; the fit must improve PSNR."""
    image, mask, cam = dog
    raw = render(InflateLifter(InflateConfig(fit_passes=0)).lift(image, mask, cam), cam, backend="torch").rgba.numpy()
    fitted = render(InflateLifter(InflateConfig(fit_passes=2)).lift(image, mask, cam), cam, backend="torch").rgba.numpy()
    assert psnr_inside(fitted[..., :3], image, mask) > psnr_inside(raw[..., :3], image, mask) + 1.0


def test_relief_is_closed_and_sized_by_the_convention(dog):
    image, mask, cam = dog
    g = InflateLifter(InflateConfig(fit_passes=0)).lift(image, mask, cam)
    pts = g.means.double().numpy()
    cam_pts = pts @ cam.world_to_camera[:3, :3].T + cam.world_to_camera[:3, 3]
    z0 = reference_depth(mask, cam)
    n = int(mask.sum())
    front, back = cam_pts[:n, 2], cam_pts[n:2 * n, 2]
    assert (front < z0).all() and (back > z0).all()            # a front and a back surface around the plane
    half, middle = (back - front) / 2, (front + back) / 2       # mirror images about a middle surface: closed
    assert np.allclose(middle - z0, half ** 2 / z0, atol=1e-6)  # which bows back like a round solid's
    uv, _ = cam.project(pts)
    px = np.clip(np.floor(uv).astype(int), 0, [149, 119])
    assert mask[px[:, 1], px[:, 0]].all()                       # every splat sits on a ray through the mask
    ys, xs = np.nonzero(mask)
    width_px = max((xs.max() - xs.min() + 1) / cam.K[0, 0], (ys.max() - ys.min() + 1) / cam.K[1, 1])
    assert width_px * z0 == pytest.approx(1.0)                  # the bounding box spans one world unit


def test_side_view_shows_no_cracks(dog):
    """Seen from 60 degrees aside, the object's silhouette has no holes (skirts close the steps)."""
    import cv2

    from uplift.core.transforms import camera_rotation, frame_of_points

    image, mask, cam = dog
    g = InflateLifter(InflateConfig(fit_passes=0)).lift(image, mask, cam)
    centre = frame_of_points(g.means.double().numpy(), cam).center
    R = camera_rotation(cam, yaw_deg=60.0)  # turn the camera about the object's centre
    c2w = cam.camera_to_world.copy()
    c2w[:3, :3] = R @ c2w[:3, :3]
    c2w[:3, 3] = R @ (c2w[:3, 3] - centre) + centre
    side = Camera(cam.width, cam.height, cam.K, np.linalg.inv(c2w))
    sil = (render(g, side, backend="torch").rgba[..., 3].numpy() > 0.5).astype(np.uint8)
    assert sil.sum() > 0.3 * mask.sum()
    flood = np.pad(1 - sil, 1, constant_values=1)
    cv2.floodFill(flood, None, (0, 0), 2)
    holes = (flood[1:-1, 1:-1] == 1).sum()
    assert holes <= 0.002 * sil.sum()


def test_gaussian_count_is_capped_with_larger_splats(dog):
    image, mask, cam = dog
    small = InflateLifter(InflateConfig(fit_passes=0, max_gaussians=6000)).lift(image, mask, cam)
    assert len(small) <= 6000
    full = InflateLifter(InflateConfig(fit_passes=0)).lift(image, mask, cam)
    assert small.scales.max() > full.scales.max()
    rgba = render(small, cam, backend="torch").rgba.numpy()
    sil = rgba[..., 3] > 0.5
    assert (sil & mask).sum() / (sil | mask).sum() >= 0.85   # coarser, still the same object
    fitted = InflateLifter(InflateConfig(fit_passes=2, max_gaussians=6000)).lift(image, mask, cam)
    fitted_rgb = render(fitted, cam, backend="torch").rgba.numpy()[..., :3]
    # the minimal-residual fit never makes the full-resolution error grow
    assert psnr_inside(fitted_rgb, image, mask) >= psnr_inside(rgba[..., :3], image, mask)


def test_a_disc_lifts_to_the_sphere_inscribed_in_its_visual_cone():
    """A disc of radius R px is the silhouette of a sphere whose centre lies at d = z0 / cos^2(theta)
    (tan theta = R / f; its rim circle sits in front of the centre, at z0) with radius d sin(theta).
    Tolerances: the lifter measures heights in pixels at z0, off by 1/cos(theta) (1.6% here) plus
    half a sample of the distance transform."""
    import cv2

    cam = Camera.from_fov(160, 120, 60.0)
    R = 30
    mask = np.zeros((120, 160), np.uint8)
    cv2.circle(mask, (80, 60), R, 1, -1)
    mask = mask.astype(bool)
    g = InflateLifter(InflateConfig(fit_passes=0, fill_unseen=False)).lift(np.zeros((120, 160, 3), np.uint8), mask, cam)
    pts = g.means.double().numpy() @ cam.world_to_camera[:3, :3].T + cam.world_to_camera[:3, 3]
    z0 = reference_depth(mask, cam)
    theta = np.arctan((R + 0.5) / cam.K[0, 0])
    d, r = z0 / np.cos(theta) ** 2, z0 / np.cos(theta) ** 2 * np.sin(theta)
    on_axis = np.hypot(pts[:, 0], pts[:, 1]) < 0.03 * r
    front, back = pts[on_axis, 2].min(), pts[on_axis, 2].max()
    assert (front + back) / 2 == pytest.approx(d, rel=0.01)     # its centre, the edit's pivot, as deep as the sphere's
    assert back - front == pytest.approx(2 * r, rel=0.05)       # as thick as it is wide
    assert pts[:, 2].min() > 0


def _sphere_lift(tangent: bool):
    import cv2

    cam = Camera.from_fov(160, 120, 60.0)
    mask = np.zeros((120, 160), np.uint8)
    cv2.circle(mask, (80, 60), 30, 1, -1)
    image = np.zeros((120, 160, 3), np.uint8)
    g = InflateLifter(InflateConfig(fit_passes=0, fill_unseen=False, tangent_front=tangent)).lift(
        image, mask.astype(bool), cam)
    return g, cam, mask.astype(bool)


def test_front_splats_lie_in_the_inflated_surface():
    """On the sphere a disc lifts to, each front splat's thin axis is the sphere's normal: facing
    the camera at the middle, nearly edge-on to the ray at the rim (tilt up to 75.5 deg, where the
    stretch 1/cos caps), and its longer axis runs down the slope."""
    from uplift.core import quaternion
    from uplift.services.backends.inflate import TILT_STRETCH_MAX

    g, cam, mask = _sphere_lift(tangent=True)
    R = cam.world_to_camera[:3, :3]
    axes = (R @ quaternion.to_matrix(g.quats.double()).numpy())  # [N, 3, 3] columns in camera axes
    pts = g.means.double().numpy() @ R.T + cam.world_to_camera[:3, 3]
    scales = g.scales.double().numpy()
    # Front splats: thin along their normal (skirts are long along the ray) and of the full in-plane
    # size at their depth (back splats are HIDDEN_SIGMA of it).
    in_plane = scales[:, 1] / pts[:, 2]
    front = (scales[:, 2] < scales[:, 1]) & (in_plane > 0.75 * in_plane.max())
    tilted = front & (scales[:, 0] > 1.01 * scales[:, 1])
    assert tilted.sum() > 50
    view = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    normal = axes[:, :, 2]
    cos_tilt = np.abs((normal * view).sum(1))
    # the stretch is 1/cos(tilt), capped
    stretch = scales[:, 0] / scales[:, 1]
    np.testing.assert_allclose(stretch[front], 1.0 / np.maximum(cos_tilt[front], 1 / TILT_STRETCH_MAX), rtol=1e-3)
    # near the optical axis (the disc's middle) they face the camera; towards the rim they tilt
    radial = np.hypot(pts[:, 0] / pts[:, 2], pts[:, 1] / pts[:, 2])
    rim = radial.max()
    assert cos_tilt[front & (radial < 0.2 * rim)].min() > 0.97
    assert np.median(cos_tilt[front & (radial > 0.95 * rim)]) < 0.5
    # the normal leans outwards at the rim, as the sphere's does
    outward = np.stack([pts[:, 0], pts[:, 1]], 1) / np.maximum(np.hypot(pts[:, 0], pts[:, 1]), 1e-9)[:, None]
    lean = (normal[:, :2] * outward).sum(1)
    assert np.median(lean[front & (radial > 0.8 * rim)]) > 0.5


def test_tilted_front_splats_cover_the_photo_as_camera_facing_ones_do():
    """At rest the photo camera sees the tilted, stretched discs with the coverage the camera-
    facing ones give (same silhouette, within a pixel's worth of the rim)."""
    flat_g, cam, mask = _sphere_lift(tangent=False)
    tilted_g, _, _ = _sphere_lift(tangent=True)
    flat = render(flat_g, cam, backend="torch").alpha.numpy() > 0.5
    tilted = render(tilted_g, cam, backend="torch").alpha.numpy() > 0.5
    iou = (flat & tilted).sum() / (flat | tilted).sum()
    assert iou > 0.97, iou
    assert (tilted & mask).sum() / mask.sum() > 0.98


def test_skirt_splats_lie_in_the_side_wall():
    """Skirt splats (long along the ray) are discs in the wall they fill: their wide axis runs along
    the rim (across the image's radial direction on a disc), as wide as a front splat there, their
    thin one across it, so a turn shows a closed wall instead of one streak per row of samples."""
    from uplift.core import quaternion
    from uplift.services.backends.inflate import HIDDEN_SIGMA

    g, cam, _ = _sphere_lift(tangent=True)
    R = cam.world_to_camera[:3, :3]
    axes = R @ quaternion.to_matrix(g.quats.double()).numpy()
    pts = g.means.double().numpy() @ R.T + cam.world_to_camera[:3, 3]
    scales = g.scales.double().numpy()
    skirt = scales[:, 2] > 1.5 * scales[:, 1]
    assert skirt.sum() > 100
    outward = np.stack([pts[:, 0], pts[:, 1]], 1) / np.maximum(np.hypot(pts[:, 0], pts[:, 1]), 1e-9)[:, None]
    off_axis = skirt & (np.hypot(pts[:, 0], pts[:, 1]) / pts[:, 2] > 0.05)
    along_rim = np.abs((axes[:, :2, 0] * outward).sum(1))
    assert np.median(along_rim[off_axis]) < 0.2  # within ~12 deg: the sampled distance field's gradient
    np.testing.assert_allclose(scales[skirt, 0], scales[skirt, 1] / HIDDEN_SIGMA, rtol=1e-4)
    np.testing.assert_allclose(np.abs(axes[skirt, 2, 2]), 1.0, atol=1e-6)  # the third axis is the ray's


@pytest.mark.parametrize("gx, gy", [(1.0, 0.0), (0.0, -2.0), (0.6, 0.8), (0.0, 0.0)])
def test_wall_frames_are_rotations_with_the_tangent_across_the_gradient(gx, gy):
    from uplift.services.backends.inflate import _wall_frames

    frame = _wall_frames(np.array([gx]), np.array([gy]))[0]
    np.testing.assert_allclose(frame.T @ frame, np.eye(3), atol=1e-12)
    assert np.linalg.det(frame) == pytest.approx(1.0)  # not a reflection: quaternions cannot hold one
    assert abs(frame[:2, 0] @ np.array([gx, gy])) < 1e-12
