"""The multilayer EXR writer, checked with an independent reader written from the spec."""
import struct

import numpy as np
import pytest

from uplift.core.errors import ImageFormatError
from uplift.core.exr import srgb_to_linear, write_multilayer_exr


def read_exr(path):
    """Minimal reader for single-part, uncompressed, FLOAT scanline files -> {channel: [H, W]}."""
    data = path.read_bytes()
    magic, version = struct.unpack_from("<ii", data, 0)
    assert magic == 20000630 and version & 0xFF == 2
    pos, attrs = 8, {}
    while data[pos] != 0:
        name_end = data.index(b"\0", pos)
        type_end = data.index(b"\0", name_end + 1)
        size = struct.unpack_from("<i", data, type_end + 1)[0]
        attrs[data[pos:name_end].decode()] = data[type_end + 5:type_end + 5 + size]
        pos = type_end + 5 + size
    pos += 1
    channels, cpos, chl = [], 0, attrs["channels"]
    while chl[cpos] != 0:
        end = chl.index(b"\0", cpos)
        ptype = struct.unpack_from("<i", chl, end + 1)[0]
        assert ptype == 2
        channels.append(chl[cpos:end].decode())
        cpos = end + 17
    assert attrs["compression"] == b"\0"
    x0, y0, x1, y1 = struct.unpack("<iiii", attrs["dataWindow"])
    width, height = x1 - x0 + 1, y1 - y0 + 1
    offsets = struct.unpack_from(f"<{height}Q", data, pos)
    out = {c: np.zeros((height, width), np.float32) for c in channels}
    for offset in offsets:
        y, size = struct.unpack_from("<ii", data, offset)
        assert size == 4 * width * len(channels)
        row = np.frombuffer(data, "<f4", width * len(channels), offset + 8).reshape(len(channels), width)
        for c, name in enumerate(channels):
            out[name][y] = row[c]
    return out


def test_layers_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    plate = rng.random((5, 7, 3), dtype=np.float32)
    obj = rng.random((5, 7, 4), dtype=np.float32)
    mask = (rng.random((5, 7)) > 0.5).astype(np.float32)
    write_multilayer_exr(tmp_path / "x.exr", {"plate": plate, "object": obj, "seam_mask": mask})
    channels = read_exr(tmp_path / "x.exr")
    assert list(channels) == sorted(channels)
    assert set(channels) == {"plate.R", "plate.G", "plate.B", "object.R", "object.G", "object.B", "object.A",
                             "seam_mask.V"}
    np.testing.assert_array_equal(channels["plate.G"], plate[..., 1])
    np.testing.assert_array_equal(channels["object.A"], obj[..., 3])
    np.testing.assert_array_equal(channels["seam_mask.V"], mask)
    assert not (tmp_path / "x.exr.part").exists()


def test_bad_layers_are_refused(tmp_path):
    with pytest.raises(ImageFormatError, match="shape"):
        write_multilayer_exr(tmp_path / "a.exr", {"x": np.zeros((4, 4, 2))})
    with pytest.raises(ImageFormatError, match="others"):
        write_multilayer_exr(tmp_path / "a.exr", {"x": np.zeros((4, 4)), "y": np.zeros((5, 4))})
    with pytest.raises(ImageFormatError, match="dots"):
        write_multilayer_exr(tmp_path / "a.exr", {"a.b": np.zeros((4, 4))})
    assert not (tmp_path / "a.exr").exists()


def test_srgb_to_linear_known_values():
    np.testing.assert_allclose(srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0])),
                               [0.0, 0.04045 / 12.92, 0.21404114, 1.0], rtol=1e-6)
