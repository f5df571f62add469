"""Blender camera + scene settings <-> `Camera` (OpenCV), without bpy.

Follows Blender's own rules (blenkernel/intern/camera.cc,
`BKE_camera_params_compute_viewplane` and `BKE_camera_view_frame_ex`):
- the render size is resolution * percentage / 100 (integer division);
- sensor fit AUTO fits the sensor *width* to the larger of resolution_x *
  pixel_aspect_x and resolution_y * pixel_aspect_y; HORIZONTAL fits sensor_width
  to the image width; VERTICAL fits sensor_height to the image height;
- shift_x / shift_y are fractions of the fitted (larger, for AUTO) dimension;
- non-square pixels: one pixel is pixel_aspect_y / pixel_aspect_x times as tall
  in the view plane as it is wide.
A Blender camera looks down its local -Z with +Y up; OpenCV looks down +Z with
+Y down, so the two camera frames differ by diag(1, -1, -1). Object scale is
ignored, as `bpy_extras.object_utils.world_to_camera_view` ignores it
(it uses `matrix_world.normalized()`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .camera import Camera
from .errors import CameraError

SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])  # camera frame flip, its own inverse


@dataclass(frozen=True)
class BlenderCameraSettings:
    """The plain numbers a Blender camera object and its scene's render settings give."""
    lens: float = 50.0                 # mm
    sensor_width: float = 36.0         # mm
    sensor_height: float = 24.0        # mm
    sensor_fit: str = "AUTO"           # 'AUTO' | 'HORIZONTAL' | 'VERTICAL'
    shift_x: float = 0.0               # fraction of the fitted dimension
    shift_y: float = 0.0
    resolution_x: int = 1920
    resolution_y: int = 1080
    resolution_percentage: int = 100
    pixel_aspect_x: float = 1.0
    pixel_aspect_y: float = 1.0
    matrix_world: np.ndarray = field(default_factory=lambda: np.eye(4))  # [4, 4] camera object to world

    def __post_init__(self) -> None:
        if self.sensor_fit not in SENSOR_FITS:
            raise CameraError(f"sensor fit must be one of {', '.join(SENSOR_FITS)}, not {self.sensor_fit!r}")
        for name in ("lens", "sensor_width", "sensor_height", "pixel_aspect_x", "pixel_aspect_y"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise CameraError(f"camera {name} must be a positive number, got {value}")
        for name in ("resolution_x", "resolution_y", "resolution_percentage"):
            if int(getattr(self, name)) <= 0:
                raise CameraError(f"render {name} must be a positive integer, got {getattr(self, name)}")
        if not (np.isfinite(self.shift_x) and np.isfinite(self.shift_y)):
            raise CameraError("camera shift must be finite")
        m = np.asarray(self.matrix_world, dtype=np.float64)
        if m.shape != (4, 4) or not np.isfinite(m).all():
            raise CameraError(f"camera matrix_world must be a finite 4x4 matrix, got shape {m.shape}")
        object.__setattr__(self, "matrix_world", m)

    @property
    def render_size(self) -> tuple[int, int]:
        """Pixels Blender renders: resolution * percentage / 100, integer division as in BKE_render_resolution."""
        p = int(self.resolution_percentage)
        return max(1, int(self.resolution_x) * p // 100), max(1, int(self.resolution_y) * p // 100)

    def __eq__(self, other: object) -> bool:  # arrays need an explicit comparison
        if not isinstance(other, BlenderCameraSettings):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f), getattr(other, f)) if f == "matrix_world" else getattr(self, f) == getattr(other, f)
            for f in self.__dataclass_fields__
        )


def _fit(sensor_fit: str, size_x: float, size_y: float) -> str:
    """BKE_camera_sensor_fit: AUTO becomes HORIZONTAL when size_x >= size_y."""
    if sensor_fit == "AUTO":
        return "HORIZONTAL" if size_x >= size_y else "VERTICAL"
    return sensor_fit


def _view_factor(s: BlenderCameraSettings, width: int, height: int) -> tuple[float, float, float]:
    """-> (sensor size fitted, pixels it spans, ycor) as in BKE_camera_params_compute_viewplane."""
    ycor = s.pixel_aspect_y / s.pixel_aspect_x
    sensor = s.sensor_height if s.sensor_fit == "VERTICAL" else s.sensor_width  # AUTO uses the width
    fit = _fit(s.sensor_fit, s.pixel_aspect_x * width, s.pixel_aspect_y * height)
    viewfac = float(width) if fit == "HORIZONTAL" else ycor * height
    return sensor, viewfac, ycor


