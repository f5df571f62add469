"""The GPU splat draw (blender/splat_draw.py) through Blender's gpu module, headless.

Rows: the 'viewport' render backend on the object blob of bench/render.py (on llvmpipe
here, a software rasteriser: reported, not a target), with and without photo reprojection, and the CPU cost per update on
Blender's main thread: per view, depth + 16-bit sort + order upload (what a turn or a
new pose costs), and per pose, the upload of the geometry planes packed on the worker
(the packing itself is reported too: it runs on the worker thread).
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
    return out


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
