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


def _gaussians(count: int, seed: int, centre=(0.0, 3.0, 0.0)):
    from uplift.core.gaussians import Gaussians

    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(count, generator=gen) * 2 * math.pi
    means = torch.stack((0.5 * torch.cos(u), 0.2 * torch.rand(count, generator=gen),
                         0.3 * torch.sin(u) + 0.1 * torch.randn(count, generator=gen)), 1) + torch.tensor(centre)
    return Gaussians.from_colors(means, torch.rand(count, 3, generator=gen), torch.full((count, 3), 0.01),
                                 torch.full((count,), 0.8))


def _scene(objects: int = 1, gaussians: int = GAUSSIANS, controls: int = CONTROLS):
    import bpy

    import uplift
    from uplift.blender import handlers, lifted, scene_io, state
    from uplift.core.blender_camera import blender_from_camera
    from uplift.core.camera import Camera
    if not hasattr(bpy.types.Scene, "uplift"):
        uplift.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    scene_io.apply_camera_settings(cam, scene, blender_from_camera(Camera.from_fov(800, 534)))
    scene.uplift.camera = scene.camera = cam
    settings = state.DeformSettings(controls, 8, 4, 3, "cpu", "torch")
    roots = []
    for i in range(objects):
        root = lifted.create_object(scene, _gaussians(gaussians, i, (1.2 * (i - objects / 2), 3.0 + i, 0.0)),
                                    None, settings)
        lifted.create_controls(root, settings)
        roots.append(root)
    handlers.collect(scene, scale=0.5)
    handlers.flush()
    return scene, roots[0], handlers, scene_io, state


MANY_OBJECTS = 10


def per_update_row() -> Row:
    """Main-thread time the depsgraph handler adds to one update (a control of one of 10
    lifted objects moved): view_layer.update() with live update on, minus with it off."""
    import bpy

    scene, root, handlers, scene_io, state = _scene(MANY_OBJECTS, gaussians=2_000, controls=128)
    handle = scene_io.controls_of(root)[0]
    offsets = iter(np.linspace(0.0, 0.3, 10_000))

    def update():
        handle.location.z = float(next(offsets))
        bpy.context.view_layer.update()
        handlers._pending.clear()

    scene.uplift.live_update = True
    with_handler = median_time(update, repeats=21, warmup=3)
    scene.uplift.live_update = False
    without = median_time(update, repeats=21, warmup=3)
    return Row(SECTION, f"main thread per depsgraph update, {MANY_OBJECTS} objects", (with_handler - without) * 1e3,
               "ms", f"{MANY_OBJECTS} x (2000 Gaussians, 128 empties); handler's share of view_layer.update()")


def rows() -> list[Row]:
    try:
        import bpy  # noqa: F401
    except ImportError:
        return [Row(SECTION, "live update (bpy missing)", None, "s", "needs the bpy module")]
    many = per_update_row()
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
    drawing = splat_draw.shows(uid)
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
        many,
    ]
