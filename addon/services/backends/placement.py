"""Place a canonical-frame object (Gaussians) in a photo's camera so that its silhouette
matches the mask: a full rotation, a uniform scale and the image position of its centre.

Shared by every lifter whose object comes in its own frame (TRELLIS: Z up, inside
[-0.5, 0.5]^3, pose unrelated to the input view; the mesh lifter). The object's depth
follows the inflate lifter's convention (`reference_depth`: the mask's bounding box spans
1 world unit), because one silhouette fixes only the ratio of scale to distance.

Cost ("chamfer", smooth in every parameter), on a copy of the camera at most `work_side`
pixels wide, with a random subset of the Gaussians' means as surface points, each widened
by its own splat's alpha > 1/2 radius:
- spill: the mean over points of the distance transform of the mask's outside, read
  bilinearly at each projected point (0 inside the mask);
- coverage: the mean over samples of the mask's outline of the distance to the nearest
  projected point (k-d tree).
Both are in work pixels; `Placement.score` is their sum divided by the mask box's larger
side, so it does not depend on the resolution: 0 is a perfect fit, LOWER IS BETTER.

Search:
1. coarse — `start_rotations` rotations spread evenly over SO(3) (super-Fibonacci spiral,
   Alexa 2022), plus any caller's `starts`; for each, scale and position in closed form
   from the mask's bounding box, then the cost;
2. refinement — Nelder-Mead on rotation (axis-angle about the camera's axes), log scale
   and image position from the `refine_starts` best mutually distinct (> `distinct_deg`)
   coarse rotations;
3. hypotheses — the refined poses, near duplicates suppressed, best first; the torch
   renderer scores each with the silhouette IoU (alpha > 1/2) and, with `polish_renders`,
   polishes the best with a pattern search on that IoU.
A left-right symmetric object has two poses with almost the same silhouette (only
perspective tells them apart: `mirror_rotation`), so the caller gets `k` hypotheses.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...core.errors import BackendFailedError, CancelledError, ConfigError, MaskError

WORLD_UP = np.array([0.0, 0.0, 1.0])
MIN_SEARCH_POINTS = 16   # fewer opaque Gaussians than this cannot be placed meaningfully
MAX_SPLAT_RADIUS_PX = 6.0
EDGE_BAND_PX = 0.5  # points this far inside the mask's edge (beyond their splat radius) count as on it


@dataclass(frozen=True)
class PlacementConfig:
    work_side: int = 128             # longer side of the working image, pixels
    search_points: int = 1500        # surface points (Gaussian means) in the chamfer cost
    outline_points: int = 256        # samples of the mask's outline in the coverage term
    start_rotations: int = 2048      # evenly spread starting rotations (coarse stage)
    coarse_points: int = 300         # surface points in the coarse stage and the short refinement
    coarse_outline_points: int = 96  # outline samples there
    short_starts: int = 32           # distinct coarse rotations given a short refinement
    short_evals: int = 60            # cost evaluations per short refinement
    refine_starts: int = 8           # distinct short refinements refined in full
    refine_evals: int = 200          # cost evaluations per full refinement
    distinct_deg: float = 15.0       # hypotheses closer than this (rotation angle) are duplicates
    polish_gaussians: int = 20000    # Gaussians rendered for IoU scores and the polish
    polish_renders: int = 12         # renders in the IoU pattern search of the best hypothesis (0: none)
    seed: int = 0

    def __post_init__(self) -> None:
        positive = ("work_side", "search_points", "outline_points", "start_rotations", "coarse_points",
                    "coarse_outline_points", "short_starts", "short_evals", "refine_starts", "refine_evals",
                    "polish_gaussians")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"placement {name} must be a whole number >= 1, got {value!r}")
        if self.work_side < 16:
            raise ConfigError(f"placement work_side must be at least 16 pixels, got {self.work_side}")
        if not isinstance(self.polish_renders, int) or self.polish_renders < 0:
            raise ConfigError(f"placement polish_renders must be a whole number >= 0, got {self.polish_renders!r}")
        if not 0 <= self.distinct_deg < 180:
            raise ConfigError(f"placement distinct_deg must be in [0, 180), got {self.distinct_deg}")


@dataclass(frozen=True)
class Placement:
    gaussians: object       # Gaussians in the camera's world
    similarity: object      # core.transforms.Similarity applied to the canonical object
    iou: float              # silhouette IoU at the work resolution (torch renderer, alpha > 1/2)
    yaw_deg: float          # similarity.rotation == camera_rotation(camera, yaw, pitch, roll)
    pitch_deg: float
    roll_deg: float = 0.0
    score: float = math.nan  # chamfer cost / mask box side (see module doc): 0 perfect, lower is better
    rank: int = 0            # 0 for the best hypothesis

    @property
    def rotation(self) -> np.ndarray:  # [3, 3] world rotation of the canonical object
        return self.similarity.rotation


# -- rotations --------------------------------------------------------------------

def super_fibonacci_rotations(n: int) -> np.ndarray:  # -> [n, 3, 3]
    """n rotations spread evenly over SO(3) (Alexa, "Super-Fibonacci Spirals", CVPR 2022)."""
    from scipy.spatial.transform import Rotation

    phi, psi = math.sqrt(2.0), 1.533751168755204288118041
    s = np.arange(n) + 0.5
    r, big_r = np.sqrt(s / n), np.sqrt(1.0 - s / n)
    alpha, beta = 2 * math.pi * s / phi, 2 * math.pi * s / psi
    xyzw = np.stack([r * np.sin(alpha), r * np.cos(alpha), big_r * np.sin(beta), big_r * np.cos(beta)], -1)
    return Rotation.from_quat(xyzw).as_matrix()


def rotation_error_deg(R_a: np.ndarray, R_b: np.ndarray) -> np.ndarray | float:
    """Angle of the rotation taking R_b to R_a, degrees; [..., 3, 3] inputs broadcast."""
    R_a, R_b = np.asarray(R_a, dtype=np.float64), np.asarray(R_b, dtype=np.float64)
    trace = np.einsum("...ij,...ij->...", R_a, R_b)  # trace(R_a R_b^T)
    angle = np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0)))
    return float(angle) if np.ndim(angle) == 0 else angle


def mirror_rotation(similarity, camera, reflection: np.ndarray, center: np.ndarray) -> np.ndarray:
    """The other pose of an object symmetric under `reflection` [3, 3] (canonical frame,
    det -1) whose silhouette matches `similarity`'s but for perspective: the depth flip
    along the ray to the placed `center` [3] (canonical) composed with the reflection."""
    ray = similarity.apply_points(np.asarray(center, dtype=np.float64)[None])[0] - camera.center
    f = ray / np.linalg.norm(ray)
    flip = np.eye(3) - 2.0 * np.outer(f, f)
    return flip @ similarity.rotation @ np.asarray(reflection, dtype=np.float64)


def camera_angles(camera, rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees with `core.transforms.camera_rotation(camera, ...) == rotation`."""
    from scipy.spatial.transform import Rotation

    R_wc = camera.world_to_camera[:3, :3]
    # In camera axes (x right, y down, z forward) yaw is about -y, pitch about x, roll about z:
    # R_cam = Rz(roll) Rx(pitch) R(-y)(yaw), i.e. extrinsic y, x, z angles (-yaw, pitch, roll).
    ext = Rotation.from_matrix(R_wc @ rotation @ R_wc.T).as_euler("yxz")
    return float(-math.degrees(ext[0])), float(math.degrees(ext[1])), float(math.degrees(ext[2]))


