"""Animation frames: seconds per frame at 1080p for a 100k-Gaussian object on the CPU, and
how much the seam ring changes from frame to frame.

One frame of Render Animation minus Blender's compositor: batch ARAP (warm-started from
the previous frame) + LBS + render + compose (`pipeline.animate.FrameRenderer.frame`). The
plate, the hole and the deformer (controls, graph, binding, factorisation) are built once,
outside the timing; each timed frame moves a keyed control further so it really solves.
The blob of bench.render, 512 controls, the far half pinned, one end lifted.

Flicker: mean absolute change (0..255) between consecutive frames inside the seam ring,
for a held pose and for a slow lift, with the animation's plate seam against the server's
default (structure_texture) seam inpainting, on a smaller frame.
"""
from __future__ import annotations

import itertools

import numpy as np

from .common import Row, median_time

SECTION = "animate"


def _job(width: int, height: int, gaussians: int, seam=None):
    """-> pose(lift) rendering one frame with the keyed end lifted by `lift` (world units)."""
    from uplift.core.camera import Camera
    from uplift.core.deformer import DeformConfig
    from uplift.pipeline.animate import AnimatedObject, FrameRenderer, ObjectPose

    from .render import object_camera, object_scene

    square = object_camera(height)
    K = square.K.copy()
    K[0, 2] = width / 2
    camera = Camera(width, height, K, square.world_to_camera)
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    plate = photo.copy()
    mask = np.zeros((height, width), dtype=bool)
    mask[height // 4: 3 * height // 4, width // 3: 2 * width // 3] = True
    plate[mask] //= 2
    job = FrameRenderer(photo, plate, [mask],
                        [AnimatedObject("blob", object_scene(gaussians), DeformConfig(num_controls=512, device="cpu"))],
                        backend="torch")
    if seam is not None:
        job.seam = seam
    rest = job.deformer("blob").controls.double().numpy()
    order = np.argsort(rest[:, 0])
    handles = np.sort(np.concatenate([order[:256], order[-1:]]))
    lifted = list(handles).index(order[-1])

    def pose(lift: float):
        targets = rest[handles].copy()
        targets[lifted, 2] += lift
        return job.frame([ObjectPose("blob", handles, targets, np.eye(4))], camera)

    return pose


def _seam_change(seam, lifts) -> float:
    from uplift.pipeline.animate import flicker

    pose = _job(480, 270, 20_000, seam)
    frames = [pose(z) for z in lifts]
    return flicker([c.final for c in frames], np.logical_or.reduce([c.seam_mask for c in frames]))


def rows() -> list[Row]:
    from uplift.services.local import LocalServices

    pose = _job(1920, 1080, 100_000)
    lifts = itertools.count()
    seconds = median_time(lambda: pose(0.01 * (next(lifts) % 50)), repeats=5, warmup=1)
    out = [Row(SECTION, "frame 1920x1080 100k Gaussians, CPU", seconds, "s",
               "ARAP batch + LBS + render + compose; plate and binding cached")]
    slow = [0.05 + 0.004 * i for i in range(5)]
    for name, seam in (("plate seam", None), (f"{LocalServices().config.inpaint} seam", LocalServices())):
        out.append(Row(SECTION, f"seam ring change, held pose, {name}", _seam_change(seam, [0.05] * 3), "levels",
                       "480x270, 20k Gaussians"))
        out.append(Row(SECTION, f"seam ring change, slow lift, {name}", _seam_change(seam, slow), "levels",
                       "mean abs frame-to-frame change, 0..255"))
    return out
