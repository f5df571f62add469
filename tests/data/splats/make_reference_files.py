"""Writes the small reference splat files beside this script from the known values below
(`python tests/data/splats/make_reference_files.py`; needs gsply for the two files it writes).

- `known_sh1.ply`, `known_sh0.ply`: INRIA-layout PLYs written by gsply's own writer (`gsply.plywrite`).
- `known_sh1.spz`: the same Gaussians written by gsply's .spz encoder (gzip v3, 12 fractional bits).
- `reordered.ply`: hand-packed with `struct`: another trainer's property order (rotation and scales
  first, f_dc last), normals, and uchar red/green/blue extras between the floats.
- `known_v2.spz`: hand-packed from Niantic's documented layout (gzip, version 2, 3-byte xyz quaternions).
- `known.splat`: hand-packed antimatter15 records (32 bytes each).
The tests (tests/core/test_splat_io.py) compare what each reader returns with these values.
Generated data, no third-party content: CC0.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent

# Four Gaussians; wxyz quaternions, natural-log scales, opacity logits, SH DC + degree-1 rest [N, 3, 3].
MEANS = np.array([[0.0, 0.0, 0.0], [1.5, -2.25, 0.125], [-0.5, 0.75, 3.0], [10.0, -7.5, 0.25]], np.float32)
QUATS = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5], [0.6, 0.0, 0.8, 0.0]], np.float32)
LOG_SCALES = np.array([[-4.0, -3.5, -2.0], [-1.0, 0.0, 0.5], [-6.25, -6.25, -6.25], [-2.5, -3.0, -3.5]], np.float32)
OPACITY_LOGITS = np.array([2.0, 0.0, -1.0, 4.0], np.float32)
SH_DC = np.array([[0.0, 0.5, -0.5], [1.25, -1.0, 0.25], [-1.5, 2.0, 0.75], [0.125, 0.0, -0.25]], np.float32)
SH_REST = (np.arange(4 * 3 * 3, dtype=np.float32).reshape(4, 3, 3) - 18.0) / 32.0  # [N, coeff, channel]

# Hand-packed records: (position xyz f32, linear scale xyz f32, RGBA u8, wxyz u8 as q * 128 + 128).
SPLAT_RECORDS = [
    ((0.0, 1.0, 2.0), (0.01, 0.02, 0.04), (255, 128, 0, 255), (255, 128, 128, 128)),
    ((-3.5, 0.25, 8.0), (0.5, 0.25, 0.125), (10, 20, 30, 128), (128, 255, 128, 128)),
    ((1e-3, -1e3, 7.0), (1.0, 2.0, 4.0), (64, 192, 32, 1), (192, 192, 128, 64)),
]

# Hand-packed .spz v2: per Gaussian (position (fixed point, 12 fractional bits), alpha byte, colour
# bytes, scale bytes, xyz quaternion bytes, degree-1 SH bytes [coeff][channel]).
SPZ_V2_BITS = 12
SPZ_V2 = [
    ((4096, -8192, 2048), 255, (128, 64, 200), (96, 112, 128), (128, 128, 128), tuple(range(100, 109))),
    ((-1, 0, 409600), 0, (0, 255, 127), (0, 255, 160), (255, 128, 128), tuple(range(120, 129))),
    ((123456, -654321, 7), 170, (30, 60, 90), (150, 140, 130), (64, 192, 100), tuple(range(200, 209))),
]


def write_gsply_files() -> None:
    import gsply

    rest = SH_REST
    gsply.plywrite(str(HERE / "known_sh1.ply"), MEANS, LOG_SCALES, QUATS, OPACITY_LOGITS, SH_DC, rest)
    gsply.plywrite(str(HERE / "known_sh0.ply"), MEANS, LOG_SCALES, QUATS, OPACITY_LOGITS, SH_DC, None)
    gsply.write_spz(HERE / "known_sh1.spz", gsply.GSData(means=MEANS, scales=LOG_SCALES, quats=QUATS,
                                                         opacities=OPACITY_LOGITS, sh0=SH_DC, shN=rest))


def reordered_ply() -> bytes:
    """Rotation, scales and opacity first, then uchar colour bytes, position, normals, SH rest, DC."""
    rest_names = [f"f_rest_{i}" for i in range(9)]
    layout = ([(f"rot_{i}", "f") for i in range(4)] + [(f"scale_{i}", "f") for i in range(3)] + [("opacity", "f")]
              + [(c, "B") for c in ("red", "green", "blue")] + [(c, "f") for c in ("x", "y", "z", "nx", "ny", "nz")]
              + [(name, "f") for name in rest_names] + [(f"f_dc_{i}", "f") for i in range(3)])
    ply_types = {"f": "float", "B": "uchar"}
    header = ["ply", "format binary_little_endian 1.0", "comment another trainer's order", f"element vertex {len(MEANS)}"]
    header += [f"property {ply_types[t]} {name}" for name, t in layout] + ["end_header\n"]
    body = b""
    for i in range(len(MEANS)):
        rest_channel_major = SH_REST[i].T.reshape(-1)  # all R coefficients, then G, then B (INRIA)
        values = [*QUATS[i], *LOG_SCALES[i], OPACITY_LOGITS[i], 10 * i, 20 * i, 30 * i, *MEANS[i],
                  0.0, 0.0, 1.0, *rest_channel_major, *SH_DC[i]]
        body += struct.pack("<" + "".join(t for _, t in layout), *values)
    return "\n".join(header).encode("ascii") + body


def splat_bytes() -> bytes:
    return b"".join(struct.pack("<3f3f4B4B", *p, *s, *c, *q) for p, s, c, q in SPLAT_RECORDS)


def spz_v2_bytes() -> bytes:
    n = len(SPZ_V2)
    header = struct.pack("<IIIBBBB", 0x5053474E, 2, n, 1, SPZ_V2_BITS, 0, 0)
    positions = b"".join((v & 0xFFFFFF).to_bytes(3, "little") for g in SPZ_V2 for v in g[0])
    sections = [positions, bytes(g[1] for g in SPZ_V2), bytes(b for g in SPZ_V2 for b in g[2]),
                bytes(b for g in SPZ_V2 for b in g[3]), bytes(b for g in SPZ_V2 for b in g[4]),
                bytes(b for g in SPZ_V2 for b in g[5])]
    return gzip.compress(header + b"".join(sections), mtime=0)


if __name__ == "__main__":
    write_gsply_files()
    (HERE / "reordered.ply").write_bytes(reordered_ply())
    (HERE / "known.splat").write_bytes(splat_bytes())
    (HERE / "known_v2.spz").write_bytes(spz_v2_bytes())