# -- silhouettes (render) -----------------------------------------------------------

def silhouette(g, camera) -> np.ndarray:  # -> bool [h, w]: rendered alpha > 0.5
    from ...core.render import render

    on_gpu = g.device.type == "cuda"
    alpha = render(g, camera, backend="auto" if on_gpu else "torch", device=g.device).rgba[..., 3]
    alpha = alpha.detach().cpu().numpy() if hasattr(alpha, "detach") else np.asarray(alpha)
    return alpha > 0.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


# -- the chamfer problem ------------------------------------------------------------

class _Chamfer:
    """The cost of a pose x = (omega [3] rad about camera axes applied after R0, log scale,
    u, v work pixels of the centre) for one object, mask and camera."""

    def __init__(self, g, mask: np.ndarray, camera, config: PlacementConfig, rng) -> None:
        import cv2

        from .inflate import reference_depth

        factor = min(1.0, config.work_side / max(camera.width, camera.height))
        self.camera = camera
        self.cam = cam = camera.scaled(factor)
        small = cv2.resize(mask.astype(np.float32), (cam.width, cam.height), interpolation=cv2.INTER_AREA)
        self.mask = small >= 0.5 if (small >= 0.5).any() else small > 0
        self.depth = reference_depth(mask, camera)
        ys, xs = np.nonzero(self.mask)
        self.box = np.array([xs.min(), xs.max() + 1.0, ys.min(), ys.max() + 1.0])  # x0 x1 y0 y1, pixel edges
        self.box_side = float(max(self.box[1] - self.box[0], self.box[3] - self.box[2]))
        # Signed distance (pixels) from each pixel centre to the mask's edge, half a pixel beyond
        # its outermost pixel centres: negative inside. Padded by `pad` pixels on every side so
        # that points leaving the image still see a distance that grows.
        self.pad = pad = max(cam.width, cam.height) // 2
        padded = np.pad(self.mask, pad)
        outside = cv2.distanceTransform((~padded).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        inside = cv2.distanceTransform(padded.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        self.edge_sdf = np.where(padded, 0.5 - inside, outside - 0.5).astype(np.float64)
        border = self.mask & ~cv2.erode(self.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        outline = np.argwhere(border)[:, ::-1] + 0.5
        if len(outline) > config.outline_points:
            outline = outline[rng.choice(len(outline), config.outline_points, replace=False)]
        self.outline = outline

        opaque = (g.opacities >= 0.05).cpu().numpy()
        if opaque.sum() < MIN_SEARCH_POINTS:
            raise BackendFailedError(f"the object has {int(opaque.sum())} opaque Gaussians; placing it needs "
                                     f"at least {MIN_SEARCH_POINTS}")
        index = np.flatnonzero(opaque)
        means = g.means.detach().double().cpu().numpy()[index]
        if not np.isfinite(means).all():
            raise BackendFailedError("the object's Gaussians have NaN or infinite positions")
        lo, hi = means.min(0), means.max(0)
        self.center, self.extent = (lo + hi) / 2, float(max(hi - lo))
        if not self.extent > 0:
            raise BackendFailedError("the object has no extent to place")
        if len(index) > config.search_points:
            pick = rng.choice(len(index), config.search_points, replace=False)
            index, means = index[pick], means[pick]
        self.points = means - self.center  # [n, 3] canonical, about the centre
        sigma = g.scales.max(dim=1).values.double().cpu().numpy()[index]
        opacity = g.opacities.double().cpu().numpy()[index]
        self.sigma = sigma
        self.reach = np.sqrt(2 * np.log(np.maximum(2 * opacity, 1.0)))  # alpha > 1/2 radius, in stds
        self.R_wc = cam.world_to_camera[:3, :3]
        self.evals = 0

    def lighter(self, points: int, outline: int, rng) -> "_Chamfer":
        """The same problem with at most `points` surface points and `outline` outline samples."""
        light = copy.copy(self)
        if len(self.points) > points:
            pick = rng.choice(len(self.points), points, replace=False)
            light.points, light.sigma, light.reach = self.points[pick], self.sigma[pick], self.reach[pick]
        if len(self.outline) > outline:
            light.outline = self.outline[rng.choice(len(self.outline), outline, replace=False)]
        return light

    # pose <-> similarity -------------------------------------------------------------
    @staticmethod
    def camera_rotation(R0_cam: np.ndarray, x) -> np.ndarray:  # exp(omega = x[:3]) @ R0_cam (Rodrigues)
        omega = np.asarray(x[:3], dtype=np.float64)
        angle = math.sqrt(float(omega @ omega))
        if angle < 1e-12:
            return R0_cam
        k = omega / angle
        K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
        return (np.eye(3) + math.sin(angle) * K + (1.0 - math.cos(angle)) * (K @ K)) @ R0_cam

    def centre_cam(self, u: float, v: float) -> np.ndarray:  # [3] camera coordinates of the centre
        K = self.cam.K
        return self.depth * np.array([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], 1.0])

    def similarity(self, R0_cam, x):
        from ...core.transforms import Similarity

        R = self.R_wc.T @ self.camera_rotation(R0_cam, x) @ self.R_wc
        s = math.exp(x[3])
        c2w = self.cam.camera_to_world
        p = c2w[:3, :3] @ self.centre_cam(x[4], x[5]) + c2w[:3, 3]
        return Similarity(R, p - s * R @ self.center, s)

    def to_camera_rotation(self, R_world: np.ndarray) -> np.ndarray:
        return self.R_wc @ R_world @ self.R_wc.T

    # projection and cost ---------------------------------------------------------------
    def project(self, R_cam, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # -> u [n], v [n], radius px [n]
        s = math.exp(x[3])
        pts = self.points @ (s * (R_cam @ self.R_wc)).T + self.centre_cam(x[4], x[5])
        inv_z = 1.0 / np.maximum(pts[:, 2], 1e-3 * self.depth)
        K = self.cam.K
        u, v = K[0, 0] * pts[:, 0] * inv_z + K[0, 2], K[1, 1] * pts[:, 1] * inv_z + K[1, 2]
        radius = np.minimum(np.sqrt((s * K[0, 0] * inv_z * self.sigma) ** 2 + 0.3) * self.reach, MAX_SPLAT_RADIUS_PX)
        return u, v, radius

    def cost(self, R0_cam, x) -> float:
        from scipy.ndimage import map_coordinates
        from scipy.spatial import cKDTree

        self.evals += 1
        if not np.isfinite(x).all():
            return math.inf
        u, v, radius = self.project(self.camera_rotation(R0_cam, x), x)
        # Signed distance to the mask's edge at each point (bilinear), growing past the padding.
        pu, pv = u + (self.pad - 0.5), v + (self.pad - 0.5)
        h, w = self.edge_sdf.shape
        signed = map_coordinates(self.edge_sdf, [pv, pu], order=1, mode="nearest")
        signed += np.hypot(pu - np.clip(pu, 0, w - 1), pv - np.clip(pv, 0, h - 1))
        # The splats' discs reaching out of the mask, averaged over the points along the mask's
        # edge (as coverage is over the outline), not over all: interior points say nothing.
        reach_out = signed + radius
        spill = np.maximum(reach_out, 0.0).sum() / max(float((reach_out > -EDGE_BAND_PX).sum()), 1.0)
        gap, nearest = cKDTree(np.stack([u, v], 1), balanced_tree=False, compact_nodes=False).query(self.outline)
        coverage = np.maximum(gap - 0.5 - radius[nearest], 0.0).mean()
        return float(spill + coverage) / self.box_side

    def fit_box(self, R0_cam) -> np.ndarray:
        """x for rotation R0_cam with scale and position matching the mask's bounding box
        (least squares over its four sides, twice for perspective)."""
        x = np.array([0.0, 0.0, 0.0, math.log(1.0 / self.extent),
                      (self.box[0] + self.box[1]) / 2, (self.box[2] + self.box[3]) / 2])
        for _ in range(2):
            u, v, radius = self.project(R0_cam, x)
            box = np.array([(u - radius).min(), (u + radius).max(), (v - radius).min(), (v + radius).max()])
            size, target = box[[1, 3]] - box[[0, 2]], self.box[[1, 3]] - self.box[[0, 2]]
            a = float(size @ target / max(size @ size, 1e-12))
            if not a > 0:
                break
            # Scale about the centre's image position, then shift the box centres together.
            mid, target_mid = (box[[0, 2]] + box[[1, 3]]) / 2, (self.box[[0, 2]] + self.box[[1, 3]]) / 2
            x[3] += math.log(a)
            x[4:] += target_mid - (x[4:] + a * (mid - x[4:]))
        return x


# -- the search ---------------------------------------------------------------------

def _distinct(rotations: list[np.ndarray], order, min_deg: float, limit: int) -> list[int]:
    """Greedy non-maximum suppression: indices in `order`, each > min_deg from those kept."""
    kept: list[int] = []
    for i in order:
        if all(rotation_error_deg(rotations[i], rotations[j]) > min_deg for j in kept):
            kept.append(int(i))
            if len(kept) == limit:
                break
    return kept


class _Progress:
    """Reports a never-decreasing fraction in [0, 1] and polls cancel() at every step."""

    def __init__(self, progress: Callable[[float], None] | None, cancel: Callable[[], bool] | None) -> None:
        self.progress, self.cancel, self.done = progress, cancel, 0.0

    def __call__(self, fraction: float) -> None:
        if self.cancel is not None and self.cancel():
            raise CancelledError("placing the object was cancelled")
        self.done = min(1.0, max(self.done, round(float(fraction), 6)))
        if self.progress is not None:
            self.progress(self.done)


def place_hypotheses(g, mask: np.ndarray, camera, config: PlacementConfig = PlacementConfig(), k: int = 4,
                     progress: Callable[[float], None] | None = None, cancel: Callable[[], bool] | None = None,
                     device=None, starts: np.ndarray | None = None) -> list[Placement]:
    """The `k` best distinct placements of g (Gaussians in a canonical frame) so that their
    silhouette through `camera` matches `mask` (bool [H, W] of the camera's size), best
    first. `progress(fraction)` is called and `cancel()` polled between steps (True raises
    `CancelledError`); `starts` [m, 3, 3] are extra starting world rotations (a format's
    known relation to the view, an artist's pose); renders run on `device` (default: g's)."""
    from ...core.transforms import apply_similarity

    step = _Progress(progress, cancel)
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"the number of placement hypotheses must be a whole number >= 1, got {k!r}")
    mask = np.asarray(mask)
    if mask.shape != (camera.height, camera.width):
        raise MaskError(f"placement needs a mask of the camera's size {camera.width}x{camera.height}, "
                        f"got {mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]}")
    mask = mask.astype(bool)
    if not mask.any():
        raise MaskError("cannot place an object in an empty mask")
    if len(g) == 0:
        raise BackendFailedError("cannot place an object with no Gaussians")
    step(0.0)
    rng = np.random.default_rng(config.seed)
    problem = _Chamfer(g, mask, camera, config, rng)

    # 1. Coarse: every starting rotation with its box-fitted scale and position, few points.
    light = problem.lighter(config.coarse_points, config.coarse_outline_points, rng)
    world = list(super_fibonacci_rotations(config.start_rotations))
    if starts is not None:
        world += list(np.asarray(starts, dtype=np.float64).reshape(-1, 3, 3))
    rotations = [problem.to_camera_rotation(R) for R in world]
    coarse = []
    for i, R in enumerate(rotations):
        x = light.fit_box(R)
        coarse.append((light.cost(R, x), R, x))
        if i % 128 == 127:
            step(0.15 * i / len(rotations))
    step(0.15)

    # 2. A short refinement of the best distinct ones, few points; 3. a full one of the best of those.
    short = _refine_distinct(light, coarse, config.short_starts, config.short_evals, config.distinct_deg, 0.15,
                             lambda f: step(0.15 + 0.25 * f))
    refined = _refine_distinct(problem, short, config.refine_starts, config.refine_evals, config.distinct_deg, 0.05,
                               lambda f: step(0.4 + 0.45 * f))
    keep = _distinct([R for _, R, _ in refined], range(len(refined)), config.distinct_deg, k)

    # 3. Score the hypotheses by render, polish the best.
    probe = _render_probe(g, config, rng, device)
    hypotheses = []
    for rank, i in enumerate(keep):
        cost, R_cam, x = refined[i]
        if rank == 0:
            step(0.85)
        sil_iou = iou(silhouette(apply_similarity(probe, problem.similarity(R_cam, x)), problem.cam), problem.mask)
        if rank == 0 and config.polish_renders > 0:
            sil_iou, R_cam, x = _polish(problem, probe, R_cam, x, sil_iou, config.polish_renders)
            cost = problem.cost(R_cam, x)
        sim = problem.similarity(R_cam, x)
        yaw, pitch, roll = camera_angles(camera, sim.rotation)
        hypotheses.append(Placement(apply_similarity(g, sim), sim, sil_iou, yaw, pitch, roll, cost, rank))
        step(0.9 + 0.1 * (rank + 1) / len(keep))
    return hypotheses


def place(g, mask: np.ndarray, camera, config: PlacementConfig = PlacementConfig(), device=None,
          progress: Callable[[float], None] | None = None, cancel: Callable[[], bool] | None = None) -> Placement:
    """The best placement (see `place_hypotheses`)."""
    return place_hypotheses(g, mask, camera, config, k=1, progress=progress, cancel=cancel, device=device)[0]


def _refine_distinct(problem: _Chamfer, candidates: list, count: int, evals: int, distinct_deg: float,
                     step_rad: float, progress: Callable[[float], None]) -> list:
    """Nelder-Mead on (rotation, log scale, position) from the `count` best mutually distinct
    candidates (cost, R_cam, x); -> [(cost, R_cam, x with zero rotation)] best first."""
    from scipy.optimize import minimize

    order = np.argsort([c for c, _, _ in candidates], kind="stable")
    chosen = _distinct([R for _, R, _ in candidates], order, distinct_deg, count)
    unit = np.array([step_rad, step_rad, step_rad, step_rad / 3, step_rad / 8 * problem.box_side,
                     step_rad / 8 * problem.box_side])
    simplex = np.vstack([np.zeros(6), np.eye(6)])
    refined = []
    for n, i in enumerate(chosen):
        _, R0, x0 = candidates[i]
        result = minimize(lambda z: problem.cost(R0, x0 + z * unit), np.zeros(6), method="Nelder-Mead",
                          options={"maxfev": evals, "initial_simplex": simplex, "xatol": 0.02, "fatol": 1e-5})
        x = x0 + result.x * unit
        refined.append((float(result.fun), problem.camera_rotation(R0, x), np.concatenate([np.zeros(3), x[3:]])))
        progress((n + 1) / len(chosen))
    refined.sort(key=lambda c: c[0])
    return refined


def _render_probe(g, config: PlacementConfig, rng, device):
    """At most `polish_gaussians` of g for silhouette renders, their splats widened so the
    subset still covers the surface."""
    import torch

    n = len(g)
    probe = g
    if n > config.polish_gaussians:
        idx = torch.from_numpy(np.sort(rng.choice(n, config.polish_gaussians, replace=False)))
        probe = g.subset(idx)
        probe = probe.replace(log_scales=probe.log_scales + 0.5 * math.log(n / config.polish_gaussians))
    return probe if device is None else probe.to(device)


def _polish(problem: _Chamfer, probe, R_cam, x, value: float, budget: int):
    """Coordinate pattern search maximising the rendered IoU; at most `budget` renders."""
    from ...core.transforms import apply_similarity

    def score(trial):
        sim = problem.similarity(problem.camera_rotation(R_cam, trial), np.concatenate([np.zeros(3), trial[3:]]))
        return iou(silhouette(apply_similarity(probe, sim), problem.cam), problem.mask)

    steps = np.array([0.03, 0.03, 0.03, 0.01, 0.5, 0.5])
    best = np.array(x, dtype=np.float64)
    used = 0
    while used < budget and steps[4] > 0.05:
        improved = False
        for i in (3, 4, 5, 0, 1, 2):
            for sign in (1.0, -1.0):
                if used >= budget:
                    break
                trial = best.copy()
                trial[i] += sign * steps[i]
                trial_value = score(trial)
                used += 1
                if trial_value > value:
                    value, best, improved = trial_value, trial, True
                    break
        if not improved:
            steps = steps / 2
    R_best = problem.camera_rotation(R_cam, best)
    return value, R_best, np.concatenate([np.zeros(3), best[3:]])
