"""Our K and view matrix against Blender's own projection, in headless bpy.

For camera objects with every sensor fit, lens shift, non-square pixels, resolution
percentage and a rotated, translated (and scaled) pose, points projected with the
`Camera` from `camera_from_blender` land within 1e-3 px of
`bpy_extras.object_utils.world_to_camera_view`. Blender -> ours -> Blender gives
back the same settings (compared as Blender stores them, float32).
"""
from __future__ import annotations

import math
import os
import subprocess

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from bpy_extras.object_utils import world_to_camera_view  # noqa: E402
from mathutils import Euler, Matrix, Vector  # noqa: E402

from uplift.blender.scene_io import apply_camera_settings, camera_settings  # noqa: E402
from uplift.core.blender_camera import blender_from_camera, camera_from_blender  # noqa: E402
from uplift.core.camera import Camera  # noqa: E402
from uplift.core.photo import camera_from_photo  # noqa: E402

from blender_lines import LINES, MAIN_PYTHON, require  # noqa: E402
from uplift_bpy_harness import REPO, package_shim  # noqa: E402

pytestmark = pytest.mark.bpy

CASES = [
    # sensor_fit, res_x, res_y, percentage, aspect_x, aspect_y, shift_x, shift_y, lens, sensor_w, sensor_h
    ("AUTO", 1920, 1080, 100, 1.0, 1.0, 0.0, 0.0, 50.0, 36.0, 24.0),
    ("AUTO", 1080, 1920, 100, 1.0, 1.0, 0.1, -0.2, 35.0, 36.0, 24.0),     # portrait: width fits the height
    ("AUTO", 1000, 1000, 50, 1.0, 1.0, -0.05, 0.07, 85.0, 23.5, 15.6),
    ("AUTO", 1200, 1000, 100, 1.0, 1.5, 0.2, 0.1, 28.0, 36.0, 24.0),      # aspect flips AUTO to vertical
    ("HORIZONTAL", 640, 480, 100, 1.0, 1.0, 0.25, 0.0, 24.0, 36.0, 24.0),
    ("HORIZONTAL", 480, 640, 200, 2.0, 1.0, 0.0, 0.3, 50.0, 32.0, 18.0),  # non-square, portrait
    ("VERTICAL", 640, 480, 100, 1.0, 1.0, -0.1, 0.15, 50.0, 36.0, 24.0),
    ("VERTICAL", 720, 1280, 25, 1.0, 1.2, 0.05, -0.05, 40.0, 36.0, 30.0),
]


def write_settings(obj, scene, s) -> None:
    """Blender settings onto a camera object and scene, the plain bpy way."""
    data, r = obj.data, scene.render
    data.sensor_fit, data.sensor_width, data.sensor_height = s.sensor_fit, s.sensor_width, s.sensor_height
    data.lens, data.shift_x, data.shift_y = s.lens, s.shift_x, s.shift_y
    r.resolution_x, r.resolution_y, r.resolution_percentage = s.resolution_x, s.resolution_y, s.resolution_percentage
    r.pixel_aspect_x, r.pixel_aspect_y = s.pixel_aspect_x, s.pixel_aspect_y
    obj.matrix_world = Matrix(np.asarray(s.matrix_world).tolist())  # rows; a nested list would be read as columns
    bpy.context.view_layer.update()


@pytest.fixture(scope="module")
def scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def make_camera(scene, case, index):
    fit, rx, ry, pct, ax, ay, sx, sy, lens, sw, sh = case
    data = bpy.data.cameras.new(f"cam{index}")
    obj = bpy.data.objects.new(f"cam{index}", data)
    scene.collection.objects.link(obj)
    scene.camera = obj
    data.sensor_fit, data.sensor_width, data.sensor_height = fit, sw, sh
    data.lens, data.shift_x, data.shift_y = lens, sx, sy
    r = scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = rx, ry, pct
    r.pixel_aspect_x, r.pixel_aspect_y = ax, ay
    rot = Euler((0.3 + 0.2 * index, -0.4, 1.1 * index), "XYZ").to_matrix().to_4x4()
    obj.matrix_world = Matrix.Translation((1.5 - index, -3.0, 0.7 * index)) @ rot @ Matrix.Diagonal((1.0, 1.0 + 0.1 * index, 1.0, 1.0))
    bpy.context.view_layer.update()
    return obj


def points_around_view(obj, scene, count=300, seed=0):
    """Random points in front of the camera over its frame and a little beyond, built
    from Blender's own view frame (corners: top-right, bottom-right, bottom-left, top-left)."""
    rng = np.random.default_rng(seed)
    tr, br, bl, _ = (np.array(v) for v in obj.data.view_frame(scene=scene))
    s, t = rng.uniform(-0.1, 1.1, count), rng.uniform(-0.1, 1.1, count)
    local = bl + s[:, None] * (br - bl) + t[:, None] * (tr - br)
    # 2 to 8 units deep: closer, Blender's own float32 rounding (~5e-7 of a coordinate, times a
    # focal length of ~2000 px over the depth) alone approaches the 1e-3 px tolerance
    local *= (rng.uniform(2.0, 8.0, count) / -local[:, 2])[:, None]
    m = np.array(obj.matrix_world.normalized())
    # float32-representable, so Blender (float32) and we (float64) project the very same points
    return (local @ m[:3, :3].T + m[:3, 3]).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("index", range(len(CASES)))
