"""A `Camera` for a photo: intrinsics from EXIF when the photo has them.

Focal length, in order of preference:
1. EXIF FocalLengthIn35mmFilm: f_px = f35 / 36 mm * the image's long side (the
   35 mm frame is 36 mm on its long side);
2. EXIF FocalLength with FocalPlaneXResolution (sensor pixels per unit, unit from
   FocalPlaneResolutionUnit), rescaled by the stored width over PixelXDimension
   when the photo was resized after capture;
3. otherwise `DEFAULT_HORIZONTAL_FOV_DEG` across the long side (the camera's
   horizontal when held level, so a portrait photo gets the same lens).
Square pixels, principal point at the image centre, pose `PHOTO_WORLD_TO_CAMERA`.
The size is the size `image_io.load_image` returns, i.e. after the EXIF
orientation is applied (orientations 5-8 swap width and height).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera import DEFAULT_HORIZONTAL_FOV_DEG, PHOTO_WORLD_TO_CAMERA, Camera
from .image_io import _open

FOCAL_SOURCES = ("exif_35mm", "exif_focal_plane", "default")
FULL_FRAME_LONG_SIDE_MM = 36.0
_EXIF_IFD = 0x8769
_ORIENTATION = 0x0112
_FOCAL_LENGTH = 0x920A
_FOCAL_35MM = 0xA405
_FOCAL_PLANE_X_RES = 0xA20E
_FOCAL_PLANE_UNIT = 0xA210
_PIXEL_X_DIMENSION = 0xA002
_UNIT_MM = {1: None, 2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # EXIF FocalPlaneResolutionUnit; 2 (inch) is the default


@dataclass(frozen=True)
class PhotoCamera:
    camera: Camera
    focal_source: str          # one of FOCAL_SOURCES
    focal_length_35mm: float   # the 35 mm equivalent focal length the camera has (mm)

    @property
    def description(self) -> str:
        where = {"exif_35mm": "from EXIF (35 mm equivalent)", "exif_focal_plane": "from EXIF (focal length and sensor size)",
                 "default": f"assumed: no EXIF focal length, {DEFAULT_HORIZONTAL_FOV_DEG:g} deg field of view"}
        return f"focal length {self.focal_length_35mm:.1f} mm equivalent, {where[self.focal_source]}"


def _positive(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def photo_camera(source: str | Path | bytes) -> PhotoCamera:
    """-> the photo's camera and where its focal length came from."""
    img = _open(source, "photo")
    stored_w, stored_h = img.size
    exif = img.getexif()
    # The tags belong in the Exif sub-IFD; some writers put them in IFD0, so look there too.
    sub = {**{k: v for k, v in exif.items() if k != _EXIF_IFD}, **exif.get_ifd(_EXIF_IFD)}
    orientation = exif.get(_ORIENTATION, 1)
    width, height = (stored_h, stored_w) if orientation in (5, 6, 7, 8) else (stored_w, stored_h)
    long_side = max(width, height)

    focal_px, focal_source = None, "default"
    f35 = _positive(sub.get(_FOCAL_35MM))
    if f35 is not None:
        focal_px, focal_source = f35 / FULL_FRAME_LONG_SIDE_MM * long_side, "exif_35mm"
    else:
        focal_mm = _positive(sub.get(_FOCAL_LENGTH))
        res = _positive(sub.get(_FOCAL_PLANE_X_RES))
        unit_mm = _UNIT_MM.get(int(sub.get(_FOCAL_PLANE_UNIT, 2)) if _positive(sub.get(_FOCAL_PLANE_UNIT, 2)) else 2)
        if focal_mm is not None and res is not None and unit_mm is not None:
            reference_width = _positive(sub.get(_PIXEL_X_DIMENSION)) or stored_w
            focal_px, focal_source = focal_mm * res / unit_mm * stored_w / reference_width, "exif_focal_plane"
    if focal_px is not None:
        fov = 2 * math.degrees(math.atan(0.5 * long_side / focal_px))
        if not 1.0 < fov < 179.0:  # nonsense tags: fall back rather than build an absurd camera
            focal_px, focal_source = None, "default"
    if focal_px is None:
        focal_px = 0.5 * long_side / math.tan(math.radians(DEFAULT_HORIZONTAL_FOV_DEG) / 2)
    K = np.array([[focal_px, 0.0, width / 2], [0.0, focal_px, height / 2], [0.0, 0.0, 1.0]])
    camera = Camera(int(width), int(height), K, PHOTO_WORLD_TO_CAMERA)
    return PhotoCamera(camera, focal_source, focal_px / long_side * FULL_FRAME_LONG_SIDE_MM)


def camera_from_photo(source: str | Path | bytes) -> Camera:
    """-> the photo's `Camera` (see `photo_camera` for where the focal length came from)."""
    return photo_camera(source).camera
