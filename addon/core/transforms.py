"""Rigid and similarity edits of Gaussians, expressed in a camera's frame.

A `Similarity` maps world points as x' = scale * R @ x + t. Applied to Gaussians it
moves the means, turns the wxyz quaternions by R and adds log(scale) to the log
scales, so every Gaussian's covariance becomes scale^2 * R @ Sigma @ R^T.

`camera_edit` builds the similarity a user asks for when looking through a camera:
- rotations are about the object's centre, with the camera's axes
  (yaw about the camera's up axis, pitch about its right axis, roll about its
  viewing axis; each by the right-hand rule, in degrees, applied yaw, then pitch, then roll).
  Seen through the camera: positive yaw turns the side facing the camera to the right,
  positive pitch tilts the top towards the camera, positive roll turns the object clockwise
  on screen;
- translations are in the camera's axes (x right, y down, z forward, OpenCV) in units of
  the object's size, so (1, 0, 0) moves the object right by its own width;
- scale is uniform about the object's centre.

The object's centre and size come from `object_frame`: the centre of the bounding box of
the visible Gaussians' means in the camera's axes, and its size the larger of that box's
width and height as seen by the camera (depth is left out: a lifted object's depth extent
is the least certain part of it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import quaternion
from .camera import Camera
from .errors import ConfigError
from .gaussians import Gaussians

# Gaussians fainter than this do not count towards the object's box (floaters, skirts).
FRAME_MIN_OPACITY = 0.05


@dataclass(frozen=True)
class Similarity:
    """x' = scale * rotation @ x + translation (world units)."""

    rotation: np.ndarray      # [3, 3] float64 proper rotation
    translation: np.ndarray   # [3] float64
    scale: float = 1.0

    def __post_init__(self) -> None:
        R = np.asarray(self.rotation, dtype=np.float64)
        t = np.asarray(self.translation, dtype=np.float64).reshape(-1)
        if R.shape != (3, 3) or t.shape != (3,):
            raise ConfigError(f"a similarity needs a 3x3 rotation and a 3-vector, got {R.shape} and {t.shape}")
        if not (np.isfinite(R).all() and np.isfinite(t).all() and math.isfinite(self.scale)):
            raise ConfigError("a similarity's rotation, translation and scale must be finite")
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
            raise ConfigError("a similarity's rotation must be a proper rotation matrix")
        if self.scale <= 0:
            raise ConfigError(f"scale must be positive, got {self.scale}")
        object.__setattr__(self, "rotation", R)
        object.__setattr__(self, "translation", t)
        object.__setattr__(self, "scale", float(self.scale))

    @classmethod
    def identity(cls) -> "Similarity":
        return cls(np.eye(3), np.zeros(3), 1.0)

    @classmethod
    def about(cls, pivot: np.ndarray, rotation: np.ndarray | None = None, scale: float = 1.0,
              translation: np.ndarray | None = None) -> "Similarity":
        """Rotate and scale about `pivot` [3], then translate: x' = s R (x - p) + p + t."""
        R = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
        p = np.asarray(pivot, dtype=np.float64)
        t = np.zeros(3) if translation is None else np.asarray(translation, dtype=np.float64)
        return cls(R, p - scale * R @ p + t, scale)

    @property
    def matrix(self) -> np.ndarray:  # [4, 4] homogeneous form
        M = np.eye(4)
        M[:3, :3] = self.scale * self.rotation
        M[:3, 3] = self.translation
        return M

    def compose(self, first: "Similarity") -> "Similarity":
        """The similarity that applies `first`, then `self`."""
        return Similarity(self.rotation @ first.rotation,
                          self.scale * self.rotation @ first.translation + self.translation,
                          self.scale * first.scale)

    def inverse(self) -> "Similarity":
        Rt = self.rotation.T
        return Similarity(Rt, -(Rt @ self.translation) / self.scale, 1.0 / self.scale)

    def apply_points(self, points: np.ndarray) -> np.ndarray:  # [N, 3] -> [N, 3]
        return self.scale * np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def is_identity(self, atol: float = 1e-12) -> bool:
        return (np.allclose(self.rotation, np.eye(3), atol=atol) and np.allclose(self.translation, 0, atol=atol)
                and abs(self.scale - 1.0) <= atol)