def test_projection_matches_world_to_camera_view(scene, index):
    obj = make_camera(scene, CASES[index], index)
    cam = camera_from_blender(camera_settings(obj, scene))
    fit, rx, ry, pct = CASES[index][:4]
    assert (cam.width, cam.height) == (rx * pct // 100, ry * pct // 100)
    points = points_around_view(obj, scene, seed=index)
    uv, depth = cam.project(points)
    assert len(points) > 0
    for p, (u, v), z in zip(points, uv, depth):
        ndc = world_to_camera_view(scene, obj, Vector(p))
        # Blender's normalised frame: x right from the left edge, y up from the bottom edge
        assert abs(u - ndc.x * cam.width) < 1e-3
        assert abs(v - (1.0 - ndc.y) * cam.height) < 1e-3
        assert abs(z - ndc.z) < 1e-4 * max(1.0, ndc.z)


@pytest.mark.parametrize("index", range(len(CASES)))
def test_blender_ours_blender_is_exact(scene, index):
    obj = make_camera(scene, CASES[index], index)
    original = camera_settings(obj, scene)
    again = blender_from_camera(camera_from_blender(original), like=original)
    f32 = np.float32
    for name in ("lens", "sensor_width", "sensor_height", "shift_x", "shift_y", "pixel_aspect_x", "pixel_aspect_y"):
        assert f32(getattr(again, name)) == f32(getattr(original, name)), name
    for name in ("sensor_fit", "resolution_x", "resolution_y", "resolution_percentage"):
        assert getattr(again, name) == getattr(original, name), name
    assert np.allclose(again.matrix_world, original.matrix_world, atol=1e-6)
    # Written back into Blender, the camera reads the same numbers again.
    copy = bpy.data.objects.new(f"copy{index}", bpy.data.cameras.new(f"copy{index}"))
    scene.collection.objects.link(copy)
    write_settings(copy, scene, again)
    read = camera_settings(copy, scene)
    for name in ("lens", "shift_x", "shift_y", "sensor_width", "sensor_height"):
        assert f32(getattr(read, name)) == f32(getattr(original, name)), name
    assert np.allclose(np.array(copy.matrix_world), np.array(obj.matrix_world), atol=1e-6)


def test_photo_camera_set_up_in_blender_projects_like_ours(scene):
    """A camera made from a photo (default settings), written to Blender, projects as ours does."""
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 20, 30)).save(buf, format="JPEG")
    cam = camera_from_photo(buf.getvalue())
    obj = bpy.data.objects.new("photo_cam", bpy.data.cameras.new("photo_cam"))
    scene.collection.objects.link(obj)
    scene.camera = obj
    write_settings(obj, scene, blender_from_camera(cam))
    assert (scene.render.resolution_x, scene.render.resolution_y) == (300, 200)
    rng = np.random.default_rng(1)
    points = np.stack([rng.uniform(-1, 1, 50), rng.uniform(2, 6, 50), rng.uniform(-0.6, 0.6, 50)], 1)  # in front: +Y
    uv, _ = cam.project(points)
    for p, (u, v) in zip(points, uv):
        ndc = world_to_camera_view(scene, obj, Vector(p))
        assert abs(u - ndc.x * 300) < 1e-3 and abs(v - (1 - ndc.y) * 200) < 1e-3
    assert isinstance(cam, Camera) and math.isclose(cam.K[0, 0], cam.K[1, 1])


def test_scene_io_apply_camera_settings_keeps_the_pose(scene):
    """The Blender layer's writer (used by Load Photo) keeps the pose: bpy reads a nested
    list assigned to matrix_world column-major, which once transposed it."""
    obj = make_camera(scene, CASES[1], 1)
    settings = camera_settings(obj, scene)
    copy = bpy.data.objects.new("scene_io_copy", bpy.data.cameras.new("scene_io_copy"))
    scene.collection.objects.link(copy)
    apply_camera_settings(copy, scene, settings)
    bpy.context.view_layer.update()
    assert np.allclose(np.array(copy.matrix_world), np.array(obj.matrix_world), atol=1e-6)


OTHER_LINES = [line for line in LINES if line.python != MAIN_PYTHON]


@pytest.mark.slow
@pytest.mark.parametrize("line", OTHER_LINES, ids=[line.id for line in OTHER_LINES])
def test_the_same_cases_pass_on_the_other_blender_lines(line, tmp_path):
    """This module runs bpy in-process (the main environment's line); each other line runs
    it again under its own interpreter."""
    python = require(line)
    done = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO),
                           "-k", "not other_blender_lines", __file__], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(package_shim(tmp_path / "shim")),
                                   BLENDER_USER_RESOURCES=str(tmp_path / "res")), timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-3000:]
