"""The bpy-free half of the GPU splat draw (`blender/splat_draw.py`): per-splat texture
planes, the back-to-front depth order, when to re-sort, and the view in shader terms.

Texture layout: every per-splat quantity is a *plane*, one RGBA32F texel per splat, laid
out in rows of `TEX_WIDTH` texels (splat i at texel (i % TEX_WIDTH, i // TEX_WIDTH)).
Planes are named in `PLANES`; the shader has one sampler per plane. Extra per-splat channels
(the photo reprojection's features, `feature_planes`) are drawn as the 'color' plane of
further passes through the same shader, three channels a pass.

- 'center':   x, y, z (object-local), opacity
- 'rotation': unit quaternion w, x, y, z (object-local)
- 'scale':    standard deviations sx, sy, sz, 0
- 'color':    r, g, b = max(0, 0.5 + SH(view direction)), 0

The sort key is the camera z of each mean, which depends only on the viewing direction
(a move along or across the view shifts every z by the same amount). So the order is
re-made when the object deforms or the view *turns* (`ViewState.needs_sort`), not when
it only moves; view-dependent colours (SH degree > 0) are re-made when it moves too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, RenderBackendError

TEX_WIDTH = 4096                 # texels per row of every plane texture
MAX_SPLATS = 1 << 24             # splat indices travel as float32 in the order texture: exact below 2^24
PLANES = ("center", "rotation", "scale", "color")
GEOMETRY_PLANES = ("center", "rotation", "scale")  # what a deformation changes (LBS moves and turns)
RESORT_ANGLE_DEG = 1.0           # re-sort when the view direction turns by more than this
FEATURES_PER_PLANE = 3           # rgb of a plane; its alpha channel is the blend weight
RECOLOR_MOVE = 1e-3              # re-evaluate SH colours when the eye moves by this fraction of its distance


def plane_rows(count: int) -> int:
    """Texture rows that hold `count` splats (at least one, so an empty set still makes a texture)."""
    if count > MAX_SPLATS:
        raise RenderBackendError(f"the GPU splat draw handles at most {MAX_SPLATS} Gaussians, got {count}")
    return max(1, -(-count // TEX_WIDTH))


def empty_plane(count: int) -> np.ndarray:  # -> [rows * TEX_WIDTH, 4] float32 zeros
    return np.zeros((plane_rows(count) * TEX_WIDTH, 4), dtype=np.float32)


def _plane(*columns, count: int) -> np.ndarray:  # columns: [N] or [N, k] -> [rows * TEX_WIDTH, 4]
    out = empty_plane(count)
    j = 0
    for col in columns:
        col = np.asarray(col, dtype=np.float32)
        col = col[:, None] if col.ndim == 1 else col
        out[:count, j:j + col.shape[1]] = col
        j += col.shape[1]
    return out


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def pack_geometry(gaussians) -> dict[str, np.ndarray]:
    """Gaussians (object-local) -> the 'center', 'rotation' and 'scale' planes."""
    n = len(gaussians)
    quats = _numpy(gaussians.quats).astype(np.float32)
    quats = quats / np.maximum(np.linalg.norm(quats, axis=1, keepdims=True), 1e-12)  # as quaternion.to_matrix
    return {
        "center": _plane(_numpy(gaussians.means), _numpy(gaussians.opacities), count=n),
        "rotation": _plane(quats, count=n),
        "scale": _plane(_numpy(gaussians.scales), count=n),
    }


def pack_color(gaussians, eye_local) -> np.ndarray:  # eye_local: [3] camera centre in the object's frame
    """The 'color' plane: SH evaluated once per splat for one eye position (same rule as the
    renderers: `sh.sh_to_rgb`). Degree 0 does not depend on the eye."""
    import torch

    from .render.sh import sh_to_rgb

    eye = torch.as_tensor(np.asarray(eye_local, dtype=np.float32))
    rgb = sh_to_rgb(gaussians.sh.float(), gaussians.means.float(), eye.to(gaussians.device))
    return _plane(_numpy(rgb), count=len(gaussians))


def feature_planes(features) -> list[np.ndarray]:  # [N, F] -> ceil(F / 3) planes
    """Per-splat extra channels (the photo reprojection's `photo_features`) as 'color'-like
    planes of three channels each: the shader composites a plane's rgb like colours, so each
    plane is one more pass through the same shader (`FEATURES_PER_PLANE` channels a pass)."""
    f = _numpy(features).astype(np.float32, copy=False)
    return [_plane(f[:, j:j + FEATURES_PER_PLANE], count=len(f)) for j in range(0, f.shape[1], FEATURES_PER_PLANE)]


def camera_depths(
    means: np.ndarray,       # [N, 3] object-local
    view_model: np.ndarray,  # [4, 4] object-local -> OpenCV camera
) -> np.ndarray:             # [N] float32 camera z
    r = np.asarray(view_model, dtype=np.float64)[2].astype(np.float32)
    # Three multiply-adds instead of a matrix product: BLAS threads stall on shared cores.
    depths = means[:, 0] * r[0]
    depths += means[:, 1] * r[1]
    depths += means[:, 2] * r[2]
    depths += r[3]
    return depths


def back_to_front(depths: np.ndarray) -> np.ndarray:  # [N] float -> [N] int64
    """Far-to-near order with 16-bit keys: the depth range is cut into 65536 bins and
    numpy's stable sort of uint16 is a radix sort (linear time). Equal bins keep the
    reversed index order, so this is the exact reverse of a stable near-to-far sort
    whenever no two depths share a bin."""
    d = np.asarray(depths, dtype=np.float32)
    if d.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = float(d.min()), float(d.max())
    scale = 65535.0 / (hi - lo) if hi > lo else 0.0
    keys = ((d - np.float32(lo)) * np.float32(scale)).astype(np.uint16)
    return np.argsort(keys, kind="stable")[::-1]


def back_to_front_reference(depths: np.ndarray) -> np.ndarray:  # [N] -> [N]; the slow, exact twin
    """Reverse of a stable ascending float sort (the torch renderer's front-to-back order)."""
    return np.argsort(np.asarray(depths, dtype=np.float64), kind="stable")[::-1]


def order_plane(order: np.ndarray) -> np.ndarray:  # [N] int -> [rows * TEX_WIDTH] float32
    """The draw order as one float per texel (R32F); indices are exact below MAX_SPLATS."""
    out = np.zeros(plane_rows(len(order)) * TEX_WIDTH, dtype=np.float32)
    out[:len(order)] = order
    return out


@dataclass(frozen=True)
class SplatView:
    """One view in the terms the shader uses: OpenCV camera axes, pixels with centres at +0.5.

    `view_model` takes object-local points to camera coordinates; `depth_ab` maps camera z to
    normalised device depth: a + b / z in perspective, a z + b in orthographic views."""
    view_model: np.ndarray     # [4, 4] object-local -> OpenCV camera
    intrinsics: tuple[float, float, float, float]  # fx, fy, cx, cy in pixels (pixels per unit when ortho)
    width: int
    height: int
    ortho: bool = False
    depth_ab: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        m = np.asarray(self.view_model, dtype=np.float64)
        if m.shape != (4, 4) or not np.isfinite(m).all():
            raise ConfigError("view_model must be a finite 4x4 matrix")
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"view size must be positive, got {self.width}x{self.height}")
        fx, fy, _, _ = self.intrinsics
        if not (fx > 0 and fy > 0):
            raise ConfigError(f"focal lengths must be positive, got {fx}, {fy}")
        object.__setattr__(self, "view_model", m)

    @classmethod
    def from_camera(cls, camera, model: np.ndarray | None = None) -> "SplatView":
        """A `core.camera.Camera` (and the object's world matrix, identity by default)."""
        model = np.eye(4) if model is None else np.asarray(model, dtype=np.float64)
        K = camera.K
        return cls(camera.world_to_camera @ model, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]),
                   int(camera.width), int(camera.height))

    @classmethod
    def from_blender(cls, view_matrix, window_matrix, width: int, height: int, model=None) -> "SplatView":
        """A Blender 3D view (`region_data.view_matrix`, `.window_matrix`: OpenGL axes, looking
        down -z, NDC y up) of a `width` x `height` region, for an object with world matrix `model`."""
        V = np.asarray(view_matrix, dtype=np.float64)
        P = np.asarray(window_matrix, dtype=np.float64)
        model = np.eye(4) if model is None else np.asarray(model, dtype=np.float64)
        gl_to_cv = np.diag([1.0, -1.0, -1.0, 1.0])
        ortho = abs(P[3, 3]) > 0.5  # perspective windows have P[3] = (0, 0, -1, 0)
        fx, fy = P[0, 0] * width / 2.0, P[1, 1] * height / 2.0
        if ortho:  # ndc_x = P00 x + P03, ndc_y = P11 y_gl + P13, ndc_z = -P22 z_cv + P23
            cx, cy = (1.0 + P[0, 3]) * width / 2.0, (1.0 - P[1, 3]) * height / 2.0
        else:      # ndc_x = P00 x / z - P02, ndc_y = -P11 y_cv / z - P12, ndc_z = -P22 + P23 / z
            cx, cy = (1.0 - P[0, 2]) * width / 2.0, (1.0 + P[1, 2]) * height / 2.0
        return cls(gl_to_cv @ V @ model, (fx, fy, cx, cy), int(width), int(height), ortho,
                   (-P[2, 2], P[2, 3]))

    @property
    def forward(self) -> np.ndarray:  # [3] unit viewing direction in the object's frame
        row = self.view_model[2, :3]
        return row / np.linalg.norm(row)

    @property
    def eye(self) -> np.ndarray:  # [3] camera centre in the object's frame (ortho: far back along -forward)
        if self.ortho:
            return -self.forward * 1e6
        return np.linalg.solve(self.view_model[:3, :3], -self.view_model[:3, 3])

    def pixel(self, points: np.ndarray) -> np.ndarray:  # [N, 3] object-local -> [N, 2] pixels (reference)
        cam = points @ self.view_model[:3, :3].T + self.view_model[:3, 3]
        fx, fy, cx, cy = self.intrinsics
        z = np.ones(len(cam)) if self.ortho else cam[:, 2]
        return np.stack((fx * cam[:, 0] / z + cx, fy * cam[:, 1] / z + cy), axis=1)


