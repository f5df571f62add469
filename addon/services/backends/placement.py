"""Place a canonical-frame object (TRELLIS: Z up, unit cube) in a photo's camera so that
its rendered silhouette matches the mask.

Unknowns: yaw about the world's up axis, pitch about the camera's right axis, uniform
scale, and the image position of the object's centre. Its depth is fixed by the same
convention as the inflate lifter (`reference_depth`: the mask's bounding box spans 1
world unit), because from one silhouette only scale/depth is observable, not both.

Search, on a copy of the camera at most `work_side` pixels wide, through the torch
renderer with a random subset of the Gaussians (their splats enlarged so the subset
still covers the surface):
1. coarse — every yaw step x pitch candidate; for each, scale and position are set in
   closed form from the silhouette's area and centroid, and the IoU is scored;
2. refinement — pattern search on all five parameters from the best candidate,
   halving the steps whenever no move improves the IoU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...core.errors import BackendFailedError

WORLD_UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class PlacementConfig:
    work_side: int = 128
    search_gaussians: int = 6000
    yaw_steps: int = 8
    pitch_deg: tuple[float, ...] = (-20.0, 0.0, 20.0)
    max_renders: int = 80          # refinement budget
    seed: int = 0


@dataclass(frozen=True)
class Placement:
    gaussians: object       # Gaussians in the camera's world
    similarity: object      # core.transforms.Similarity applied to the canonical object
    iou: float              # silhouette IoU at the work resolution
    yaw_deg: float
    pitch_deg: float


def silhouette(g, camera) -> np.ndarray:  # -> bool [h, w]: rendered alpha > 0.5
    from ...core.render import render

    alpha = render(g, camera, backend="torch").rgba[..., 3]
    alpha = alpha.detach().cpu().numpy() if hasattr(alpha, "detach") else np.asarray(alpha)
    return alpha > 0.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def place(g, mask: np.ndarray, camera, config: PlacementConfig = PlacementConfig()) -> Placement:
    """g: Gaussians in a canonical frame (Z up); mask: bool [H, W] of camera's size."""
    import cv2
    import torch

    from ...core.transforms import Similarity, apply_similarity, axis_angle_matrix, camera_axes
    from .inflate import reference_depth

    if mask.shape != (camera.height, camera.width):
        raise BackendFailedError("placement needs a mask of the camera's size")
    factor = min(1.0, config.work_side / max(camera.width, camera.height))
    cam = camera.scaled(factor)
    small = cv2.resize(mask.astype(np.float32), (cam.width, cam.height), interpolation=cv2.INTER_AREA) >= 0.5
    if not small.any():
        small = cv2.resize(mask.astype(np.float32), (cam.width, cam.height), interpolation=cv2.INTER_AREA) > 0
    depth = reference_depth(mask, camera)

    opaque = (g.opacities >= 0.05).cpu().numpy()
    means = g.means.detach().double().cpu().numpy()[opaque if opaque.any() else slice(None)]
    lo, hi = means.min(0), means.max(0)
    center, extent = (lo + hi) / 2, float(max(hi - lo))
    if not extent > 0:
        raise BackendFailedError("the lifted object has no extent to place")

    rng = np.random.default_rng(config.seed)
    n = len(g)
    probe = g
    if n > config.search_gaussians:
        idx = torch.from_numpy(np.sort(rng.choice(n, config.search_gaussians, replace=False)))
        probe = g.subset(idx)
        probe = probe.replace(log_scales=probe.log_scales + 0.5 * math.log(n / config.search_gaussians))

    right, _, _ = camera_axes(camera)
    target_area = float(small.sum())
    target_centroid = np.argwhere(small)[:, ::-1].mean(0) + 0.5  # (u, v) in work pixels

    def similarity(params) -> Similarity:
        yaw, pitch, log_s, u, v = params
        R = axis_angle_matrix(right, math.radians(pitch)) @ axis_angle_matrix(WORLD_UP, math.radians(yaw))
        s = math.exp(log_s)
        p = cam.unproject(np.array([[u, v]]), np.array([depth]))[0]
        return Similarity(R, p - s * R @ center, s)

    renders = 0

    def score(params) -> tuple[float, np.ndarray]:
        nonlocal renders
        renders += 1
        sil = silhouette(apply_similarity(probe, similarity(params)), cam)
        return iou(sil, small), sil

    # 1. Coarse: closed-form scale and position per orientation.
    best = (-1.0, None)
    for yaw in np.arange(config.yaw_steps) * 360.0 / config.yaw_steps:
        for pitch in config.pitch_deg:
            params = [float(yaw), float(pitch), math.log(1.0 / extent), *target_centroid]
            for _ in range(2):
                value, sil = score(params)
                if not sil.any():
                    break
                params[2] += 0.5 * math.log(target_area / sil.sum())
                params[3:] = list(np.asarray(params[3:]) + target_centroid - (np.argwhere(sil)[:, ::-1].mean(0) + 0.5))
            value, _ = score(params)
            if value > best[0]:
                best = (value, list(params))
    if best[1] is None or best[0] <= 0:
        raise BackendFailedError("could not place the lifted object: its silhouette never overlaps the mask")

    # 2. Refinement: pattern search.
    value, params = best
    steps = [360.0 / config.yaw_steps / 2, 10.0, 0.1, 2.0, 2.0]
    while renders < config.max_renders and max(steps[3:]) > 0.25:
        improved = False
        for i in range(5):
            for sign in (1.0, -1.0):
                trial = list(params)
                trial[i] += sign * steps[i]
                trial_value, _ = score(trial)
                if trial_value > value:
                    value, params, improved = trial_value, trial, True
                    break
        if not improved:
            steps = [s / 2 for s in steps]
    sim = similarity(params)
    return Placement(apply_similarity(g, sim), sim, value, params[0], params[1])
