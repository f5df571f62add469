"""Viewport drawing and the camera frame as seen in a 3D view (GPU parts do not run headless)."""
from __future__ import annotations

import bpy
import numpy as np

from ..core.errors import ControlError


def frame_corners_region(context) -> np.ndarray:
    """The scene camera's frame corners in region pixels, in core.viewport_math.CORNER_ORDER."""
    from bpy_extras.view3d_utils import location_3d_to_region_2d

    from . import scene_io

    scene = context.scene
    cam = scene_io.scene_camera(scene)
    region, rv3d = context.region, context.region_data
    if region is None or rv3d is None:
        raise ControlError("use Select Object in a 3D view looking through the camera")
    # view_frame: top-right, bottom-right, bottom-left, top-left (camera local space)
    tr, br, bl, tl = (cam.matrix_world @ v for v in cam.data.view_frame(scene=scene))
    points = [location_3d_to_region_2d(region, rv3d, p) for p in (tl, tr, br, bl)]
    if any(p is None for p in points):
        raise ControlError("the camera frame is not in view: look through the camera (Numpad 0)")
    return np.array([[p.x, p.y] for p in points], dtype=np.float64)


def frame_mapping(context):
    """Region → photo pixel mapping for the current 3D view."""
    from ..core.viewport_math import FrameMapping
    from . import scene_io

    width, height = scene_io.photo_size(context.scene)
    return FrameMapping.from_corners(frame_corners_region(context), width, height)


def add_box_overlay(operator):
    """Draw the rubber-band box of a Select Object drag (operator._press → operator.drag_to)."""
    import gpu
    from gpu_extras.batch import batch_for_shader

    shader = gpu.shader.from_builtin("UNIFORM_COLOR")

    def draw():
        press = getattr(operator, "_press", None)
        if press is None:
            return
        (x0, y0), (x1, y1) = press, operator.drag_to
        coords = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        batch = batch_for_shader(shader, "LINE_LOOP", {"pos": coords})
        shader.bind()
        shader.uniform_float("color", (1.0, 0.3, 0.2, 1.0))
        batch.draw(shader)

    return bpy.types.SpaceView3D.draw_handler_add(draw, (), "WINDOW", "POST_PIXEL")


def remove_overlay(handle) -> None:
    if handle is not None:
        bpy.types.SpaceView3D.draw_handler_remove(handle, "WINDOW")
