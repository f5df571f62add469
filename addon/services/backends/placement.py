"""Place a canonical-frame object (TRELLIS: Z up, unit cube) in a photo's camera so that
its rendered silhouette matches the mask.

Unknowns: yaw about the world's up axis, pitch about the camera's right axis, uniform
scale, and the image position of the object's centre. Its depth is fixed by the same
convention as the inflate lifter (`reference_depth`: the mask's bounding box spans 1
world unit), because from one silhouette only scale/depth is observable, not both.

Search, on a copy of the camera at most `work_side` pixels wide, with a random subset
of the Gaussians (their splats enlarged so the subset still covers the surface):
1. coarse — every yaw step x pitch candidate; for each, scale and position are set in
   closed form from the silhouette's area and centroid, and the IoU is scored. Silhouettes
   here are "splat discs": each Gaussian's projected centre stamped with its alpha > 1/2
   radius (hundreds of evaluations in the time of one render);
2. refinement — pattern search on all five parameters from the best `keep` candidates,
   halving the steps whenever no move improves the IoU (disc silhouettes);
3. polish — the same pattern search with silhouettes from the torch renderer
   (`core.render`, alpha > 1/2), a bounded number of renders, which also scores the result.
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
    yaw_steps: int = 16
    pitch_deg: tuple[float, ...] = (-30.0, -15.0, 0.0, 15.0, 30.0)
    keep: int = 3                  # coarse candidates refined
    refine_evals: int = 150        # disc-silhouette evaluations per refined candidate
    polish_renders: int = 16       # torch renders for the final polish
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

    on_gpu = g.device.type == "cuda"
    alpha = render(g, camera, backend="auto" if on_gpu else "torch", device=g.device).rgba[..., 3]
    alpha = alpha.detach().cpu().numpy() if hasattr(alpha, "detach") else np.asarray(alpha)
    return alpha > 0.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def place(g, mask: np.ndarray, camera, config: PlacementConfig = PlacementConfig(), device=None) -> Placement:
    """g: Gaussians in a canonical frame (Z up); mask: bool [H, W] of camera's size; the polish
    renders run on `device` (default: g's)."""
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

    if device is not None:
        probe = probe.to(device)
    right, _, _ = camera_axes(camera)
    target_area = float(small.sum())
    target_centroid = np.argwhere(small)[:, ::-1].mean(0) + 0.5  # (u, v) in work pixels

    def similarity(params) -> Similarity:
        yaw, pitch, log_s, u, v = params
        R = axis_angle_matrix(right, math.radians(pitch)) @ axis_angle_matrix(WORLD_UP, math.radians(yaw))
        s = math.exp(log_s)
        p = cam.unproject(np.array([[u, v]]), np.array([depth]))[0]
        return Similarity(R, p - s * R @ center, s)

    g_cpu = probe.to("cpu")  # the disc silhouettes are numpy
    probe_means = g_cpu.means.double().numpy()
    probe_sigma = g_cpu.scales.max(dim=1).values.double().numpy()
    probe_reach = torch.sqrt(2 * torch.log((2 * g_cpu.opacities.double()).clamp_min(1.0))).numpy()

    def disc_score(params) -> tuple[float, np.ndarray]:
        sim = similarity(params)
        sil = disc_silhouette(sim.apply_points(probe_means), probe_sigma * sim.scale, probe_reach, cam)
        return iou(sil, small), sil

    def render_score(params) -> tuple[float, np.ndarray]:
        sil = silhouette(apply_similarity(probe, similarity(params)), cam)
        return iou(sil, small), sil

    # 1. Coarse: closed-form scale and position per orientation.
    candidates = []
    for yaw in np.arange(config.yaw_steps) * 360.0 / config.yaw_steps:
        for pitch in config.pitch_deg:
            params = [float(yaw), float(pitch), math.log(1.0 / extent), *target_centroid]
            for _ in range(3):
                value, sil = disc_score(params)
                if not sil.any():
                    break
                params[2] += 0.5 * math.log(target_area / sil.sum())
                params[3:] = list(np.asarray(params[3:]) + target_centroid - (np.argwhere(sil)[:, ::-1].mean(0) + 0.5))
            value, _ = disc_score(params)
            candidates.append((value, params))
    candidates.sort(key=lambda c: -c[0])
    if not candidates or candidates[0][0] <= 0:
        raise BackendFailedError("could not place the lifted object: its silhouette never overlaps the mask")

    # 2. Refinement of the best few, then 3. polish of the winner through the renderer.
    steps = [360.0 / config.yaw_steps / 2, 7.5, 0.1, 2.0, 2.0]
    refined = [_pattern_search(disc_score, p, steps, config.refine_evals) for _, p in candidates[: config.keep]]
    value, params = max(refined, key=lambda c: c[0])
    value, params = _pattern_search(render_score, params, [s / 4 for s in steps], config.polish_renders)
    sim = similarity(params)
    return Placement(apply_similarity(g, sim), sim, value, params[0], params[1])


def _pattern_search(score, params, steps, budget: int) -> tuple[float, list]:
    """Coordinate pattern search maximising score(params)[0]; at most `budget` evaluations."""
    params, steps = list(params), list(steps)
    value, _ = score(params)
    used = 1
    while used < budget and max(steps[3:]) > 0.1:
        improved = False
        for i in range(len(params)):
            for sign in (1.0, -1.0):
                if used >= budget:
                    break
                trial = list(params)
                trial[i] += sign * steps[i]
                trial_value, _ = score(trial)
                used += 1
                if trial_value > value:
                    value, params, improved = trial_value, trial, True
                    break
        if not improved:
            steps = [s / 2 for s in steps]
    return value, params


def disc_silhouette(points: np.ndarray,  # [n, 3] world
                    sigma: np.ndarray,   # [n] largest std of each Gaussian, world units
                    reach: np.ndarray,   # [n] alpha > 1/2 radius in stds: sqrt(2 ln(2 opacity))
                    camera, max_radius_px: int = 6) -> np.ndarray:  # -> bool [h, w]
    """Stamp every projected centre with its alpha > 1/2 disc, the projected std widened by
    the renderer's 0.3 px^2 dilation as in `core.render`, plus half a pixel for rounding."""
    uv, z = camera.project(points)
    ok = z > 1e-6
    uv, z, sigma, reach = uv[ok], z[ok], sigma[ok], reach[ok]
    r_px = np.minimum(np.sqrt((sigma * camera.K[0, 0] / z) ** 2 + 0.3) * reach + 0.5, max_radius_px)
    cx, cy = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
    out = np.zeros((camera.height, camera.width), bool)
    span = int(np.ceil(r_px.max())) if r_px.size else 0
    for dy in range(-span, span + 1):
        for dx in range(-span, span + 1):
            d = math.hypot(dx, dy)
            sel = r_px >= d
            x, y = cx[sel] + dx, cy[sel] + dy
            inside = (x >= 0) & (x < camera.width) & (y >= 0) & (y < camera.height)
            out[y[inside], x[inside]] = True
    return out
