"""Moving pictures between Blender images and numpy arrays / encoded files.

Blender stores pixels bottom-up as float RGBA; Uplift's arrays are top-down
(row 0 is the top of the photo). Packed images keep their encoded file bytes,
so the original photo goes to the server byte for byte.
"""
from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..core.errors import ImageFormatError


def packed_image(name: str, data: bytes, extension: str = ".png", replace: bpy.types.Image | None = None,
                 colorspace: str = "sRGB") -> bpy.types.Image:
    """A new image whose pixels are the encoded file `data`, packed into the .blend."""
    if replace is not None:
        bpy.data.images.remove(replace)
    image = bpy.data.images.new(name, 4, 4)
    image.source = "FILE"
    image.filepath_raw = bpy.path.clean_name(name) + extension
    image.pack(data=data, data_len=len(data))
    image.colorspace_settings.name = colorspace
    if tuple(image.size) == (0, 0):
        bpy.data.images.remove(image)
        raise ImageFormatError(f"Blender cannot decode the image {name!r}")
    return image


def file_bytes(image: bpy.types.Image) -> bytes:
    """The encoded file behind `image`: its packed bytes, else the file on disk."""
    if image.packed_file is not None:
        return bytes(image.packed_file.data)
    path = Path(bpy.path.abspath(image.filepath))
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageFormatError(f"cannot read the image file {path}: {exc.strerror or exc}") from None


def read_rgba(image: bpy.types.Image) -> np.ndarray:
    """-> float32 [H, W, 4] top-down, the values Blender holds (sRGB-encoded for byte images)."""
    width, height = image.size
    pixels = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    return pixels.reshape(height, width, 4)[::-1].copy()


def show_rgba(name: str, rgba: np.ndarray, image: bpy.types.Image | None = None) -> bpy.types.Image:
    """Write float [H, W, 4] top-down straight-alpha pixels into a generated image (made or resized)."""
    height, width = rgba.shape[:2]
    if image is None:
        image = bpy.data.images.get(name)
    if image is None or image.source != "GENERATED":
        image = bpy.data.images.new(name, width, height, alpha=True)
    elif tuple(image.size) != (width, height):
        image.scale(width, height)
        image.generated_width, image.generated_height = width, height  # the size it reopens with
    image.alpha_mode = "STRAIGHT"
    flat = np.ascontiguousarray(rgba[::-1], dtype=np.float32).reshape(-1)
    image.pixels.foreach_set(flat)
    image.update()
    return image


def camera_layer(camera_data: bpy.types.Camera, image: bpy.types.Image, front: bool, alpha: float = 1.0):
    """The background-image layer of `camera_data` showing `image`, created if needed."""
    camera_data.show_background_images = True
    for layer in camera_data.background_images:
        if layer.image == image:
            break
    else:
        layer = camera_data.background_images.new()
        layer.image = image
    layer.display_depth = "FRONT" if front else "BACK"
    layer.frame_method = "STRETCH"
    layer.alpha = alpha
    layer.show_background_image = True
    return layer


def remove_camera_layer(camera_data: bpy.types.Camera, image: bpy.types.Image | None) -> None:
    for layer in list(camera_data.background_images):
        if layer.image is None or layer.image == image:
            camera_data.background_images.remove(layer)
