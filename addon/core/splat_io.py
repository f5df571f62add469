"""Splat files in and out: `read_splat_file(path) -> Gaussians`, `write_splat_file(path, g)`,
the format chosen by the file's extension (`SPLAT_EXTENSIONS`).

- `.ply`: the standard 3DGS PLY (INRIA layout, any property order, with or without
  `f_rest_*`, normals, extra properties). `core.ply` is the reference reader and writer: it
  keeps every property exactly (extras, doubles) and runs inside Blender without numba;
  `tests/core/test_splat_io.py` checks that gsply reads what it writes and the other way
  round. PlayCanvas/SuperSplat *compressed* PLYs (`element chunk`) are decoded by gsply.
- `.spz`: Niantic's quantised, gzipped format, read and written by gsply (lazily imported:
  a missing gsply is a `DependencyError` naming the package). Lossy: see `SPZ_TOLERANCE`.
- `.splat`: antimatter15's viewer format, 32 bytes per splat (position and linear scale as
  float32, RGBA and a wxyz quaternion as bytes; no header, no SH rest). gsply has no codec
  for it; it is one fixed numpy record, read and written with `SPLAT_RECORD`.

Conventions as `Gaussians` stores them: wxyz quaternions, natural-log scales, opacity logits,
SH with `sh[:, 0]` the DC term. Every failure is one line: `SplatFormatError` (malformed,
truncated, empty, NaN, unknown extension), `DependencyError` (gsply missing) or
`OutputWriteError`; writers are atomic (`core.atomic`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_path, write_bytes_atomic
from .errors import DependencyError, SplatFormatError
from .gaussians import SH_C0, Gaussians

SPLAT_EXTENSIONS = (".ply", ".spz", ".splat")
_HEAD_BYTES = 1 << 16  # enough of a PLY to see its header
SPLAT_PLY_PROPERTIES = ("f_dc_0", "opacity", "scale_0")  # a PLY with any of these (and no faces) holds 3DGS splats
GSPLY_REQUIREMENT = "gsply==0.4.6"  # requirements.txt; the pip name Blender's Install Dependencies uses

# antimatter15 .splat: one 32-byte record per splat.
SPLAT_RECORD = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rotation", "u1", 4)])

# .spz quantisation (gsply's encoder, Niantic's layout): positions are 24-bit fixed point with
# SPZ_POSITION_BITS fractional bits (fewer when the splat is larger than 2^(23 - bits) units),
# opacity sigmoid(logit) * 255, DC colour sh * 0.15 * 255 + 127.5, log scale (x + 10) * 16,
# smallest-three quaternions with 9-bit components, higher SH sh * 128 + 128, each rounded to
# the nearest byte and clipped to its range. The largest error of a value inside its range:
SPZ_POSITION_BITS = 12
SPZ_TOLERANCE = {
    "means": 0.5 / 2 ** SPZ_POSITION_BITS,   # world units (|x| < 2048 at 12 bits)
    "opacity": 0.5 / 255,                    # sigmoid(logit), opacity in [0, 1]
    "sh_dc": 0.5 / (0.15 * 255),             # DC coefficient in [-3.33, 3.33]
    "log_scales": 0.5 / 16,                  # natural log, in [-10, 5.9]
    "quats": 0.5 / 511 / 2 ** 0.5 * 2,       # unit wxyz components (three of them rounded, one derived)
    "sh_rest": 0.5 / 128,                    # higher-order coefficients in [-1, 0.99]
}


def splat_format(path: str | os.PathLike) -> str:
    """The file type of `path` by its extension ('.ply', '.spz' or '.splat'); a SplatFormatError
    for any other (callers check outputs before computing them)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in SPLAT_EXTENSIONS:
        shown = f"'{path.suffix}'" if path.suffix else "no extension"
        raise SplatFormatError(f"{path.name}: {shown} is not a splat file type (expected {', '.join(SPLAT_EXTENSIONS)})")
    return ext


def _gsply():
    try:
        import gsply
    except ImportError as exc:
        raise DependencyError(f".spz and compressed PLY files need the Python package gsply "
                              f"(pip install {GSPLY_REQUIREMENT}): {exc}") from None
    return gsply


# -- reading ------------------------------------------------------------------------------------

