"""Region pixels of a 3D viewport ↔ image pixels of the photo seen through the camera.

Blender draws the camera frame as a quadrilateral in the region; its four corners
(from `camera.data.view_frame` projected with `view3d_utils`) fix a homography from
region coordinates (origin bottom-left, y up) to image pixels (origin top-left, y down,
pixel centres at +0.5, like `core.camera`). Pure maths: the modal operator only feeds it
mouse positions and frame corners.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ControlError

# Order in which the frame corners are passed: image top-left, top-right, bottom-right, bottom-left.
CORNER_ORDER = ("top_left", "top_right", "bottom_right", "bottom_left")


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """src, dst: [4, 2] -> H [3, 3] with dst ~ H @ [src, 1] (direct linear transform)."""
    rows = []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, singular, vt = np.linalg.svd(np.asarray(rows, dtype=np.float64))
    if singular[-2] < 1e-9 * singular[0]:
        raise ControlError("the camera frame is degenerate in this view (zoomed out to a point?)")
    H = vt[-1].reshape(3, 3)
    return H / H[2, 2]


@dataclass(frozen=True)
class FrameMapping:
    """Maps region pixels to image pixels for one view of the camera frame."""

    region_to_image: np.ndarray  # [3, 3] homography
    width: int                   # image size in pixels
    height: int

    @classmethod
    def from_corners(cls, corners_region: np.ndarray, width: int, height: int) -> "FrameMapping":
        """corners_region: [4, 2] region (x, y) of the frame corners in CORNER_ORDER."""
        corners = np.asarray(corners_region, dtype=np.float64)
        if corners.shape != (4, 2) or not np.isfinite(corners).all():
            raise ControlError("the camera frame is not visible in this view")
        image_corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
        return cls(_homography(corners, image_corners), int(width), int(height))

    def to_image(self, region_xy: np.ndarray) -> np.ndarray:
        """region_xy: [N, 2] (or [2]) region pixels -> same shape in image pixels (may lie outside)."""
        pts = np.asarray(region_xy, dtype=np.float64)
        flat = pts.reshape(-1, 2)
        h = np.concatenate([flat, np.ones((len(flat), 1))], 1) @ self.region_to_image.T
        return (h[:, :2] / h[:, 2:3]).reshape(pts.shape)

    def to_region(self, image_uv: np.ndarray) -> np.ndarray:
        """The inverse of `to_image`."""
        pts = np.asarray(image_uv, dtype=np.float64)
        flat = pts.reshape(-1, 2)
        h = np.concatenate([flat, np.ones((len(flat), 1))], 1) @ np.linalg.inv(self.region_to_image).T
        return (h[:, :2] / h[:, 2:3]).reshape(pts.shape)

    def contains(self, image_uv: np.ndarray) -> bool:
        u, v = np.asarray(image_uv, dtype=np.float64)
        return bool(0 <= u < self.width and 0 <= v < self.height)

    def point(self, region_xy) -> tuple[float, float]:
        """A click: region pixel -> image pixel; a click outside the photo is a ControlError."""
        uv = self.to_image(np.asarray(region_xy, dtype=np.float64))
        if not self.contains(uv):
            raise ControlError(f"the click at image pixel ({uv[0]:.0f}, {uv[1]:.0f}) is outside the "
                               f"{self.width}x{self.height} photo")
        return float(uv[0]), float(uv[1])

    def box(self, region_a, region_b) -> tuple[int, int, int, int]:
        """A drag between two region pixels -> (x0, y0, x1, y1) image box, clipped to the photo.

        Raises ControlError when the box misses the photo or is under 2 pixels wide or tall."""
        uv = self.to_image(np.asarray([region_a, region_b], dtype=np.float64))
        x0, x1 = sorted(np.clip(uv[:, 0], 0, self.width))
        y0, y1 = sorted(np.clip(uv[:, 1], 0, self.height))
        eps = 1e-6  # homography round-off must not grow the box by a pixel
        box = (int(np.floor(x0 + eps)), int(np.floor(y0 + eps)), int(np.ceil(x1 - eps)), int(np.ceil(y1 - eps)))
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            raise ControlError("the box is too small or outside the photo: drag across the object")
        return box


def is_drag(press_xy, release_xy, threshold_px: float = 4.0) -> bool:
    """A press and release further apart than `threshold_px` region pixels is a box drag."""
    d = np.asarray(release_xy, dtype=np.float64) - np.asarray(press_xy, dtype=np.float64)
    return bool(np.hypot(*d) > threshold_px)