@dataclass(frozen=True)
class PhotoPlanes:
    """The photo reprojection's per-splat planes for one camera pose (`photo_planes`): the
    colours scaled by 1 - u, and the features (u, u offset, u M: `reprojection.photo_features`)
    with the camera z as an eighth channel (the resolve's expected depth), three a plane.
    The features map the camera's pixels into the photo; a view from the same pose at another
    zoom or pan (Blender's view through the scene camera) reuses them through `pixel_map`."""
    view_model: np.ndarray                         # [4, 4] object-local -> OpenCV camera they were made for
    intrinsics: tuple[float, float, float, float]  # fx, fy, cx, cy of that camera's pixels
    color: np.ndarray                              # 'color' plane
    features: list[np.ndarray]                     # feature planes a, b, c

    def pixel_map(self, view: SplatView, tolerance: float = 1e-5) -> tuple[float, float, float, float] | None:
        """(sx, sy, ox, oy) with camera pixel = view pixel * s + o, for a perspective `view` from
        the pose these planes were made for; None for any other view."""
        scale = max(1.0, float(np.abs(self.view_model[:3, 3]).max()))
        if view.ortho or not np.allclose(view.view_model, self.view_model, rtol=0.0, atol=tolerance * scale):
            return None
        fx, fy, cx, cy = self.intrinsics
        vx, vy, vcx, vcy = view.intrinsics
        sx, sy = fx / vx, fy / vy
        return sx, sy, cx - vcx * sx, cy - vcy * sy