def similarity_from_matrix(matrix: np.ndarray) -> Similarity:
    """A Blender object's world matrix [4, 4] -> Similarity (mean scale if not uniform)."""
    M = np.asarray(matrix, dtype=np.float64)
    scales = np.linalg.norm(M[:3, :3], axis=0)
    rotation = M[:3, :3] / scales
    u, _, vt = np.linalg.svd(rotation)  # re-orthonormalise float32 noise from Blender
    return Similarity(u @ vt, M[:3, 3], float(scales.mean()))


def sh_rotation_matrix(rotation: np.ndarray, degree: int) -> np.ndarray:
    """[K, K] (K = (degree+1)^2) mapping SH coefficients of a function f to those of
    f(R^T d), the function turned by `rotation` [3, 3]. Each band is closed under rotation,
    so fitting on enough directions is exact: Y(D) M = Y(R^T D) by least squares."""
    from .render.sh import sh_bases

    k = (degree + 1) ** 2
    # Fibonacci sphere directions: well spread, 4x more than coefficients.
    n = 4 * k
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (1 + 5 ** 0.5) * i
    dirs = np.stack([np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z], -1)
    A = sh_bases(degree, torch.as_tensor(dirs)).numpy()
    B = sh_bases(degree, torch.as_tensor(dirs @ np.asarray(rotation))).numpy()  # rows are R^T d
    return np.linalg.lstsq(A, B, rcond=None)[0]


def apply_similarity(g: Gaussians, sim: Similarity) -> Gaussians:
    """Move, turn and scale every Gaussian: means, wxyz quaternions, log scales, normals,
    and the view-dependent SH colour (turned with the object)."""
    dtype, device = g.means.dtype, g.means.device
    R = torch.as_tensor(sim.rotation, dtype=torch.float64, device=device)
    t = torch.as_tensor(sim.translation, dtype=torch.float64, device=device)
    means = (sim.scale * g.means.double() @ R.T + t).to(dtype)
    q_rot = quaternion.from_matrix(R).to(g.quats.dtype)  # [4]
    quats = quaternion.multiply(q_rot.expand_as(g.quats), g.quats)
    log_scales = g.log_scales + math.log(sim.scale)
    normals = None if g.normals is None else (g.normals.double() @ R.T).to(g.normals.dtype)
    sh = g.sh
    if g.sh_degree > 0:
        M = torch.as_tensor(sh_rotation_matrix(sim.rotation, g.sh_degree), dtype=torch.float64, device=device)
        sh = torch.einsum("kj,njc->nkc", M, g.sh.double()).to(g.sh.dtype)
    return g.replace(means=means, quats=quats, log_scales=log_scales, normals=normals, sh=sh)


def apply_affine(g: Gaussians, matrix: np.ndarray) -> Gaussians:
    """The Gaussians under a Blender object's world matrix [4, 4] (any invertible affine map,
    as Blender's viewport draws them): a similarity (uniform scale, no mirror) goes through
    `apply_similarity`, keeping each splat's axes; otherwise every covariance becomes exactly
    A Sigma A^T, its axes and scales re-found by an SVD of A R S, and the SH colour is turned
    by A's orthogonal polar factor (a non-uniform stretch has no exact SH counterpart)."""
    M = np.asarray(matrix, dtype=np.float64)
    A = M[:3, :3]
    if not np.isfinite(M).all() or abs(np.linalg.det(A)) < 1e-12:
        raise ConfigError("the object's world matrix is not invertible (a zero scale?)")
    u, sigma, vt = np.linalg.svd(A)
    if np.linalg.det(A) > 0 and sigma.max() - sigma.min() <= 1e-6 * sigma.max():
        return apply_similarity(g, Similarity(u @ vt, M[:3, 3], float(sigma.mean())))
    dtype, device = g.means.dtype, g.means.device
    A_t = torch.as_tensor(A, dtype=torch.float64, device=device)
    means = (g.means.double() @ A_t.T + torch.as_tensor(M[:3, 3], dtype=torch.float64, device=device)).to(dtype)
    axes = A_t @ quaternion.to_matrix(g.quats.double()) * g.log_scales.double().exp()[:, None, :]  # [N, 3, 3] = A R S
    U, S, _ = torch.linalg.svd(axes)
    U = U * torch.where(torch.linalg.det(U) < 0, -1.0, 1.0).to(U.dtype)[:, None, None]  # a rotation: flip all axes
    orthogonal = u @ vt
    normals = None if g.normals is None else torch.nn.functional.normalize(
        g.normals.double() @ torch.as_tensor(np.linalg.inv(A), dtype=torch.float64, device=device), dim=1).to(dtype)
    sh = g.sh
    if g.sh_degree > 0:
        T = torch.as_tensor(sh_rotation_matrix(orthogonal, g.sh_degree), dtype=torch.float64, device=device)
        sh = torch.einsum("kj,njc->nkc", T, g.sh.double()).to(g.sh.dtype)
    return g.replace(means=means, quats=quaternion.from_matrix(U).to(g.quats.dtype),
                     log_scales=S.clamp_min(1e-30).log().to(g.log_scales.dtype), normals=normals, sh=sh)


