"""The GPU splat draw (blender/splat_draw.py) through Blender's gpu module, headless.

Rows: the 'viewport' render backend on the object blob of bench/render.py (on llvmpipe
here, a software rasteriser: reported, not a target), with and without photo reprojection, and the CPU cost per update on
Blender's main thread: per view, depth + 16-bit sort + order upload (what a turn or a
new pose costs), and per pose, the upload of the geometry planes packed on the worker
(the packing itself is reported too: it runs on the worker thread). The live draw through the
scene camera with a photo: its main-thread CPU per pose update (planes from the worker), what
the worker does instead of the torch camera preview, and the draw making its own planes.
"""
from __future__ import annotations

import os

import numpy as np

from .common import Row, median_time

SECTION = "viewport"
SORT_COUNTS = (100_000, 300_000, 1_000_000)


def _gpu():
    try:
        from uplift.blender import splat_draw
    except ImportError as exc:
        return None, f"needs the bpy module ({exc})"
    reason = splat_draw.unavailable_reason()
    return (splat_draw, None) if reason is None else (None, reason)


def rows() -> list[Row]:
    from .render import _wide_camera, object_camera, object_scene

    splat_draw, reason = _gpu()
    names = ["viewport 512x512 100k object", "viewport 1920x1080 500k object", "viewport 512x512 100k object, photo"]
    names += [f"sort + order upload, {n // 1000}k" for n in SORT_COUNTS]
    names += list(LIVE_PHOTO_ROWS)
    if splat_draw is None:
        return [Row(SECTION, name, None, "ms", reason) for name in names]
    import gpu

    from uplift.core import splat_pack
    from uplift.core.render import render

    load = f"load {os.getloadavg()[0]:.1f}, {gpu.platform.renderer_get()}"
    out = []
    for (count, cam, repeats), name in zip(((100_000, object_camera(512), 5), (500_000, _wide_camera(), 3)), names):
        g = object_scene(count)
        seconds = median_time(lambda: render(g, cam, backend="viewport"), repeats=repeats)
        out.append(Row(SECTION, name, seconds * 1e3, "ms",
                       f"colour + depth passes, packing and read-back included, median of {repeats}, {load}"))
    out.append(_photo_row(names[2], out[0].value, load, render, object_scene, object_camera))
    for count in SORT_COUNTS:
        g = object_scene(count)
        means = g.means.numpy()
        view = splat_pack.SplatView.from_camera(object_camera(512))

        def sort_and_upload():
            splat_draw.order_texture(splat_pack.back_to_front(splat_pack.camera_depths(means, view.view_model)))

        sort_ms = median_time(lambda: splat_pack.back_to_front(splat_pack.camera_depths(means, view.view_model)),
                              repeats=7) * 1e3
        total = median_time(sort_and_upload, repeats=7) * 1e3
        planes = splat_pack.pack_geometry(g)
        upload = median_time(lambda: splat_draw.SplatTextures(count).upload(planes), repeats=5) * 1e3
        pack = median_time(lambda: splat_pack.pack_geometry(g), repeats=3) * 1e3
        note = (f"sort alone {sort_ms:.1f} ms; per pose also: geometry upload {upload:.1f} ms (main thread), "
                f"packing {pack:.1f} ms (worker); {load}"
                + ("; aim <= 10 ms" if count == 300_000 else ""))
        out.append(Row(SECTION, f"sort + order upload, {count // 1000}k", total, "ms", note))
    out += _live_photo_rows(splat_draw, load, object_scene, object_camera)
    return out


LIVE_PHOTO_ROWS = ("live photo draw through the camera, 100k: main thread per pose update",
                   "live photo planes on the worker, 100k (replace the torch camera preview)")