def photo_planes(gaussians, model: np.ndarray, camera, photo) -> PhotoPlanes:
    """`PhotoPlanes` of object-local `gaussians` (world matrix `model` [4, 4], a similarity)
    through `camera` (core.camera.Camera, world frame) for `photo` (reprojection.PhotoSource).
    The features are computed in the world frame, as the renderers do (a scaled root makes
    the object-local camera non-rigid). Costs a `photo_features` call (torch, one CPU thread:
    ~40 ms at 100k): the live loop runs it on its worker, the draw only when it must."""
    from .device import torch_cpu_threads
    from .gaussians import Gaussians
    from .render.reprojection import photo_features
    from .transforms import apply_similarity, similarity_from_matrix

    model = np.asarray(model, dtype=np.float64)
    g = gaussians
    if not np.allclose(model, np.eye(4)):  # the features need the geometry only: SH degree 0 turns for free
        geometry = Gaussians(g.means, g.quats, g.log_scales, g.opacity_logits, g.sh[:, :1])
        g = apply_similarity(geometry, similarity_from_matrix(model))
    with torch_cpu_threads(1 if g.device.type == "cpu" else 0):  # as `render`: small ops lose to thread hand-offs
        features = _numpy(photo_features(g, camera, photo)).astype(np.float32, copy=False)
    photo.sampled_image()  # made here, on the live loop's worker, not in the draw that uploads it
    view = SplatView.from_camera(camera, model)
    color = pack_color(gaussians, view.eye)
    color[:len(features), :3] *= 1.0 - features[:, :1]
    depths = camera_depths(_numpy(gaussians.means).astype(np.float32, copy=False), view.view_model)[:, None]
    return PhotoPlanes(view.view_model, view.intrinsics, color, feature_planes(np.concatenate((features, depths), 1)))


@dataclass
class ViewState:
    """What one view's order and colours were made for; says when to re-make them."""
    generation: int = -1               # deformation generation the order was sorted for
    forward: np.ndarray | None = None  # [3] view direction of the last sort
    eye: np.ndarray | None = None      # [3] eye of the last colour evaluation

    def needs_sort(self, view: SplatView, generation: int, angle_deg: float = RESORT_ANGLE_DEG) -> bool:
        if generation != self.generation or self.forward is None:
            return True
        cos = float(np.clip(np.dot(self.forward, view.forward), -1.0, 1.0))
        return cos < math.cos(math.radians(angle_deg))

    def needs_color(self, view: SplatView, generation: int, distance: float) -> bool:
        """distance: of the eye from the object, sets the scale of 'moved'."""
        if self.needs_sort(view, generation) or self.eye is None:
            return True
        return float(np.linalg.norm(view.eye - self.eye)) > RECOLOR_MOVE * max(distance, 1e-9)

    def sorted_for(self, view: SplatView, generation: int) -> None:
        self.generation, self.forward = generation, view.forward.copy()

    def colored_for(self, view: SplatView) -> None:
        self.eye = view.eye.copy()
