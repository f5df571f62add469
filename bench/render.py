"""Renderer speed: the torch backend (and gsplat on CUDA) on object-like scenes.

The scene: N Gaussians on and just under the surface of a bumpy blob whose
silhouette covers about half the frame (diameter 0.8 of the width), sized so the
surface is closed (sigma about 0.7 of the mean spacing), flattened along the
surface normal as trained splats are, opacities spread over (0.3, 1).
"""
from __future__ import annotations

import math
import statistics
import time

import numpy as np
import torch

from .common import Row, median_time, peak_rss_mb

SIZES = (256, 512, 1024)
COUNTS = (100_000, 500_000)
BLOB_RADIUS = 1.0
CAMERA_DISTANCE = 4.0


def object_scene(n: int, seed: int = 0):
    """-> Gaussians of an object-like blob centred at the world origin."""
    from uplift.core import quaternion
    from uplift.core.gaussians import Gaussians

    gen = torch.Generator().manual_seed(seed)
    dirs = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=1)
    bump = 1.0 + 0.15 * torch.sin(3 * dirs[:, 0]) * torch.cos(2 * dirs[:, 2]) + 0.1 * torch.sin(5 * dirs[:, 1])
    depth_in = torch.rand(n, generator=gen) ** 2 * 0.05  # most points near the surface
    means = dirs * (BLOB_RADIUS * bump * (1 - depth_in))[:, None]
    area = 4 * math.pi * BLOB_RADIUS ** 2 * 1.1
    spacing = math.sqrt(area / n)
    tangent = 0.7 * spacing * torch.exp(0.25 * torch.randn(n, 2, generator=gen))
    scales = torch.cat((tangent, 0.15 * spacing * torch.ones(n, 1)), dim=1)  # thin along local z
    # Rotate local z onto the surface normal (approximated by the radial direction).
    z = torch.tensor([0.0, 0.0, 1.0]).expand(n, 3)
    axis = torch.cross(z, dirs, dim=1)
    angle = torch.acos(dirs[:, 2].clamp(-1, 1))
    quats = quaternion.from_axis_angle(axis + 1e-9, angle)
    colors = 0.5 + 0.4 * torch.stack((dirs[:, 0], dirs[:, 1], -dirs[:, 2]), 1)
    opacities = 0.3 + 0.7 * torch.rand(n, generator=gen)
    return Gaussians.from_colors(means, colors, scales, opacities, quats)


def object_camera(size: int):
    """Square camera on the -Y axis looking at the blob, which spans 0.8 of the width."""
    from uplift.core.camera import PHOTO_WORLD_TO_CAMERA, Camera

    half_angle = math.asin(BLOB_RADIUS / CAMERA_DISTANCE)
    f = 0.4 * size / math.tan(half_angle)
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    w2c = PHOTO_WORLD_TO_CAMERA.copy()
    w2c[:3, 3] = w2c[:3, :3] @ np.array([0.0, CAMERA_DISTANCE, 0.0])  # camera at (0, -d, 0)
    return Camera(size, size, K, w2c)
