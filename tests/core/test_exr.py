"""The multilayer EXR writer, read back by the OpenEXR library (Blender reading the layers
back is checked in tests/blender/test_full_flow.py)."""
import numpy as np
import pytest

from uplift.core.errors import ImageFormatError
from uplift.core.exr import srgb_to_linear, write_multilayer_exr

import OpenEXR  # noqa: E402 - pinned in requirements.txt: missing must fail, not skip


def read_exr(path):  # -> ({channel: float32 [H, W]}, header)
    exr = OpenEXR.File(str(path), separate_channels=True)
    return {name: channel.pixels for name, channel in exr.channels().items()}, exr.header()


def test_layers_round_trip_compressed(tmp_path):
    rng = np.random.default_rng(0)
    plate = rng.random((50, 70, 3), dtype=np.float32)
    obj = rng.random((50, 70, 4), dtype=np.float32)
    mask = (rng.random((50, 70)) > 0.5).astype(np.float32)
    write_multilayer_exr(tmp_path / "x.exr", {"plate": plate, "object": obj, "seam_mask": mask})
    channels, header = read_exr(tmp_path / "x.exr")
    assert set(channels) == {"plate.R", "plate.G", "plate.B", "object.R", "object.G", "object.B", "object.A",
                             "seam_mask.V"}
    assert all(c.dtype == np.float32 for c in channels.values())
    np.testing.assert_array_equal(channels["plate.G"], plate[..., 1])
    np.testing.assert_array_equal(channels["object.A"], obj[..., 3])
    np.testing.assert_array_equal(channels["seam_mask.V"], mask)
    assert header["compression"] != OpenEXR.NO_COMPRESSION
    assert (tmp_path / "x.exr").stat().st_size < 50 * 70 * 8 * 4  # the mask compresses
    assert [p.name for p in tmp_path.iterdir()] == ["x.exr"]  # no temporary left


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