def _live_photo_rows(splat_draw, load: str, object_scene, object_camera) -> list[Row]:
    """The draw handler's path in the scene camera's view for an object with a photo, at 100k:
    per pose update the main thread uploads the geometry planes, sorts, and uploads the
    worker's photo planes (`splat_pack.photo_planes`) into the view's photo state; the view
    is the camera's at 1.25x zoom (pixel map on). CPU time (process time): on llvmpipe the GPU
    passes are CPU work too and are reported apart."""
    import time

    import torch

    from uplift.core import splat_pack
    from uplift.core.render import render
    from uplift.core.render.reprojection import PhotoSource

    g, cam = object_scene(100_000), object_camera(512)
    image = torch.rand(cam.height, cam.width, 3, generator=torch.Generator().manual_seed(0))
    photo = PhotoSource(image, cam, g, torch.ones(len(g)))
    model = np.eye(4)
    worker_s = median_time(lambda: splat_pack.photo_planes(g, model, cam, photo), repeats=5)
    preview_s = median_time(lambda: render(g, cam, backend="torch", scale=0.5, photo=photo), repeats=3)
    planes, geometry = splat_pack.photo_planes(g, model, cam, photo), splat_pack.pack_geometry(g)
    K = cam.K
    view = splat_pack.SplatView(cam.world_to_camera, (K[0, 0] * 1.25, K[1, 1] * 1.25, K[0, 2] * 1.25, K[1, 2] * 1.25),
                                int(cam.width * 1.25), int(cam.height * 1.25))
    drawn = splat_draw._DrawnObject("bench", g, geometry, 0, photo, planes)
    cache = splat_draw._ViewCache()
    version = [0]

    def pose_update(worker_planes=True):  # show() of a new pose + the draw's CPU side until the passes
        version[0] += 1
        drawn.update(g, geometry, version[0], photo, planes if worker_planes else None)
        splat_draw.order_texture(splat_pack.back_to_front(splat_pack.camera_depths(drawn.means, view.view_model)))
        splat_draw._photo_view(drawn, cache, view, model)

    main_s = median_time(pose_update, repeats=7, clock=time.process_time)
    calls = splat_draw.main_thread_features["count"]
    fallback_s = median_time(lambda: pose_update(False), repeats=5, clock=time.process_time)
    assert splat_draw.main_thread_features["count"] > calls and cache.photo.pixel_map == (1.0, 1.0, 0.0, 0.0)
    drawn.views["bench"] = cache
    first_s = median_time(lambda: (setattr(cache.photo, "summed", False),
                                   splat_draw._offscreen(view.width, view.height,
                                                         lambda _i: drawn.draw("bench", view, True, model), 1)),
                          repeats=3)
    redraw_s = median_time(lambda: splat_draw._offscreen(view.width, view.height,
                                                         lambda _i: drawn.draw("bench", view, True, model), 1),
                           repeats=3)
    del drawn, cache  # GPU objects: gone before the GPU context
    return [
        Row(SECTION, LIVE_PHOTO_ROWS[0], main_s * 1e3, "ms",
            f"CPU; the draw making the planes itself (camera moved, worker behind): {fallback_s * 1e3:.1f} ms; "
            f"GPU on llvmpipe at {view.width}x{view.height}: passes + resolve {first_s * 1e3:.0f} ms once per "
            f"view and pose, resolve alone {redraw_s * 1e3:.0f} ms a redraw (readback included); {load}"),
        Row(SECTION, LIVE_PHOTO_ROWS[1], worker_s * 1e3, "ms",
            f"torch camera preview it replaces (0.5 scale, photo): {preview_s * 1e3:.0f} ms; {load}"),
    ]


def _photo_row(name: str, plain_ms: float, load: str, render, object_scene, object_camera) -> Row:
    """The same 512^2 render reprojecting a photo: per-splat features on the CPU, three more
    passes of the shader, the resolve on the CPU. Every splat counts as seen (visibility is a
    once-per-object cost, not a per-frame one)."""
    import torch

    from uplift.core.render.reprojection import PhotoSource

    g, cam = object_scene(100_000), object_camera(512)
    image = torch.rand(cam.height, cam.width, 3, generator=torch.Generator().manual_seed(0))
    photo = PhotoSource(image, cam, g, torch.ones(len(g)))
    seconds = median_time(lambda: render(g, cam, backend="viewport", photo=photo), repeats=5)
    return Row(SECTION, name, seconds * 1e3, "ms",
               f"{seconds * 1e3 / plain_ms:.2f}x the render without photo; median of 5, {load}")