def _rigid_camera_to_world(matrix_world: np.ndarray) -> np.ndarray:
    """matrix_world with unit-length axes (Matrix.normalized()); must then be a rotation."""
    m = np.array(matrix_world, dtype=np.float64)
    lengths = np.linalg.norm(m[:3, :3], axis=0)
    if np.any(lengths < 1e-12):
        raise CameraError("camera object has a zero scale")
    m[:3, :3] /= lengths
    R = m[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
        raise CameraError("camera object is sheared or mirrored; cannot make a pinhole camera of it")
    if not np.allclose(m[3], [0, 0, 0, 1]):
        raise CameraError("camera matrix_world is not an affine transform")
    return m


def camera_from_blender(s: BlenderCameraSettings) -> Camera:
    """Blender camera + scene settings -> `Camera` at the render size (percentage applied)."""
    width, height = s.render_size
    sensor, viewfac, ycor = _view_factor(s, width, height)
    fx = s.lens * viewfac / sensor
    fy = fx / ycor
    cx = 0.5 * width - s.shift_x * viewfac
    cy = 0.5 * height + s.shift_y * viewfac / ycor
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    cam_to_world = _rigid_camera_to_world(s.matrix_world)
    world_to_camera = BLENDER_TO_OPENCV @ _invert_rigid(cam_to_world)
    return Camera(width, height, K, world_to_camera)


def blender_from_camera(cam: Camera, like: BlenderCameraSettings | None = None) -> BlenderCameraSettings:
    """`Camera` -> Blender settings that reproduce it exactly.

    Choices a `Camera` does not determine (sensor size and fit, resolution
    percentage, pixel aspect when it agrees with K) are taken from `like`
    (Blender's defaults when None), so Blender -> ours -> Blender with `like` set
    to the original settings gives them back.
    """
    like = like or BlenderCameraSettings()
    K = cam.K
    if abs(K[0, 1]) > 1e-9 * K[0, 0]:
        raise CameraError("Blender cameras have no skew; this camera's K[0, 1] is not zero")
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    ycor = fx / fy
    aspect_x, aspect_y = like.pixel_aspect_x, like.pixel_aspect_y
    if not np.isclose(aspect_y / aspect_x, ycor, rtol=1e-9, atol=0):
        aspect_x, aspect_y = (1.0, ycor) if ycor >= 1 else (1.0 / ycor, 1.0)  # Blender wants both >= 1
    percentage = int(like.resolution_percentage)
    if like.render_size == (cam.width, cam.height):
        res_x, res_y = like.resolution_x, like.resolution_y  # several resolutions can give one render size
    else:
        res_x, res_y = -(-cam.width * 100 // percentage), -(-cam.height * 100 // percentage)
        if (res_x * percentage // 100, res_y * percentage // 100) != (cam.width, cam.height):
            percentage, res_x, res_y = 100, cam.width, cam.height
    s = replace(like, pixel_aspect_x=aspect_x, pixel_aspect_y=aspect_y, resolution_x=res_x, resolution_y=res_y,
                resolution_percentage=percentage, shift_x=0.0, shift_y=0.0)
    sensor, viewfac, ycor = _view_factor(s, cam.width, cam.height)
    cam_to_world = _invert_rigid(BLENDER_TO_OPENCV @ cam.world_to_camera)
    return replace(
        s,
        lens=fx * sensor / viewfac,
        shift_x=(0.5 * cam.width - cx) / viewfac,
        shift_y=(cy - 0.5 * cam.height) * ycor / viewfac,
        matrix_world=_keep_scale(cam_to_world, like.matrix_world),
    )


def _invert_rigid(m: np.ndarray) -> np.ndarray:  # [4, 4] rotation + translation -> its inverse
    out = np.eye(4)
    out[:3, :3] = m[:3, :3].T
    out[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return out


def _keep_scale(cam_to_world: np.ndarray, like_matrix: np.ndarray) -> np.ndarray:
    """Re-apply the object scale of `like_matrix` (which projection ignores) when it had one."""
    scale = np.linalg.norm(np.asarray(like_matrix, dtype=np.float64)[:3, :3], axis=0)
    if not np.all(np.isfinite(scale)) or np.any(scale < 1e-12):
        return cam_to_world
    out = cam_to_world.copy()
    out[:3, :3] *= scale
    return out