def read_splat_file(path: str | os.PathLike) -> Gaussians:
    """Read a .ply, .spz or .splat file into float32 CPU `Gaussians`."""
    path = Path(path)
    ext = splat_format(path)
    try:
        with path.open("rb") as f:
            data = f.read() if ext == ".splat" else f.read(_HEAD_BYTES)
    except OSError as exc:
        raise SplatFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise SplatFormatError(f"{path}: the file is empty")
    if ext == ".splat":
        return _decode_splat(data, path)
    if ext == ".ply" and not _is_compressed_ply(data):
        from .ply import read_ply

        return read_ply(path)  # the reference reader; its errors name the path
    gsply = _gsply()
    try:
        decoded = gsply.read_spz(path) if ext == ".spz" else gsply.plyread(path)
    except Exception as exc:  # noqa: BLE001 - the library's parser: any failure means a malformed file
        raise SplatFormatError(f"{path}: not a readable {ext} splat file ({type(exc).__name__}: {exc})") from None
    return _from_arrays(path, decoded.means, decoded.quats, decoded.scales, decoded.opacities, decoded.sh0,
                        decoded.shN)


def is_splat_file(path: str | os.PathLike) -> bool:
    """Whether a file given as a *mesh* holds splats: a .spz or .splat, or a .ply whose header
    declares 3DGS properties (`SPLAT_PLY_PROPERTIES`) or the compressed layout and no faces. An
    unreadable .ply is left to the mesh reader, which names the problem."""
    ext = Path(path).suffix.lower()
    if ext in (".spz", ".splat"):
        return True
    if ext != ".ply":
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError:
        return False
    header = head[:max(head.find(b"end_header"), 0)].split(b"\n")
    words = [line.split() for line in header]
    properties = {w[-1].decode("ascii", "replace") for w in words if len(w) >= 3 and w[0] == b"property"}
    faces = sum(int(w[2]) for w in words if len(w) == 3 and w[0] == b"element" and w[1] == b"face" and w[2].isdigit())
    return faces == 0 and (_is_compressed_ply(head) or bool(properties & set(SPLAT_PLY_PROPERTIES)))


def _is_compressed_ply(head: bytes) -> bool:
    """PlayCanvas' compressed layout: a `chunk` element before the packed vertices."""
    end = head.find(b"end_header")
    return head.startswith(b"ply") and b"\nelement chunk " in head[:max(end, 0)]


def _from_arrays(path: Path, means, quats, log_scales, opacity_logits, sh_dc, sh_rest) -> Gaussians:
    """Gaussians from [N, 3] means, [N, 4] wxyz, [N, 3] log scales, [N] logits, [N, 3] DC and
    [N, K-1, 3] higher SH, refusing empty sets, NaNs and zero quaternions."""
    n = len(means)
    if n == 0:
        raise SplatFormatError(f"{path}: the splat is empty (0 Gaussians)")
    rest = np.zeros((n, 0, 3), np.float32) if sh_rest is None else np.asarray(sh_rest, np.float32).reshape(n, -1, 3)
    fields = {
        "positions": np.asarray(means, np.float32).reshape(n, 3),
        "rotations": np.asarray(quats, np.float32).reshape(n, 4),
        "scales": np.asarray(log_scales, np.float32).reshape(n, 3),
        "opacities": np.asarray(opacity_logits, np.float32).reshape(n),
        "colours": np.concatenate((np.asarray(sh_dc, np.float32).reshape(n, 1, 3), rest), 1),
    }
    for name, values in fields.items():
        bad = ~np.isfinite(values.reshape(n, -1)).all(1)
        if bad.any():
            raise SplatFormatError(f"{path}: {int(bad.sum())} Gaussians have NaN or infinite {name} "
                                   f"(first at {int(bad.argmax())})")
    zero = ~(np.abs(fields["rotations"]).sum(1) > 0)
    if zero.any():
        raise SplatFormatError(f"{path}: {int(zero.sum())} Gaussians have a zero rotation quaternion "
                               f"(first at {int(zero.argmax())})")
    if (fields["colours"].shape[1]) not in (1, 4, 9, 16):
        raise SplatFormatError(f"{path}: {fields['colours'].shape[1]} SH coefficients per channel is not degree 0-3")
    return Gaussians(*(torch.from_numpy(np.ascontiguousarray(fields[k]))
                       for k in ("positions", "rotations", "scales", "opacities", "colours")))


