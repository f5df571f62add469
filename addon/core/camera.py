"""Pinhole camera record in OpenCV axes (x right, y down, z forward).

`world_to_camera` is a 4x4 rigid transform: X_cam = R @ X_world + t. Pixel
(u, v) = (fx * x/z + cx, fy * y/z + cy), with pixel centres at +0.5, so the
top-left pixel's centre is (0.5, 0.5). JSON form:
{"width": W, "height": H, "K": 3x3, "world_to_camera": 4x4}.

Conversions to and from Blender camera settings live in `blender_camera.py`
(still bpy-free: it takes plain numbers).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CameraError

# Used when a photo has no EXIF focal length. Phone main cameras are about 69°
# (26 mm equivalent), normal lenses about 40°; 60° sits between and keeps lifting
# depth errors moderate for either. Documented in README.
DEFAULT_HORIZONTAL_FOV_DEG = 60.0


# Pose of a camera made from a photo: at the world origin, looking along Blender's +Y
# with Blender's +Z up, so lifted objects stand upright in the Z-up world.
# Rows map world axes to OpenCV camera axes: x_cam = X, y_cam = -Z, z_cam = Y.
PHOTO_WORLD_TO_CAMERA = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    K: np.ndarray               # [3, 3] float64 intrinsics
    world_to_camera: np.ndarray  # [4, 4] float64, OpenCV axes

    def __post_init__(self) -> None:
        if not (isinstance(self.width, (int, np.integer)) and isinstance(self.height, (int, np.integer))):
            raise CameraError("camera width and height must be integers")
        if self.width <= 0 or self.height <= 0:
            raise CameraError(f"camera size must be positive, got {self.width}x{self.height}")
        K = np.asarray(self.K, dtype=np.float64)
        W = np.asarray(self.world_to_camera, dtype=np.float64)
        if K.shape != (3, 3) or W.shape != (4, 4):
            raise CameraError(f"camera K must be 3x3 and world_to_camera 4x4, got {K.shape} and {W.shape}")
        if not (np.isfinite(K).all() and np.isfinite(W).all()):
            raise CameraError("camera K and world_to_camera must be finite")
        if K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1 or K[2, 0] != 0 or K[2, 1] != 0:
            raise CameraError("camera K must have positive focal lengths and a last row of [0, 0, 1]")
        R = W[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0 or not np.allclose(W[3], [0, 0, 0, 1]):
            raise CameraError("camera world_to_camera must be a rigid transform (rotation + translation)")
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "world_to_camera", W)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    # -- construction -------------------------------------------------------
    @classmethod
    def from_fov(cls, width: int, height: int, horizontal_fov_deg: float = DEFAULT_HORIZONTAL_FOV_DEG,
                 world_to_camera: np.ndarray | None = None) -> "Camera":
        """Square pixels, principal point at the image centre, photo pose unless given."""
        if not 0 < horizontal_fov_deg < 180:
            raise CameraError(f"field of view must be in (0, 180) degrees, got {horizontal_fov_deg}")
        f = 0.5 * width / math.tan(math.radians(horizontal_fov_deg) / 2)
        K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float64)
        return cls(width, height, K, PHOTO_WORLD_TO_CAMERA if world_to_camera is None else world_to_camera)

    # -- derived ------------------------------------------------------------
    @property
    def camera_to_world(self) -> np.ndarray:  # [4, 4]
        return np.linalg.inv(self.world_to_camera)

    @property
    def center(self) -> np.ndarray:  # [3] camera position in world
        return self.camera_to_world[:3, 3]

    def scaled(self, factor: float) -> "Camera":
        """The same view at `factor` times the resolution (preview rendering)."""
        if factor <= 0:
            raise CameraError(f"scale factor must be positive, got {factor}")
        w = max(1, int(round(self.width * factor)))
        h = max(1, int(round(self.height * factor)))
        S = np.diag([w / self.width, h / self.height, 1.0])
        return Camera(w, h, S @ self.K, self.world_to_camera)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """points: [N, 3] world -> (uv [N, 2] pixels, depth [N] camera z)."""
        points = np.asarray(points, dtype=np.float64)
        cam = points @ self.world_to_camera[:3, :3].T + self.world_to_camera[:3, 3]
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = (cam @ self.K.T)[:, :2] / z[:, None]
        return uv, z

    def unproject(self, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """uv: [N, 2] pixels, depth: [N] camera z -> [N, 3] world points."""
        uv = np.asarray(uv, dtype=np.float64)
        ones = np.ones((uv.shape[0], 1))
        rays = np.linalg.solve(self.K, np.concatenate([uv, ones], 1).T).T  # [N, 3] with z = 1
        cam = rays * np.asarray(depth, dtype=np.float64)[:, None]
        c2w = self.camera_to_world
        return cam @ c2w[:3, :3].T + c2w[:3, 3]

    # -- JSON ---------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"width": self.width, "height": self.height, "K": self.K.tolist(),
                "world_to_camera": self.world_to_camera.tolist()}

    @classmethod
    def from_dict(cls, data: object) -> "Camera":
        if not isinstance(data, dict):
            raise CameraError("camera JSON must be an object with width, height, K and world_to_camera")
        missing = [k for k in ("width", "height", "K", "world_to_camera") if k not in data]
        if missing:
            raise CameraError(f"camera JSON lacks {', '.join(missing)}")
        try:
            K = np.array(data["K"], dtype=np.float64)
            W = np.array(data["world_to_camera"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CameraError(f"camera JSON K / world_to_camera are not numeric matrices: {exc}") from None
        w, h = data["width"], data["height"]
        if isinstance(w, bool) or isinstance(h, bool) or not isinstance(w, int) or not isinstance(h, int):
            raise CameraError("camera JSON width and height must be integers")
        return cls(w, h, K, W)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Camera":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CameraError(f"camera file is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Camera":
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise CameraError(f"cannot read camera file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CameraError(f"camera file {path} is not text JSON") from None
        return cls.from_json(text)
