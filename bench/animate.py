"""Seconds per animation frame at 1080p for a 100k-Gaussian object on the CPU.

One frame of Render Animation minus Blender's compositor: batch ARAP (warm-started from
the previous frame) + LBS + render + compose (`pipeline.animate.FrameRenderer.frame`). The
plate, the hole and the deformer (controls, graph, binding, factorisation) are built once,
outside the timing; each timed frame moves a keyed control further so it really solves.
The blob of bench.render, 512 controls, the far half pinned, one end lifted.
"""
from __future__ import annotations

import itertools

import numpy as np

from .common import Row, median_time

SECTION = "animate"
WIDTH, HEIGHT = 1920, 1080
GAUSSIANS = 100_000


def _job():
    from uplift.core.camera import Camera
    from uplift.core.deformer import DeformConfig
    from uplift.pipeline.animate import AnimatedObject, FrameRenderer, ObjectPose

    from .render import object_camera, object_scene

    square = object_camera(HEIGHT)
    K = square.K.copy()
    K[0, 2] = WIDTH / 2
    camera = Camera(WIDTH, HEIGHT, K, square.world_to_camera)
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    plate = photo.copy()
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[HEIGHT // 4: 3 * HEIGHT // 4, WIDTH // 3: 2 * WIDTH // 3] = True
    plate[mask] //= 2
    g = object_scene(GAUSSIANS)
    job = FrameRenderer(photo, plate, [mask], [AnimatedObject("blob", g, DeformConfig(num_controls=512, device="cpu"))],
                        backend="torch")
    rest = job.deformer("blob").controls.double().numpy()
    order = np.argsort(rest[:, 0])
    handles = np.sort(np.concatenate([order[:256], order[-1:]]))
    lifted = list(handles).index(order[-1])
    frames = itertools.count()

    def frame():
        targets = rest[handles].copy()
        targets[lifted, 2] += 0.01 * (next(frames) % 50)
        job.frame([ObjectPose("blob", handles, targets, np.eye(4))], camera)

    return frame


def rows() -> list[Row]:
    frame = _job()
    seconds = median_time(frame, repeats=5, warmup=1)
    return [Row(SECTION, f"frame {WIDTH}x{HEIGHT} {GAUSSIANS // 1000}k Gaussians, CPU", seconds, "s",
                "ARAP batch + LBS + render + compose; plate and binding cached")]
