"""Blender camera settings <-> Camera: known cases worked by hand and round trips."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from uplift.core.blender_camera import BlenderCameraSettings, blender_from_camera, camera_from_blender
from uplift.core.camera import PHOTO_WORLD_TO_CAMERA, Camera
from uplift.core.errors import CameraError


def rotation(rx, ry, rz) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    X = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Z @ Y @ X


def pose(rx=0.3, ry=-0.2, rz=1.0, t=(1.0, -2.0, 0.5)) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation(rx, ry, rz)
    m[:3, 3] = t
    return m


def test_default_camera_known_intrinsics():
    """50 mm on a 36 mm sensor at 1920x1080: fx = 50 * 1920 / 36, principal point at the centre."""
    cam = camera_from_blender(BlenderCameraSettings())
    assert (cam.width, cam.height) == (1920, 1080)
    assert np.allclose(cam.K, [[50 * 1920 / 36, 0, 960], [0, 50 * 1920 / 36, 540], [0, 0, 1]])


def test_auto_fit_portrait_uses_sensor_width_on_the_height():
    cam = camera_from_blender(BlenderCameraSettings(resolution_x=1080, resolution_y=1920))
    assert math.isclose(cam.K[1, 1], 50 * 1920 / 36)


def test_vertical_fit_uses_sensor_height():
    cam = camera_from_blender(BlenderCameraSettings(sensor_fit="VERTICAL", resolution_x=1920, resolution_y=1080))
    assert math.isclose(cam.K[1, 1], 50 * 1080 / 24)


def test_shift_is_a_fraction_of_the_larger_dimension():
    cam = camera_from_blender(BlenderCameraSettings(shift_x=0.1, shift_y=0.2, resolution_x=1000, resolution_y=500))
    # shift moves the frame right/up, so the principal point moves left/down in the image
    assert np.allclose(cam.K[:2, 2], [500 - 100, 250 + 200])


def test_non_square_pixels():
    """pixel_aspect_y / pixel_aspect_x = 2: a pixel covers twice the height, so fy = fx / 2."""
    cam = camera_from_blender(BlenderCameraSettings(pixel_aspect_x=1, pixel_aspect_y=2, resolution_x=800, resolution_y=600))
    assert math.isclose(cam.K[1, 1], cam.K[0, 0] / 2)
    # AUTO compares 800*1 with 600*2: the vertical side is larger in the view plane
    assert math.isclose(cam.K[1, 1], 50 * 600 / 36)


def test_percentage_scales_the_image():
    full = camera_from_blender(BlenderCameraSettings(resolution_x=1000, resolution_y=800))
    half = camera_from_blender(BlenderCameraSettings(resolution_x=1000, resolution_y=800, resolution_percentage=50))
    assert (half.width, half.height) == (500, 400)
    assert np.allclose(half.K[:2], full.K[:2] / 2)


def test_pose_axes():
    """Identity matrix_world: Blender camera looks down -Z with +Y up; OpenCV z forward, y down."""
    cam = camera_from_blender(BlenderCameraSettings(resolution_x=100, resolution_y=100))
    uv, z = cam.project(np.array([[0.0, 0.0, -5.0], [0.0, 1.0, -5.0], [1.0, 0.0, -5.0]]))
    assert np.allclose(z, 5)
    assert np.allclose(uv[0], [50, 50])
    assert uv[1, 1] < 50 and uv[2, 0] > 50  # world up is image up, world right is image right


def test_object_scale_is_ignored():
    m = pose()
    scaled = m.copy()
    scaled[:3, :3] = scaled[:3, :3] * np.array([2.0, 0.5, 3.0])
    a = camera_from_blender(BlenderCameraSettings(matrix_world=m))
    b = camera_from_blender(BlenderCameraSettings(matrix_world=scaled))
    assert np.allclose(a.world_to_camera, b.world_to_camera)


FITS = ["AUTO", "HORIZONTAL", "VERTICAL"]
SIZES = [(1920, 1080), (1080, 1920), (777, 777)]
ASPECTS = [(1.0, 1.0), (1.0, 1.7), (2.5, 1.0)]


@pytest.mark.parametrize("fit,size,aspect", list(itertools.product(FITS, SIZES, ASPECTS)))
def test_blender_ours_blender_round_trip(fit, size, aspect):
    s = BlenderCameraSettings(lens=37.5, sensor_width=23.5, sensor_height=15.6, sensor_fit=fit, shift_x=0.12,
                              shift_y=-0.07, resolution_x=size[0], resolution_y=size[1], resolution_percentage=50,
                              pixel_aspect_x=aspect[0], pixel_aspect_y=aspect[1], matrix_world=pose())
    back = blender_from_camera(camera_from_blender(s), like=s)
    for name in ("sensor_fit", "resolution_x", "resolution_y", "resolution_percentage", "pixel_aspect_x",
                 "pixel_aspect_y", "sensor_width", "sensor_height"):
        assert getattr(back, name) == getattr(s, name), name
    for name in ("lens", "shift_x", "shift_y"):
        assert math.isclose(getattr(back, name), getattr(s, name), rel_tol=1e-12, abs_tol=1e-14), name
    assert np.allclose(back.matrix_world, s.matrix_world, atol=1e-12)


@pytest.mark.parametrize("fx_over_fy", [1.0, 1.25, 0.8])
def test_ours_blender_ours_round_trip(fx_over_fy):
    K = np.array([[900.0 * fx_over_fy, 0, 310.5], [0, 900.0, 250.25], [0, 0, 1]])
    w2c = np.linalg.inv(pose(0.1, 0.2, -0.7, (0.3, 4.0, -1.0)))
    cam = Camera(640, 480, K, w2c)
    s = blender_from_camera(cam)
    assert s.pixel_aspect_x >= 1 and s.pixel_aspect_y >= 1  # Blender's valid range
    again = camera_from_blender(s)
    assert (again.width, again.height) == (640, 480)
    assert np.allclose(again.K, cam.K, rtol=1e-12)
    assert np.allclose(again.world_to_camera, cam.world_to_camera, atol=1e-12)


def test_photo_pose_looks_along_plus_y():
    s = blender_from_camera(Camera.from_fov(400, 300, 60.0))
    view_dir = -s.matrix_world[:3, 2]  # Blender cameras look down local -Z
    up = s.matrix_world[:3, 1]
    assert np.allclose(view_dir, [0, 1, 0]) and np.allclose(up, [0, 0, 1])
    assert np.allclose(camera_from_blender(s).world_to_camera, PHOTO_WORLD_TO_CAMERA)


def test_bad_settings_are_clear_errors():
    with pytest.raises(CameraError, match="sensor fit"):
        BlenderCameraSettings(sensor_fit="DIAGONAL")
    with pytest.raises(CameraError, match="lens"):
        BlenderCameraSettings(lens=0.0)
    with pytest.raises(CameraError, match="resolution_x"):
        BlenderCameraSettings(resolution_x=0)
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    with pytest.raises(CameraError, match="sheared"):
        camera_from_blender(BlenderCameraSettings(matrix_world=sheared))
    skewed = Camera(10, 10, np.array([[10.0, 1.0, 5], [0, 10, 5], [0, 0, 1]]), np.eye(4))
    with pytest.raises(CameraError, match="skew"):
        blender_from_camera(skewed)
