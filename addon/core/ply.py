"""Read and write the standard 3DGS PLY (INRIA reference, gsplat, TRELLIS, SuperSplat).

One `vertex` element with properties
  x y z, optional nx ny nz, f_dc_0..2, f_rest_0..(3*(K-1)-1), opacity, scale_0..2, rot_0..3
where K = (degree+1)^2 SH coefficients per channel. `f_rest_*` is channel-major as
the INRIA code stores it: all R coefficients, then all G, then all B. `opacity` is a
logit, `scale_*` natural logs, `rot_*` a wxyz quaternion (any length, not zero).

Supported: binary_little_endian bodies with float or double (or integer) scalar
properties. Other elements (faces, ...) are skipped; unknown vertex properties are
kept in `Gaussians.extra` and written back unchanged, so write -> read is exact.
ASCII and big-endian files are refused with a message saying so.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .atomic import write_bytes_atomic
from .errors import PlyFormatError
from .gaussians import Gaussians

# PLY scalar type names (both spellings) -> little-endian numpy dtypes.
_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "<i2", "int16": "<i2", "ushort": "<u2", "uint16": "<u2",
    "int": "<i4", "int32": "<i4", "uint": "<u4", "uint32": "<u4",
    "float": "<f4", "float32": "<f4", "double": "<f8", "float64": "<f8",
}
_NUMPY_TO_PLY = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort",
                 "i4": "int", "u4": "uint", "f4": "float", "f8": "double"}

POSITION = ("x", "y", "z")
NORMAL = ("nx", "ny", "nz")
DC = ("f_dc_0", "f_dc_1", "f_dc_2")
SCALE = ("scale_0", "scale_1", "scale_2")
ROTATION = ("rot_0", "rot_1", "rot_2", "rot_3")
OPACITY = "opacity"
_MAX_HEADER_BYTES = 1 << 20


def _rest_names(count: int) -> list[str]:
    return [f"f_rest_{i}" for i in range(count)]


class _Element:
    def __init__(self, name: str, count: int) -> None:
        self.name = name
        self.count = count
        self.properties: list[tuple[str, str]] = []  # (name, numpy dtype)
        self.has_list = False


def _parse_header(data: bytes) -> tuple[list[_Element], int]:
    """Return the elements and the byte offset where the body starts."""
    if not data.startswith(b"ply"):
        raise PlyFormatError("not a PLY file (it does not start with 'ply')")
    end = data.find(b"end_header", 0, _MAX_HEADER_BYTES)
    if end < 0:
        raise PlyFormatError("PLY header has no 'end_header' line (file truncated or not a PLY)")
    newline = data.find(b"\n", end)
    if newline < 0:
        raise PlyFormatError("PLY file ends right after its header (no vertex data)")
    try:
        lines = data[:end].decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise PlyFormatError("PLY header is not ASCII text") from None
    elements: list[_Element] = []
    fmt = None
    for number, raw in enumerate(lines[1:], start=2):
        words = raw.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        keyword = words[0]
        if keyword == "format":
            fmt = words[1] if len(words) > 1 else ""
        elif keyword == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise PlyFormatError(f"PLY header line {number} is a malformed element line: {raw!r}")
            elements.append(_Element(words[1], int(words[2])))
        elif keyword == "property":
            if not elements:
                raise PlyFormatError(f"PLY header line {number} declares a property before any element")
            if len(words) >= 2 and words[1] == "list":
                elements[-1].has_list = True
                continue
            if len(words) != 3 or words[1] not in _PLY_TYPES:
                raise PlyFormatError(f"PLY header line {number} has an unknown property type: {raw!r}")
            elements[-1].properties.append((words[2], _PLY_TYPES[words[1]]))
        else:
            raise PlyFormatError(f"PLY header line {number} is not understood: {raw!r}")
    if fmt == "ascii":
        raise PlyFormatError("ASCII PLY files are not supported; save the splat as binary_little_endian")
    if fmt == "binary_big_endian":
        raise PlyFormatError("big-endian PLY files are not supported; save the splat as binary_little_endian")
    if fmt != "binary_little_endian":
        raise PlyFormatError(f"PLY format {fmt!r} is not understood (expected binary_little_endian)")
    return elements, newline + 1


def _load_bytes(source: str | os.PathLike | bytes | bytearray | memoryview) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "PLY data"
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise PlyFormatError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_ply(source: str | os.PathLike | bytes) -> Gaussians:
    """Read a 3DGS PLY from a path or from bytes into float32 CPU `Gaussians`."""
    data, label = _load_bytes(source)
    try:
        return _decode(data)
    except PlyFormatError as exc:
        raise PlyFormatError(f"{label}: {exc}") from None


def _decode(data: bytes) -> Gaussians:
    elements, offset = _parse_header(data)
    vertex = next((e for e in elements if e.name == "vertex"), None)
    if vertex is None:
        raise PlyFormatError("PLY file has no 'vertex' element")
    for before in elements[: elements.index(vertex)]:
        if before.has_list:
            raise PlyFormatError(f"element {before.name!r} with list properties precedes the vertices (unsupported)")
        offset += before.count * np.dtype(before.properties).itemsize if before.properties else 0
    if vertex.has_list:
        raise PlyFormatError("the vertex element has list properties, which 3DGS files never have")
    if vertex.count == 0:
        raise PlyFormatError("the splat is empty (0 vertices)")
    names = [name for name, _ in vertex.properties]
    if len(set(names)) != len(names):
        raise PlyFormatError("the vertex element repeats a property name")
    rest_count = sum(1 for n in names if n.startswith("f_rest_"))
    required = [*POSITION, *DC, OPACITY, *SCALE, *ROTATION, *_rest_names(rest_count)]
    missing = [n for n in required if n not in names]
    if missing:
        raise PlyFormatError(f"missing vertex properties: {', '.join(missing)}")
    if rest_count % 3 or rest_count // 3 + 1 not in (1, 4, 9, 16):
        raise PlyFormatError(f"{rest_count} f_rest properties is not an SH degree 0-3 layout (expected 0, 9, 24 or 45)")
    has_normals = [n in names for n in NORMAL]
    if any(has_normals) and not all(has_normals):
        raise PlyFormatError("only some of nx, ny, nz are present")

    dtype = np.dtype(vertex.properties)
    needed = offset + vertex.count * dtype.itemsize
    if len(data) < needed:
        raise PlyFormatError(
            f"body is truncated: {vertex.count} vertices need {needed - offset} bytes, found {max(len(data) - offset, 0)}"
        )
    table = np.frombuffer(data, dtype=dtype, count=vertex.count, offset=offset)

    def columns(fields) -> np.ndarray:  # [N, len(fields)] float32
        out = np.empty((vertex.count, len(fields)), dtype=np.float32)
        with np.errstate(over="ignore"):  # doubles beyond float32 become inf, refused below
            for i, name in enumerate(fields):
                out[:, i] = table[name]
        return out

    known = set(required) | (set(NORMAL) if all(has_normals) else set())
    for name in required + (list(NORMAL) if all(has_normals) else []):
        if not np.issubdtype(table.dtype[name], np.floating):
            continue
        bad = ~np.isfinite(table[name])
        if bad.any():
            raise PlyFormatError(f"property {name!r} has {int(bad.sum())} NaN or infinite values (first at vertex {int(bad.argmax())})")

    quats = columns(ROTATION)
    zero = ~(np.abs(quats).sum(axis=1) > 0)
    if zero.any():
        raise PlyFormatError(f"{int(zero.sum())} vertices have a zero rotation quaternion (first at vertex {int(zero.argmax())})")
    arrays = {"means": columns(POSITION), "log_scales": columns(SCALE), "opacity": columns((OPACITY,))[:, 0].copy()}
    k_rest = rest_count // 3
    sh = np.empty((vertex.count, k_rest + 1, 3), dtype=np.float32)
    sh[:, 0, :] = columns(DC)
    if k_rest:
        rest = columns(_rest_names(rest_count)).reshape(vertex.count, 3, k_rest)  # channel-major
        sh[:, 1:, :] = rest.transpose(0, 2, 1)
    arrays["SH coefficients"] = sh
    for name, values in arrays.items():
        if not np.isfinite(values).all():  # finite doubles can still overflow float32
            raise PlyFormatError(f"{name} do not fit in float32 (values beyond ±3.4e38)")
    extra = {name: table[name].copy() for name in names if name not in known}
    return Gaussians(
        means=torch.from_numpy(arrays["means"]),
        quats=torch.from_numpy(quats),
        log_scales=torch.from_numpy(arrays["log_scales"]),
        opacity_logits=torch.from_numpy(arrays["opacity"]),
        sh=torch.from_numpy(sh),
        normals=torch.from_numpy(columns(NORMAL)) if all(has_normals) else None,
        extra=extra,
    )


def _table(g: Gaussians) -> np.ndarray:
    n = len(g)
    k_rest = g.sh.shape[1] - 1
    layout: list[tuple[str, str]] = [(name, "<f4") for name in POSITION]
    if g.normals is not None:
        layout += [(name, "<f4") for name in NORMAL]
    layout += [(name, "<f4") for name in DC] + [(name, "<f4") for name in _rest_names(3 * k_rest)]
    layout += [(OPACITY, "<f4")] + [(name, "<f4") for name in SCALE] + [(name, "<f4") for name in ROTATION]
    for name, values in g.extra.items():
        if values.shape != (n,):
            raise ValueError(f"Gaussians.extra[{name!r}] has shape {values.shape}, expected ({n},)")
        layout.append((name, values.dtype.newbyteorder("<").str))
    table = np.empty(n, dtype=np.dtype(layout))

    def put(fields, values) -> None:  # values: [N, len(fields)]
        values = values.detach().to("cpu", torch.float32).numpy()
        for i, name in enumerate(fields):
            table[name] = values[:, i]

    put(POSITION, g.means)
    if g.normals is not None:
        put(NORMAL, g.normals)
    put(DC, g.sh[:, 0, :])
    if k_rest:
        put(_rest_names(3 * k_rest), g.sh[:, 1:, :].transpose(1, 2).reshape(n, 3 * k_rest))
    put((OPACITY,), g.opacity_logits[:, None])
    put(SCALE, g.log_scales)
    put(ROTATION, g.quats)
    for name, values in g.extra.items():
        table[name] = values
    return table


def ply_bytes(g: Gaussians) -> bytes:
    """Encode `g` as a binary little-endian 3DGS PLY."""
    table = _table(g)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(g)}"]
    for name in table.dtype.names:
        base = table.dtype[name].str[1:]
        if base not in _NUMPY_TO_PLY:
            raise ValueError(f"Gaussians.extra[{name!r}] has dtype {table.dtype[name]}, which PLY cannot store")
        header.append(f"property {_NUMPY_TO_PLY[base]} {name}")
    header.append("end_header\n")
    return "\n".join(header).encode("ascii") + table.tobytes()


def write_ply(path: str | os.PathLike, g: Gaussians) -> None:
    """Write `g` to `path` atomically (temporary file in the same folder, then a rename)."""
    write_bytes_atomic(path, ply_bytes(g))