def _decode_splat(data: bytes, path: Path) -> Gaussians:
    if len(data) % SPLAT_RECORD.itemsize:
        raise SplatFormatError(f"{path}: {len(data)} bytes is not a whole number of {SPLAT_RECORD.itemsize}-byte "
                               ".splat records (truncated or not a .splat file)")
    table = np.frombuffer(data, dtype=SPLAT_RECORD)
    scale = table["scale"].astype(np.float64)
    flat = np.isfinite(scale).all(1) & ~(scale > 0).all(1)  # NaNs are refused by _from_arrays
    if flat.any():
        raise SplatFormatError(f"{path}: {int(flat.sum())} splats have a scale <= 0 (first at {int(flat.argmax())}; "
                               "a .splat stores linear scales)")
    # Bytes hold [0, 1] values; opacity 0 or 1 has no finite logit, so it stops half a step inside.
    alpha = np.clip(table["rgba"][:, 3] / 255.0, 0.5 / 255, 1 - 0.5 / 255)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _from_arrays(path, table["position"], (table["rotation"].astype(np.float32) - 128.0) / 128.0,
                            np.log(scale), np.log(alpha / (1 - alpha)), (table["rgba"][:, :3] / 255.0 - 0.5) / SH_C0,
                            None)


# -- writing ------------------------------------------------------------------------------------

def write_splat_file(path: str | os.PathLike, g: Gaussians) -> None:
    """Write `g` atomically as .ply (every property), .spz (quantised, `SPZ_TOLERANCE`) or
    .splat (DC colour only), by `path`'s extension."""
    path = Path(path)
    ext = splat_format(path)
    g = g.to("cpu")
    if len(g) == 0:
        raise SplatFormatError(f"cannot write {path.name}: there are no Gaussians to write")
    arrays = _check_finite(path, g)
    if ext == ".ply":
        from .ply import write_ply

        write_ply(path, g)
    elif ext == ".spz":
        _write_spz(path, arrays)
    else:
        write_bytes_atomic(path, _encode_splat(arrays).tobytes())


def _check_finite(path: Path, g: Gaussians) -> dict[str, np.ndarray]:
    arrays = {name: getattr(g, name).detach().float().numpy()
              for name in ("means", "quats", "log_scales", "opacity_logits", "sh")}
    for name, values in arrays.items():
        bad = ~np.isfinite(values.reshape(len(g), -1)).all(1)
        if bad.any():
            raise SplatFormatError(f"cannot write {path.name}: {int(bad.sum())} Gaussians have NaN or infinite "
                                   f"{name} (first at {int(bad.argmax())})")
    norms = np.linalg.norm(arrays["quats"], axis=1, keepdims=True)
    if not (norms > 0).all():
        raise SplatFormatError(f"cannot write {path.name}: {int((norms == 0).sum())} Gaussians have a zero quaternion")
    arrays["quats"] = arrays["quats"] / norms
    return arrays


def position_bits(means: np.ndarray) -> int:
    """Fractional bits of .spz's 24-bit fixed-point positions: SPZ_POSITION_BITS, fewer for a
    splat reaching beyond 2^(23 - SPZ_POSITION_BITS) units from the origin."""
    reach = float(np.abs(means).max(initial=0.0))
    bits = SPZ_POSITION_BITS
    while bits > 0 and reach * 2 ** bits >= 2 ** 23 - 1:
        bits -= 1
    return bits


def _write_spz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    bits = position_bits(arrays["means"])
    if bits < 1:
        raise SplatFormatError(f"cannot write {path.name}: .spz positions must stay within 4 million units of the "
                               f"origin (this splat reaches {np.abs(arrays['means']).max():.3g})")
    gsply = _gsply()
    sh = arrays["sh"]
    data = gsply.GSData(means=arrays["means"], scales=arrays["log_scales"], quats=arrays["quats"],
                        opacities=arrays["opacity_logits"], sh0=np.ascontiguousarray(sh[:, 0]),
                        shN=np.ascontiguousarray(sh[:, 1:]))
    with atomic_path(path) as tmp:
        try:
            gsply.write_spz(tmp, data, fractional_bits=bits)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - the library's encoder refused these values
            raise SplatFormatError(f"cannot write {path.name}: {type(exc).__name__}: {exc}") from None


def _encode_splat(arrays: dict[str, np.ndarray]) -> np.ndarray:
    n = len(arrays["means"])
    table = np.empty(n, dtype=SPLAT_RECORD)
    table["position"] = arrays["means"]
    table["scale"] = np.exp(arrays["log_scales"])
    colour = 0.5 + SH_C0 * arrays["sh"][:, 0]
    opacity = 1.0 / (1.0 + np.exp(-arrays["opacity_logits"].astype(np.float64)))
    table["rgba"] = np.clip(np.round(np.concatenate((colour, opacity[:, None]), 1) * 255), 0, 255)
    table["rotation"] = np.clip(np.round(arrays["quats"] * 128 + 128), 0, 255)
    return table
