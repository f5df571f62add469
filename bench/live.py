"""The extension's live edit loop in headless Blender: what runs on Blender's main thread
(snapshot of the empties, write-back of the result) against what runs on the worker
(ARAP + LBS + preview render), for one lifted object with 512 control empties.

The main-thread share is what decides whether dragging an empty stays fluid: the worker's
share only delays the picture. Wall-clock medians; the machine is shared, so read ratios.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .common import Row, median_time

SECTION = "live"
GAUSSIANS = 20_000
CONTROLS = 512


def _scene():
    import bpy

    import uplift
    from uplift.blender import handlers, lifted, scene_io, state
    from uplift.core.blender_camera import blender_from_camera
    from uplift.core.camera import Camera
    from uplift.core.gaussians import Gaussians

    if not hasattr(bpy.types.Scene, "uplift"):
        uplift.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    scene_io.apply_camera_settings(cam, scene, blender_from_camera(Camera.from_fov(800, 534)))
    scene.uplift.camera = scene.camera = cam
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(GAUSSIANS, generator=gen) * 2 * math.pi
    means = torch.stack((0.5 * torch.cos(u), 3.0 + 0.2 * torch.rand(GAUSSIANS, generator=gen),
                         0.3 * torch.sin(u) + 0.1 * torch.randn(GAUSSIANS, generator=gen)), 1)
    g = Gaussians.from_colors(means, torch.rand(GAUSSIANS, 3, generator=gen), torch.full((GAUSSIANS, 3), 0.01),
                              torch.full((GAUSSIANS,), 0.8))
    settings = state.DeformSettings(CONTROLS, 8, 4, 3, "cpu", "torch")
    root = lifted.create_object(scene, g, None, settings)
    lifted.create_controls(root, settings)
    handlers.collect(scene, scale=0.5)
    handlers.flush()
    return scene, root, handlers, scene_io, state


def rows() -> list[Row]:
    try:
        import bpy  # noqa: F401
    except ImportError:
        return [Row(SECTION, "live update (bpy missing)", None, "s", "needs the bpy module")]
    scene, root, handlers, scene_io, state = _scene()
    controls = scene_io.controls_of(root)
    handle = controls[0]
    session = state.get(root.uplift.uid)
    offsets = iter(np.linspace(0.0, 0.3, 10_000))

    def move():
        handle.location.z = float(next(offsets))

    def snapshot():  # main thread: read 512 empties, decide, queue
        move()
        handlers.collect(scene, scale=0.5)

    def compute():  # worker thread: ARAP (3 iterations) + LBS + half-resolution render
        move()
        handlers.collect(scene, scale=0.5)
        return session.compute(handlers._pending.pop(root.uplift.uid))

    from uplift.blender import splat_draw
    from uplift.core import splat_pack

    uid = root.uplift.uid

    def write_back():  # main thread: the free empties, the proxy's points, the render image, the splat upload
        if uid in splat_draw._objects:
            splat_draw._objects[uid].version = -1  # each repeat uploads the pose again, as a new pose would
        handlers._results.append((result.request, result, None))
        handlers.apply_results()

    view = splat_pack.SplatView.from_camera(scene_io.camera_of(scene))

    def resort():  # main thread, per 3D view at its next draw after a new pose: depth sort + order upload
        drawn = splat_draw._objects[uid]
        splat_draw.order_texture(splat_pack.back_to_front(splat_pack.camera_depths(drawn.means, view.view_model)))

    t_snapshot = median_time(snapshot, repeats=9)
    handlers._pending.clear()
    t_compute = max(median_time(compute, repeats=5) - t_snapshot, 0.0)  # compute() also snapshots
    result = compute()
    t_apply = median_time(write_back, repeats=9)
    drawing = splat_draw.active() and uid in splat_draw._objects
    t_draw = median_time(resort, repeats=9) if drawing else 0.0
    note = (f"{GAUSSIANS} Gaussians, {CONTROLS} empties, 400x267 preview, torch CPU, GPU splat draw "
            + ("on" if drawing else f"off ({splat_draw.off_reason['text']})"))
    return [
        Row(SECTION, "main thread: snapshot + queue", t_snapshot * 1e3, "ms", note),
        Row(SECTION, "worker: ARAP + LBS + preview render", t_compute * 1e3, "ms", note),
        Row(SECTION, "main thread: write back", t_apply * 1e3, "ms", note),
        Row(SECTION, "main thread: splat re-sort, one 3D view", t_draw * 1e3 if drawing else None, "ms", note),
        Row(SECTION, "main-thread share of an update", (t_snapshot + t_apply + t_draw)
            / (t_snapshot + t_apply + t_draw + t_compute), "ratio", "lower keeps dragging fluid; aim <= 0.25"),
    ]
