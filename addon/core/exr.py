"""Multilayer OpenEXR output through the maintained `OpenEXR` package (numpy in,
ZIP-compressed 32-bit float scanlines out).

Named layers of 1, 3 or 4 channels at one resolution are written as channels
`<layer>.R/G/B/A` (or `<layer>.V` for one channel), the naming Blender, Nuke and
OpenImageIO read as layers. Values are written as given; callers pass linear,
premultiplied data as the EXR convention expects (`srgb_to_linear` helps).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import ImageFormatError

_CHANNEL_NAMES = {1: ("V",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


def srgb_to_linear(values: np.ndarray) -> np.ndarray:  # float [...] in [0, 1] -> float32 [...]
    v = np.asarray(values, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:  # float [...] (clipped to [0, 1]) -> float64 [...]
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def exr_channels(layers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """-> {'layer.R': float32 [H, W] contiguous, ...}; ImageFormatError naming a bad layer."""
    out: dict[str, np.ndarray] = {}
    shape = None
    for layer, image in layers.items():
        image = np.asarray(image, dtype=np.float32)
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3 or image.shape[2] not in _CHANNEL_NAMES:
            raise ImageFormatError(f"EXR layer {layer!r} has shape {image.shape}; expected [H, W] or [H, W, 1|3|4]")
        if shape is not None and image.shape[:2] != shape:
            raise ImageFormatError(f"EXR layer {layer!r} is {image.shape[1]}x{image.shape[0]}, "
                                   f"the others are {shape[1]}x{shape[0]}")
        shape = image.shape[:2]
        if not layer or "." in layer or "\0" in layer:
            raise ImageFormatError(f"EXR layer name {layer!r} must be non-empty without dots")
        for c, suffix in enumerate(_CHANNEL_NAMES[image.shape[2]]):
            out[f"{layer}.{suffix}"] = np.ascontiguousarray(image[..., c])
    if not out:
        raise ImageFormatError("an EXR needs at least one layer")
    return out


def exr_available() -> bool:
    """Whether the `OpenEXR` package can be imported here (a plain Blender may lack it)."""
    import importlib.util

    return importlib.util.find_spec("OpenEXR") is not None


def write_multilayer_exr(path: str | Path, layers: dict[str, np.ndarray]) -> None:
    """layers: name -> float [H, W] | [H, W, 3] | [H, W, 4]. Written atomically. Needs the `OpenEXR` package."""
    channels = exr_channels(layers)
    try:
        import OpenEXR
    except ImportError:
        raise ImageFormatError("writing an EXR needs the Python package 'OpenEXR' (pip install OpenEXR)") from None
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    exr = OpenEXR.File(header, {name: OpenEXR.Channel(name, data) for name, data in channels.items()})
    with atomic_path(path) as temporary:
        exr.write(str(temporary))
