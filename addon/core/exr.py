"""A small multilayer OpenEXR writer (single part, scanline, uncompressed, 32-bit float).

Enough for Uplift's export: named layers of 1, 3 or 4 channels at one resolution,
written as channels `<layer>.R/G/B/A` (or `<layer>.V` for one channel), the naming
Blender, Nuke and OpenImageIO read as layers. Values are written as given; callers
pass linear, premultiplied data as the EXR convention expects (`srgb_to_linear` helps).
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .atomic import write_bytes_atomic
from .errors import ImageFormatError

_MAGIC = 20000630
_FLOAT = 2
_CHANNEL_NAMES = {1: ("V",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


def srgb_to_linear(values: np.ndarray) -> np.ndarray:  # float [...] in [0, 1] -> float32 [...]
    v = np.asarray(values, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _attribute(name: str, type_name: str, payload: bytes) -> bytes:
    return name.encode() + b"\0" + type_name.encode() + b"\0" + struct.pack("<i", len(payload)) + payload


def _channels(layers: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """-> [(full channel name, float32 [H, W])] sorted by name, as EXR requires."""
    out = []
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
            out.append((f"{layer}.{suffix}", image[..., c]))
    if not out:
        raise ImageFormatError("an EXR needs at least one layer")
    return sorted(out, key=lambda item: item[0])


def write_multilayer_exr(path: str | Path, layers: dict[str, np.ndarray]) -> None:
    """layers: name -> float [H, W] | [H, W, 3] | [H, W, 4]. Written atomically."""
    channels = _channels(layers)
    height, width = channels[0][1].shape
    chlist = b"".join(name.encode() + b"\0" + struct.pack("<iB3xii", _FLOAT, 0, 1, 1) for name, _ in channels) + b"\0"
    window = struct.pack("<iiii", 0, 0, width - 1, height - 1)
    long_names = any(len(name) > 31 for name, _ in channels)
    header = b"".join([
        struct.pack("<ii", _MAGIC, 2 | (0x400 if long_names else 0)),
        _attribute("channels", "chlist", chlist),
        _attribute("compression", "compression", b"\0"),
        _attribute("dataWindow", "box2i", window),
        _attribute("displayWindow", "box2i", window),
        _attribute("lineOrder", "lineOrder", b"\0"),
        _attribute("pixelAspectRatio", "float", struct.pack("<f", 1.0)),
        _attribute("screenWindowCenter", "v2f", struct.pack("<ff", 0.0, 0.0)),
        _attribute("screenWindowWidth", "float", struct.pack("<f", 1.0)),
        b"\0",
    ])
    # Each scanline block: y, byte count, then every channel's row in channel order.
    rows = np.stack([data for _, data in channels], axis=1).astype("<f4")  # [H, C, W]
    row_bytes = rows.shape[1] * width * 4
    table_end = len(header) + 8 * height
    offsets = table_end + np.arange(height, dtype=np.uint64) * (8 + row_bytes)
    body = bytearray()
    for y in range(height):
        body += struct.pack("<ii", y, row_bytes) + rows[y].tobytes()
    write_bytes_atomic(path, header + offsets.astype("<u8").tobytes() + bytes(body))
