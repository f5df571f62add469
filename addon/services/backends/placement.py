"""Place a canonical-frame object (Gaussians) in a photo's camera so that its silhouette
matches the mask: a full rotation, a uniform scale and the image position of its centre.

Shared by every lifter whose object comes in its own frame (TRELLIS: Z up, inside
[-0.5, 0.5]^3, pose unrelated to the input view; the mesh lifter, which converts each
format to Z up first). The object's depth follows the inflate lifter's convention
(`reference_depth`: the mask's bounding box spans 1 world unit), because one silhouette
fixes only the ratio of scale to distance; `refine_placement` keeps an artist's depth.

Cost ("chamfer"), on a copy of the camera at most `work_side` pixels wide, with a random
subset of the Gaussians' means as surface points, each a disc of its splat's alpha > 1/2
radius, in perspective through the camera's K:
- spill: how far each disc reaches out of the mask (the mask edge's signed distance
  transform, read bilinearly), normalised by the number of points on the edge (interior
  points say nothing);
- coverage: each mask-outline sample's distance to the nearest disc (k-d tree).
Both are distances in work pixels, piecewise smooth in every parameter (no rasterised IoU,
which is flat almost everywhere). `Placement.score` = sqrt(sum of their squares) / the mask
box's larger side: independent of resolution, 0 is a perfect fit, LOWER IS BETTER.

Search:
1. coarse — `start_rotations` rotations spread evenly over SO(3) (super-Fibonacci spiral,
   Alexa 2022) plus any caller's `starts`; for each, scale and position in closed form from
   the mask's bounding box, then the cost with few points;
2. short refinement — Levenberg-Marquardt (analytic Jacobian: rotation about the camera's
   axes, log scale, image position) from the `short_starts` best mutually distinct coarse
   rotations, few points;
3. full refinement — the same with all the search points from the `refine_starts` best;
4. hypotheses — the refined poses, near duplicates (< `distinct_deg`) suppressed, are
   rendered (torch, alpha > 1/2) and ranked by silhouette IoU (`Placement.iou`): the chamfer
   finds the basins, the IoU judges between poses whose chamfer costs lie within its
   modelling error (splat overlap widens a rendered edge beyond one disc);
5. contour refinement of the `contour_candidates` best — silhouette ICP: the rendered
   silhouette's edge pixels, lifted onto the surface by the rendered depth, are fitted to
   the mask's edge by the same Levenberg-Marquardt, for `contour_rounds` renders; then the
   final ranking by IoU.
A left-right symmetric object has two poses with almost the same silhouette (only
perspective tells them apart: `mirror_rotation`), so callers get `k` hypotheses.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...core.camera import Camera
from ...core.errors import BackendFailedError, CancelledError, ConfigError, MaskError

WORLD_UP = np.array([0.0, 0.0, 1.0])
MIN_SEARCH_POINTS = 16   # fewer opaque Gaussians than this cannot be placed meaningfully
MAX_SPLAT_RADIUS_PX = 6.0
EDGE_BAND_PX = 0.5  # points this far inside the mask's edge (beyond their splat radius) count as on it


@dataclass(frozen=True)
class PlacementConfig:
    work_side: int = 128             # longer side of the working view (the mask's box + margins), pixels
    render_side: int = 256           # the same for renders (IoU, contour refinement)
    search_points: int = 1500        # surface points (Gaussian means) in the chamfer cost
    outline_points: int = 256        # samples of the mask's outline in the coverage term
    start_rotations: int = 1024      # evenly spread starting rotations (coarse stage)
    coarse_points: int = 300         # surface points in the coarse stage and the short refinement
    coarse_outline_points: int = 96  # outline samples there
    short_starts: int = 96           # distinct coarse rotations given a short refinement
    short_iterations: int = 6        # Levenberg-Marquardt iterations per short refinement
    refine_starts: int = 12          # distinct short refinements refined in full
    refine_iterations: int = 30      # Levenberg-Marquardt iterations per full refinement
    distinct_deg: float = 15.0       # hypotheses closer than this (rotation angle) are duplicates
    render_gaussians: int = 10000    # Gaussians rendered for the IoU and the contour refinement
    iou_candidates: int = 6          # best distinct refined poses (by cost) rendered for their IoU
    contour_candidates: int = 3      # best of those (by IoU) given the contour refinement
    contour_rounds: int = 2          # its render -> fit rounds (0: none)
    contour_iterations: int = 8      # Levenberg-Marquardt iterations per round
    seed: int = 0

    def __post_init__(self) -> None:
        positive = ("work_side", "render_side", "search_points", "outline_points", "start_rotations", "coarse_points",
                    "coarse_outline_points", "short_starts", "short_iterations", "refine_starts", "refine_iterations",
                    "render_gaussians", "iou_candidates", "contour_iterations")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"placement {name} must be a whole number >= 1, got {value!r}")
        if min(self.work_side, self.render_side) < 16:
            raise ConfigError(f"placement work_side and render_side must be at least 16 pixels, got "
                              f"{self.work_side} and {self.render_side}")
        for name in ("contour_candidates", "contour_rounds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"placement {name} must be a whole number >= 0, got {value!r}")
        if not 0 <= self.distinct_deg < 180:
            raise ConfigError(f"placement distinct_deg must be in [0, 180), got {self.distinct_deg}")


@dataclass(frozen=True)
class Placement:
    gaussians: object       # Gaussians in the camera's world
    similarity: object      # core.transforms.Similarity applied to the canonical object
    iou: float              # silhouette IoU with the mask in the render view (its box + margins, <= render_side px)
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
    return _alpha_depth(g, camera)[0] > 0.5


def _alpha_depth(g, camera) -> tuple[np.ndarray, np.ndarray]:  # -> alpha [h, w], expected depth [h, w]
    from ...core.render import render

    on_gpu = g.device.type == "cuda"
    result = render(g, camera, backend="auto" if on_gpu else "torch", device=g.device)
    return result.rgba[..., 3].detach().cpu().numpy(), result.depth.detach().cpu().numpy()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


# -- the chamfer problem ------------------------------------------------------------

def _work_view(mask: np.ndarray, camera, work_side: int):
    """The camera cropped to the mask's box plus a quarter of its side on every side and scaled
    so that crop is at most `work_side` pixels (never enlarged): the object is about as many
    pixels wide in every photo. -> (camera, mask, inside the photo), bool masks of its size."""
    import cv2

    ys, xs = np.nonzero(mask)
    side = max(xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    margin = int(math.ceil(0.25 * side))
    x0, y0 = int(xs.min()) - margin, int(ys.min()) - margin
    width, height = int(xs.max()) + 1 + margin - x0, int(ys.max()) + 1 + margin - y0
    factor = min(1.0, work_side / max(width, height))
    w, h = max(1, int(round(width * factor))), max(1, int(round(height * factor)))

    def crop(image: np.ndarray) -> np.ndarray:  # float [height, width], zero outside the photo
        out = np.zeros((height, width), np.float32)
        sy0, sx0 = max(0, y0), max(0, x0)
        sy1, sx1 = min(image.shape[0], y0 + height), min(image.shape[1], x0 + width)
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
        return cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA) if (w, h) != (width, height) else out

    small = crop(mask.astype(np.float32))
    small_mask = small >= 0.5 if (small >= 0.5).any() else small > 0
    valid = crop(np.ones(mask.shape, np.float32)) >= 0.5
    K = camera.K.copy()
    K[0, 2] -= x0
    K[1, 2] -= y0
    K = np.diag([w / width, h / height, 1.0]) @ K
    return Camera(w, h, K, camera.world_to_camera), small_mask, valid


class _Chamfer:
    """The cost of a pose x = (omega [3] rad about camera axes applied after R0, log scale,
    u, v work pixels of the centre) for one object, mask and camera."""

    def __init__(self, g, mask: np.ndarray, camera, config: PlacementConfig, rng, depth: float | None = None) -> None:
        import cv2

        from .inflate import reference_depth

        self.camera = camera
        self.cam, self.mask, self.valid = _work_view(mask, camera, config.work_side)
        # Renders (IoU, contours) at `render_side`: splats under a pixel wide would be widened by
        # the renderer's 0.3 px^2 dilation into a fatter silhouette than the photo's mask.
        self.render_cam, self.render_mask, self.render_valid = _work_view(mask, camera, config.render_side)
        self.depth = reference_depth(mask, camera) if depth is None else depth
        ys, xs = np.nonzero(self.mask)
        self.box = np.array([xs.min(), xs.max() + 1.0, ys.min(), ys.max() + 1.0])  # x0 x1 y0 y1, pixel edges
        self.box_side = float(max(self.box[1] - self.box[0], self.box[3] - self.box[2]))
        # Where the mask meets the photo's border the object may go on outside it: there the
        # outside of the photo is unknown, neither spill nor outline.
        cut = (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
        inside_or_unknown = self.mask | (~self.valid if cut else False)
        # Signed distance (pixels) from each pixel centre to the mask's edge, half a pixel beyond
        # its outermost pixel centres: negative inside. Padded by `pad` pixels on every side so
        # that points leaving the view still see a distance that grows.
        self.pad = pad = max(self.cam.width, self.cam.height) // 2
        padded = np.pad(inside_or_unknown, pad, mode="edge" if cut else "constant")
        outside = cv2.distanceTransform((~padded).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        inside = cv2.distanceTransform(padded.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        self.edge_sdf = np.where(padded, 0.5 - inside, outside - 0.5).astype(np.float64)
        self.sdf_dv, self.sdf_du = np.gradient(self.edge_sdf)
        eroded = cv2.erode(inside_or_unknown.astype(np.uint8), np.ones((3, 3)), borderType=cv2.BORDER_REPLICATE)
        outline = np.argwhere(self.mask & ~eroded.astype(bool))[:, ::-1] + 0.5
        if len(outline) < 3:
            raise MaskError("the mask has no outline inside the photo to place the object against")
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
        self.R_wc = self.cam.world_to_camera[:3, :3]
        self.contour = False  # True: the points are the rendered silhouette's edge pixels (`on_contour`)
        self.evals = 0

    def iou(self, silhouette: np.ndarray) -> float:  # of a render-view silhouette with the mask, inside the photo
        return iou(silhouette & self.render_valid, self.render_mask)

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

    def on_contour(self, edge_points: np.ndarray) -> "_Chamfer":
        """The problem whose points are `edge_points` [e, 3] (canonical, about the centre): the
        pixel centres of a rendered silhouette's edge, half a pixel inside it, lifted to the
        surface by the rendered depth. Every such point belongs on the mask's edge, so the
        spill term becomes two-sided."""
        contour = copy.copy(self)
        contour.points, contour.contour = edge_points, True
        contour.sigma = contour.reach = np.zeros(len(edge_points))
        return contour

    def radius(self, s: float, inv_z: np.ndarray) -> np.ndarray:  # [n] alpha > 1/2 disc radius, work pixels
        if self.contour:
            return np.full(len(self.points), 0.5)
        splat = s * self.cam.K[0, 0] * inv_z * self.sigma
        return np.minimum(np.sqrt(splat ** 2 + 0.3) * self.reach, MAX_SPLAT_RADIUS_PX)

    # projection and cost ---------------------------------------------------------------
    def project(self, R_cam, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # -> u [n], v [n], radius px [n]
        s = math.exp(x[3])
        pts = self.points @ (s * (R_cam @ self.R_wc)).T + self.centre_cam(x[4], x[5])
        inv_z = 1.0 / np.maximum(pts[:, 2], 1e-3 * self.depth)
        K = self.cam.K
        u, v = K[0, 0] * pts[:, 0] * inv_z + K[0, 2], K[1, 1] * pts[:, 1] * inv_z + K[1, 2]
        return u, v, self.radius(s, inv_z)

    def residuals(self, R_cam, x, jacobian: bool = False):
        """Distances (work pixels) whose squares sum to the cost: [spill of each point / sqrt(points
        on the mask's edge), coverage gap of each outline sample / sqrt(samples)]; with
        `jacobian`, also d residuals / d (omega about the camera axes applied to R_cam, log
        scale, u, v) [n + m, 6] (splat radii held fixed)."""
        from scipy.ndimage import map_coordinates
        from scipy.spatial import cKDTree

        s = math.exp(x[3])
        offsets = self.points @ (s * (R_cam @ self.R_wc)).T  # [n, 3] camera frame, about the centre
        pts = offsets + self.centre_cam(x[4], x[5])
        inv_z = 1.0 / np.maximum(pts[:, 2], 1e-3 * self.depth)
        K = self.cam.K
        u, v = K[0, 0] * pts[:, 0] * inv_z + K[0, 2], K[1, 1] * pts[:, 1] * inv_z + K[1, 2]
        radius = self.radius(s, inv_z)
        # Signed distance to the mask's edge at each point (bilinear), growing past the padding.
        pu, pv = u + (self.pad - 0.5), v + (self.pad - 0.5)
        h, w = self.edge_sdf.shape
        at = [pv, pu]
        signed = map_coordinates(self.edge_sdf, at, order=1, mode="nearest")
        signed += np.hypot(pu - np.clip(pu, 0, w - 1), pv - np.clip(pv, 0, h - 1))
        # Spill: each splat's disc reaching out of the mask, normalised by the points on the
        # mask's edge (as coverage is by the outline samples): interior points say nothing.
        reach_out = signed + radius
        spilling = np.ones(len(pts), bool) if self.contour else reach_out > 0
        on_edge = len(pts) if self.contour else float((reach_out > -EDGE_BAND_PX).sum())
        spill_norm = 1.0 / math.sqrt(max(on_edge, 1.0))
        spill = np.where(spilling, reach_out, 0.0) * spill_norm
        # Coverage: each outline sample's distance to the nearest splat's disc.
        gap, nearest = cKDTree(np.stack([u, v], 1), balanced_tree=False, compact_nodes=False).query(self.outline)
        uncovered = gap - 0.5 - radius[nearest] > 0
        m = len(self.outline)
        coverage = np.where(uncovered, gap - 0.5 - radius[nearest], 0.0) / math.sqrt(m)
        r = np.concatenate([spill, coverage])
        if not jacobian:
            return r
        # d point (camera frame) / d params: omega x offset, offset, and the centre's image motion.
        n = len(pts)
        dP = np.zeros((n, 3, 6))
        ax, ay, az = offsets[:, 0], offsets[:, 1], offsets[:, 2]
        dP[:, 1, 0], dP[:, 2, 0] = -az, ay
        dP[:, 0, 1], dP[:, 2, 1] = az, -ax
        dP[:, 0, 2], dP[:, 1, 2] = -ay, ax
        dP[:, :, 3] = offsets
        dP[:, 0, 4] = self.depth / K[0, 0]
        dP[:, 1, 5] = self.depth / K[1, 1]
        du = K[0, 0] * inv_z[:, None] * (dP[:, 0] - (pts[:, 0] * inv_z)[:, None] * dP[:, 2])  # [n, 6]
        dv = K[1, 1] * inv_z[:, None] * (dP[:, 1] - (pts[:, 1] * inv_z)[:, None] * dP[:, 2])
        gu = map_coordinates(self.sdf_du, at, order=1, mode="nearest")
        gv = map_coordinates(self.sdf_dv, at, order=1, mode="nearest")
        J_spill = (gu[:, None] * du + gv[:, None] * dv) * (spilling * spill_norm)[:, None]
        direction = np.stack([u[nearest], v[nearest]], 1) - self.outline  # [m, 2]
        direction /= np.maximum(gap, 1e-9)[:, None]
        J_cover = (direction[:, :1] * du[nearest] + direction[:, 1:] * dv[nearest]) * (uncovered / math.sqrt(m))[:, None]
        return r, np.concatenate([J_spill, J_cover])

    def cost(self, R0_cam, x) -> float:
        """sqrt(sum of squared residuals) / the mask box's side: 0 is a perfect fit."""
        self.evals += 1
        if not np.isfinite(x).all():
            return math.inf
        r = self.residuals(self.camera_rotation(R0_cam, x), x)
        return math.sqrt(float(r @ r)) / self.box_side

    def levenberg_marquardt(self, R_cam, x, iterations: int):
        """Local least-squares fit from (R_cam, x with zero rotation); -> (cost, R_cam, x)."""
        x = np.array(x, dtype=np.float64)
        x[:3] = 0.0
        r, J = self.residuals(R_cam, x, jacobian=True)
        value, damping = float(r @ r), 1e-3
        for _ in range(iterations):
            self.evals += 1
            A, grad = J.T @ J, J.T @ r
            step = np.linalg.solve(A + damping * np.diag(np.diag(A) + 1e-9), -grad)
            trial_R = self.camera_rotation(R_cam, step)
            trial_x = x + np.concatenate([np.zeros(3), step[3:]])
            trial_r, trial_J = self.residuals(trial_R, trial_x, jacobian=True)
            trial_value = float(trial_r @ trial_r)
            if trial_value < value:
                converged = value - trial_value < 1e-6 * value
                R_cam, x, r, J, value = trial_R, trial_x, trial_r, trial_J, trial_value
                damping = max(damping / 3, 1e-7)
                if converged:
                    break
            else:
                damping *= 4
                if damping > 1e6:
                    break
        return math.sqrt(value) / self.box_side, R_cam, x

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


    def coarse(self, R_cams: np.ndarray, chunk: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """`fit_box` then `cost` for many rotations at once: R_cams [B, 3, 3] -> (costs [B],
        x [B, 6]); the same numbers as the one-at-a-time pair (tested), in a fraction of the time."""
        from scipy.ndimage import map_coordinates
        from scipy.spatial import cKDTree

        costs, xs = [], []
        K, n, m = self.cam.K, len(self.points), len(self.outline)
        h, w = self.edge_sdf.shape
        for start in range(0, len(R_cams), chunk):
            A = R_cams[start:start + chunk] @ self.R_wc  # [b, 3, 3]
            offsets = self.points @ A.transpose(0, 2, 1)  # [b, n, 3] at unit scale
            b = len(A)
            x = np.zeros((b, 6))
            x[:, 3] = math.log(1.0 / self.extent)
            x[:, 4], x[:, 5] = (self.box[0] + self.box[1]) / 2, (self.box[2] + self.box[3]) / 2

            def project(x):
                s = np.exp(x[:, 3])[:, None]
                centre = self.depth * np.stack([(x[:, 4] - K[0, 2]) / K[0, 0], (x[:, 5] - K[1, 2]) / K[1, 1],
                                                np.ones(b)], 1)
                pts = s[..., None] * offsets + centre[:, None, :]
                inv_z = 1.0 / np.maximum(pts[..., 2], 1e-3 * self.depth)
                u, v = K[0, 0] * pts[..., 0] * inv_z + K[0, 2], K[1, 1] * pts[..., 1] * inv_z + K[1, 2]
                radius = np.minimum(np.sqrt((s * K[0, 0] * inv_z * self.sigma) ** 2 + 0.3) * self.reach,
                                    MAX_SPLAT_RADIUS_PX)
                return u, v, radius

            for _ in range(2):  # fit_box, batched
                u, v, radius = project(x)
                box = np.stack([(u - radius).min(1), (u + radius).max(1), (v - radius).min(1), (v + radius).max(1)], 1)
                size, target = box[:, [1, 3]] - box[:, [0, 2]], self.box[[1, 3]] - self.box[[0, 2]]
                a = (size @ target) / np.maximum((size * size).sum(1), 1e-12)
                ok = a > 0
                mid, target_mid = (box[:, [0, 2]] + box[:, [1, 3]]) / 2, (self.box[[0, 2]] + self.box[[1, 3]]) / 2
                shift = target_mid - (x[:, 4:] + a[:, None] * (mid - x[:, 4:]))
                x[ok, 3] += np.log(a[ok])
                x[ok, 4:] += shift[ok]
            u, v, radius = project(x)
            pu, pv = u + (self.pad - 0.5), v + (self.pad - 0.5)
            signed = map_coordinates(self.edge_sdf, [pv.ravel(), pu.ravel()], order=1, mode="nearest").reshape(b, n)
            signed += np.hypot(pu - np.clip(pu, 0, w - 1), pv - np.clip(pv, 0, h - 1))
            reach_out = signed + radius
            on_edge = np.maximum((reach_out > -EDGE_BAND_PX).sum(1), 1.0)
            spill_sq = (np.maximum(reach_out, 0.0) ** 2).sum(1) / on_edge
            uv = np.stack([u, v], -1)  # [b, n, 2]
            cover_sq = np.empty(b)
            for i in range(b):
                gap, nearest = cKDTree(uv[i], balanced_tree=False, compact_nodes=False).query(self.outline)
                cover_sq[i] = (np.maximum(gap - 0.5 - radius[i, nearest], 0.0) ** 2).sum()
            costs.append(np.sqrt(spill_sq + cover_sq / m) / self.box_side)
            xs.append(x)
        return np.concatenate(costs), np.concatenate(xs)

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
    first (lowest `score`). `progress(fraction)` is called and `cancel()` polled between
    steps (True raises `CancelledError`); `starts` [m, 3, 3] are extra starting world
    rotations (a format's known relation to the view); renders run on `device` (default: g's)."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"the number of placement hypotheses must be a whole number >= 1, got {k!r}")
    step = _Progress(progress, cancel)
    step(0.0)
    rng = np.random.default_rng(config.seed)
    problem = _Chamfer(g, _checked_mask(g, mask, camera), camera, config, rng)

    # 1. Coarse: every starting rotation with its box-fitted scale and position, few points.
    light = problem.lighter(config.coarse_points, config.coarse_outline_points, rng)
    world = list(super_fibonacci_rotations(config.start_rotations))
    if starts is not None:
        world += list(np.asarray(starts, dtype=np.float64).reshape(-1, 3, 3))
    rotations = np.stack([problem.to_camera_rotation(R) for R in world])
    costs, xs = light.coarse(rotations)
    coarse = list(zip(costs, rotations, xs))
    step(0.3)

    # 2. A short refinement of the best distinct ones, few points; 3. a full one of the best of those.
    short = _refine_distinct(light, coarse, config.short_starts, config.short_iterations, config.distinct_deg,
                             lambda f: step(0.3 + 0.2 * f))
    refined = _refine_distinct(problem, short, config.refine_starts, config.refine_iterations, config.distinct_deg,
                               lambda f: step(0.5 + 0.3 * f))
    distinct = _distinct([R for _, R, _ in refined], range(len(refined)), config.distinct_deg,
                         max(k, config.iou_candidates))

    # 4. The distinct ones scored by render (silhouette IoU); the best few refined on their
    # rendered contours; ranked by IoU.
    probe = _render_probe(g, problem, config, rng, device)
    scored = []
    for n, i in enumerate(distinct):
        _, R_cam, x = refined[i]
        scored.append((_render_iou(problem, probe, R_cam, x), R_cam, x))
        step(0.8 + 0.05 * (n + 1) / len(distinct))
    scored.sort(key=lambda c: -c[0])
    for n in range(min(config.contour_candidates, len(scored))):
        scored[n] = _contour_refine(problem, probe, scored[n][1], scored[n][2], config.contour_rounds,
                                    config.contour_iterations)
        step(0.85 + 0.15 * (n + 1) / config.contour_candidates)
    # Contour refinement can bring two hypotheses together: keep the distinct ones.
    scored.sort(key=lambda c: -c[0])
    keep = _distinct([R for _, R, _ in scored], range(len(scored)), config.distinct_deg, k)
    hypotheses = [_placement(problem, probe, g, *scored[i], rank) for rank, i in enumerate(keep)]
    step(1.0)
    return hypotheses


def place(g, mask: np.ndarray, camera, config: PlacementConfig = PlacementConfig(), device=None,
          progress: Callable[[float], None] | None = None, cancel: Callable[[], bool] | None = None) -> Placement:
    """The best placement (see `place_hypotheses`)."""
    return place_hypotheses(g, mask, camera, config, k=1, progress=progress, cancel=cancel, device=device)[0]


def refine_placement(g, mask: np.ndarray, camera, similarity, config: PlacementConfig = PlacementConfig(),
                     device=None) -> Placement:
    """'As placed': an object the artist has lined up through the camera (`similarity` maps
    the canonical object into the camera's world) refined locally to the mask, at the depth
    the artist chose (only scale / depth is observable, so the artist's depth stays)."""
    rng = np.random.default_rng(config.seed)
    mask = _checked_mask(g, mask, camera)
    probe_center = _Chamfer(g, mask, camera, config, rng).center
    R_wc, t_wc = camera.world_to_camera[:3, :3], camera.world_to_camera[:3, 3]
    placed_center = R_wc @ similarity.apply_points(probe_center[None])[0] + t_wc
    if not placed_center[2] > 0:
        raise MaskError("the placed object's centre is behind the camera")
    problem = _Chamfer(g, mask, camera, config, np.random.default_rng(config.seed), depth=float(placed_center[2]))
    uv, _ = problem.cam.project(similarity.apply_points(problem.center[None]))
    x = np.array([0.0, 0.0, 0.0, math.log(similarity.scale), uv[0, 0], uv[0, 1]])
    _, R_cam, x = problem.levenberg_marquardt(problem.to_camera_rotation(similarity.rotation), x,
                                              config.refine_iterations)
    probe = _render_probe(g, problem, config, rng, device)
    return _placement(problem, probe, g, *_contour_refine(problem, probe, R_cam, x, config.contour_rounds,
                                                          config.contour_iterations), 0)


def _checked_mask(g, mask, camera) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (camera.height, camera.width):
        got = "x".join(str(n) for n in mask.shape[::-1])
        raise MaskError(f"placement needs a mask of the camera's size {camera.width}x{camera.height}, got {got}")
    mask = mask.astype(bool)
    if not mask.any():
        raise MaskError("cannot place an object in an empty mask")
    if len(g) == 0:
        raise BackendFailedError("cannot place an object with no Gaussians")
    return mask


def _render_iou(problem: _Chamfer, probe, R_cam, x) -> float:
    from ...core.transforms import apply_similarity

    return problem.iou(silhouette(apply_similarity(probe, problem.similarity(R_cam, x)), problem.render_cam))


def _placement(problem: _Chamfer, probe, g, sil_iou: float, R_cam, x, rank: int) -> Placement:
    from ...core.transforms import apply_similarity

    cost = problem.cost(R_cam, x)
    sim = problem.similarity(R_cam, x)
    yaw, pitch, roll = camera_angles(problem.camera, sim.rotation)
    return Placement(apply_similarity(g, sim), sim, sil_iou, yaw, pitch, roll, cost, rank)


# -- scoring against a known pose (tests, `make bench-quality`) -----------------------

@dataclass(frozen=True)
class FitError:
    rotation_deg: float  # angle between the placed and the true rotation
    center_px: float     # image distance between the placed and the true object centre, camera pixels
    rest_iou: float      # IoU of the placed object's silhouette (torch render, alpha > 1/2) with the mask
    rank: int            # the scored hypothesis's rank


def fit_error(placed: Placement, truth, g, camera, mask: np.ndarray) -> FitError:
    """How far `placed` is from the true placement `truth` (Similarity of the canonical g into
    the camera's world); the centre is the canonical box centre of g's opaque Gaussians.
    Depth is not compared: a silhouette fixes only the ratio of scale to distance."""
    means = g.means.detach().double().cpu().numpy()
    opaque = (g.opacities >= 0.05).cpu().numpy()
    means = means[opaque] if opaque.any() else means
    center = (means.min(0) + means.max(0)) / 2
    uv_placed, _ = camera.project(placed.similarity.apply_points(center[None]))
    uv_true, _ = camera.project(truth.apply_points(center[None]))
    return FitError(rotation_error_deg(placed.rotation, truth.rotation),
                    float(np.linalg.norm(uv_placed[0] - uv_true[0])),
                    iou(silhouette(placed.gaussians, camera), np.asarray(mask, bool)), placed.rank)


def best_fit_error(hypotheses: list[Placement], truth, g, camera, mask: np.ndarray, top: int = 2) -> FitError:
    """`fit_error` of the hypothesis, among the first `top`, closest in rotation to the truth
    (a mirror-symmetric object's true pose may rank second)."""
    if not hypotheses:
        raise ConfigError("no placement hypotheses to score")
    closest = min(hypotheses[:top], key=lambda h: rotation_error_deg(h.rotation, truth.rotation))
    return fit_error(closest, truth, g, camera, mask)


def _refine_distinct(problem: _Chamfer, candidates: list, count: int, iterations: int, distinct_deg: float,
                     progress: Callable[[float], None]) -> list:
    """Levenberg-Marquardt from the `count` best mutually distinct candidates (cost, R_cam, x);
    -> [(cost, R_cam, x with zero rotation)] best first."""
    order = np.argsort([c for c, _, _ in candidates], kind="stable")
    chosen = _distinct([R for _, R, _ in candidates], order, distinct_deg, count)
    refined = []
    for n, i in enumerate(chosen):
        _, R0, x0 = candidates[i]
        refined.append(problem.levenberg_marquardt(problem.camera_rotation(R0, x0), x0, iterations))
        progress((n + 1) / len(chosen))
    refined.sort(key=lambda c: c[0])
    return refined


def _render_probe(g, problem: _Chamfer, config: PlacementConfig, rng, device):
    """At most `render_gaussians` of g for silhouette renders. A subset's splats are widened
    (in quadrature) by half the spacing its centres leave on the working image, so it still
    covers the surface without moving the silhouette's edge by more than about that."""
    import torch

    n = len(g)
    probe = g
    if n > config.render_gaussians:
        idx = torch.from_numpy(np.sort(rng.choice(n, config.render_gaussians, replace=False)))
        probe = g.subset(idx)
        # About half the subset faces the camera, spread over the mask's area.
        spacing_px = math.sqrt(2.0 * float(problem.render_mask.sum()) / config.render_gaussians)
        box_side = problem.box_side * problem.render_cam.K[0, 0] / problem.cam.K[0, 0]
        fill = 0.5 * spacing_px * problem.extent / box_side  # canonical units at the expected scale
        probe = probe.replace(log_scales=0.5 * torch.log(probe.scales ** 2 + fill ** 2))
    probe = probe.replace(sh=probe.sh[:, :1], normals=None, extra={})  # only the silhouette matters
    return probe if device is None else probe.to(device)


def _contour_refine(problem: _Chamfer, probe, R_cam, x, rounds: int, iterations: int):
    """Silhouette ICP: render, lift the silhouette's edge pixels onto the surface by the
    rendered depth, fit those points to the mask's edge (two-sided, `_Chamfer.on_contour`),
    repeat. The rendered edge is the true one (splat overlap included), which the chamfer's
    discs only model. -> (iou, R_cam, x), the best IoU seen."""
    import cv2

    from ...core.transforms import apply_similarity

    K, best = problem.render_cam.K, None
    for round_ in range(rounds + 1):
        alpha, depth = _alpha_depth(apply_similarity(probe, problem.similarity(R_cam, x)), problem.render_cam)
        sil = alpha > 0.5
        value = problem.iou(sil)
        if best is None or value > best[0]:
            best = (value, R_cam, x)
        edge = sil & ~cv2.erode(sil.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        ys, xs = np.nonzero(edge & (depth > 0))
        if round_ == rounds or len(ys) < MIN_SEARCH_POINTS:
            break
        z = depth[ys, xs].astype(np.float64)
        points = np.stack([(xs + 0.5 - K[0, 2]) / K[0, 0] * z, (ys + 0.5 - K[1, 2]) / K[1, 1] * z, z], 1)
        offsets = points - problem.centre_cam(x[4], x[5])
        canonical = offsets @ (R_cam @ problem.R_wc) / math.exp(x[3])
        _, R_cam, x = problem.on_contour(canonical).levenberg_marquardt(R_cam, x, iterations)
    return best
