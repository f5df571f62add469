"""Reading and writing images and masks with clear errors.

Images are uint8 RGB [H, W, 3] (alpha dropped) unless asked for RGBA; masks are
bool [H, W]. Nothing here ever modifies an input file.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .errors import ImageFormatError, ImageTooLargeError, MaskError

# The one pixel limit: images larger than this are refused rather than exhausting memory.
# The CLI, the core readers and the server (its default `--max-pixels`) all use it.
MAX_PIXELS = 40_000_000


def check_pixel_count(width: int, height: int, what: str = "image", limit: int = MAX_PIXELS) -> None:
    """ImageTooLargeError when a `what` of width x height is over `limit` pixels."""
    if width * height > limit:
        raise ImageTooLargeError(f"the {what} is {width}x{height} = {width * height:,} pixels, over the limit "
                                 f"of {limit:,}")


def _open(source: str | Path | bytes, what: str, max_pixels: int = MAX_PIXELS):
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # we apply our own limit below, with a clear message
    label = f"{what} ({len(source)} bytes)" if isinstance(source, (bytes, bytearray)) else f"{what} {source}"
    try:
        img = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        w, h = img.size
        if w == 0 or h == 0:
            raise ImageFormatError(f"{label} is empty (0x0 pixels)")
        check_pixel_count(w, h, label, max_pixels)  # from the header, before decoding
        img.load()
    except FileNotFoundError:
        raise ImageFormatError(f"{label} does not exist") from None
    except UnidentifiedImageError:
        raise ImageFormatError(f"{label} is not an image format Uplift can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if "truncated" in str(exc):
            raise ImageFormatError(f"{label} is truncated") from None
        raise ImageFormatError(f"{label} cannot be decoded: {exc}") from None
    return _as_8_bit(img)


def _as_8_bit(img):
    """16-bit grey (Pillow's I;16 modes, or I holding 16-bit values) scaled to 8 bits;
    Pillow's own convert() would clip them to 0-255 and whiten the photo. Pillow already
    reads 16-bit RGB and RGBA PNGs as 8-bit RGB/RGBA, correctly scaled."""
    from PIL import Image

    if not (img.mode.startswith("I;16") or img.mode == "I"):
        return img
    values = np.asarray(img).astype(np.float64)
    if img.mode == "I" and values.max(initial=0) <= 255:  # 8-bit data in a 32-bit container
        scaled = values
    else:
        scaled = values / 257.0  # 65535 -> 255
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def load_image(source: str | Path | bytes, *, what: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """-> uint8 [H, W, 3] RGB, with EXIF orientation applied."""
    from PIL import ImageOps

    img = ImageOps.exif_transpose(_open(source, what, max_pixels))
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def load_rgba(source: str | Path | bytes, *, what: str = "image") -> np.ndarray:
    """-> uint8 [H, W, 4] straight-alpha RGBA."""
    return np.asarray(_open(source, what).convert("RGBA"), dtype=np.uint8).copy()


def load_mask(source: str | Path | bytes, *, shape: tuple[int, int] | None = None,
              what: str = "mask", allow_empty: bool = False, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """-> bool [H, W]: a pixel is in the mask where its value (or alpha, if the mask has
    alpha) is at least 128. `shape` (H, W) is checked when given."""
    img = _open(source, what, max_pixels)
    if img.mode in ("RGBA", "LA", "PA"):
        values = np.asarray(img.convert("RGBA"))[..., 3]
    else:
        values = np.asarray(img.convert("L"))
    mask = values >= 128
    if shape is not None and mask.shape != tuple(shape):
        raise MaskError(f"{what} is {mask.shape[1]}x{mask.shape[0]} but the image is {shape[1]}x{shape[0]}")
    if not allow_empty and not mask.any():
        raise MaskError(f"{what} is empty: no pixel is selected")
    return mask


def union_mask(sources, shape: tuple[int, int], *, what: str = "a mask") -> np.ndarray:
    """bool [H, W]: the union of the masks in `sources` (paths or PNG bytes), each checked for
    `shape`; all False when there are none."""
    union = np.zeros(shape, dtype=bool)
    for source in sources:
        union |= load_mask(source, shape=shape, what=what, allow_empty=True)
    return union


def encode_png(array: np.ndarray, compress_level: int = 6) -> bytes:
    """uint8 [H, W] / [H, W, 3] / [H, W, 4] or bool [H, W] -> PNG bytes. compress_level 0-9
    (zlib): 1 is about 3x faster than 6 for ~10% more bytes, the right trade on loopback."""
    from PIL import Image

    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        raise ValueError(f"encode_png takes uint8 or bool arrays, got {array.dtype}")
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def save_png(path: str | Path, array: np.ndarray) -> None:
    """Write atomically: a failed write never leaves a half file at `path`."""
    from .atomic import write_bytes_atomic

    write_bytes_atomic(path, encode_png(array))


def to_float(image: np.ndarray) -> np.ndarray:  # uint8 [H, W, C] -> float32 [H, W, C] in [0, 1]
    return image.astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:  # float [H, W, C] in [0, 1] -> uint8, rounded
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