# -- camera-frame edits ------------------------------------------------------------

def camera_axes(cam: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The camera's (right, up, forward) unit axes in world coordinates."""
    R = cam.world_to_camera[:3, :3]  # rows: camera x (right), y (down), z (forward) in world
    return R[0].copy(), -R[1], R[2].copy()


def axis_angle_matrix(axis: np.ndarray, angle_rad: float) -> np.ndarray:  # [3] -> [3, 3] (Rodrigues)
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle_rad) * K + (1 - math.cos(angle_rad)) * K @ K


def camera_rotation(cam: Camera, yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """World rotation [3, 3]: yaw about the camera's up axis, then pitch about its right
    axis, then roll about its viewing axis."""
    right, up, forward = camera_axes(cam)
    return (axis_angle_matrix(forward, math.radians(roll_deg))
            @ axis_angle_matrix(right, math.radians(pitch_deg))
            @ axis_angle_matrix(up, math.radians(yaw_deg)))


@dataclass(frozen=True)
class ObjectFrame:
    center: np.ndarray  # [3] world
    size: float         # world units


def object_frame(g: Gaussians, cam: Camera) -> ObjectFrame:
    """Centre of the bounding box (in the camera's axes) of the Gaussians at least
    FRAME_MIN_OPACITY opaque, and the larger of its width and height."""
    if len(g) == 0:
        raise ConfigError("cannot edit an object with no Gaussians")
    keep = (g.opacities >= FRAME_MIN_OPACITY).cpu().numpy()
    means = g.means.detach().double().cpu().numpy()
    if keep.any():
        means = means[keep]
    return frame_of_points(means, cam)


def frame_of_points(points: np.ndarray, cam: Camera) -> ObjectFrame:
    """The same frame for any world points [N, 3] (a mesh's vertices, for ground truth)."""
    R, t = cam.world_to_camera[:3, :3], cam.world_to_camera[:3, 3]
    cam_pts = np.asarray(points, dtype=np.float64) @ R.T + t
    lo, hi = cam_pts.min(0), cam_pts.max(0)
    center = R.T @ ((lo + hi) / 2 - t)
    size = float(max(hi[0] - lo[0], hi[1] - lo[1]))
    if not size > 0:
        raise ConfigError("the object has no extent in the camera's view")
    return ObjectFrame(center, size)


def camera_edit(cam: Camera, frame: ObjectFrame, rotate_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
                translate: tuple[float, float, float] = (0.0, 0.0, 0.0), scale: float = 1.0) -> Similarity:
    """The similarity for (yaw, pitch, roll) degrees, a camera-frame translation in object
    sizes (x right, y down, z forward) and a uniform scale, about the object's centre."""
    if not scale > 0 or not math.isfinite(scale):
        raise ConfigError(f"scale must be a positive number, got {scale}")
    if not all(math.isfinite(v) for v in (*rotate_deg, *translate)):
        raise ConfigError("rotation angles and translation must be finite numbers")
    rotation = camera_rotation(cam, *rotate_deg)
    cam_R = cam.world_to_camera[:3, :3]
    offset_world = cam_R.T @ (np.asarray(translate, dtype=np.float64) * frame.size)
    return Similarity.about(frame.center, rotation, scale, offset_world)
