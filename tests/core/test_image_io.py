"""Image and mask loading: clear errors for bad input, masks checked for size."""
import io

import numpy as np
import pytest
from PIL import Image

from uplift.core.compositing import alpha_over, dilate, erode, seam_ring
from uplift.core.errors import ImageFormatError, MaskError
from uplift.core.image_io import encode_png, load_image, load_mask, load_rgba, save_png


def _jpeg(w=40, h=30) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_load_image_from_bytes_and_path(tmp_path):
    data = _jpeg()
    (tmp_path / "a.jpg").write_bytes(data)
    a, b = load_image(data), load_image(tmp_path / "a.jpg")
    assert a.shape == (30, 40, 3) and a.dtype == np.uint8 and np.array_equal(a, b)


@pytest.mark.parametrize(
    "payload, message",
    [(b"garbage bytes, not an image", "not an image format"), (b"", "not an image format")],
)
def test_garbage_is_named(payload, message):
    with pytest.raises(ImageFormatError, match=message):
        load_image(payload)


def test_truncated_jpeg_is_named():
    data = _jpeg(400, 300)
    with pytest.raises(ImageFormatError, match="truncated"):
        load_image(data[: len(data) // 2])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ImageFormatError, match="does not exist"):
        load_image(tmp_path / "nope.png")


def test_mask_size_and_emptiness_checked():
    m = np.zeros((30, 40), bool)
    with pytest.raises(MaskError, match="empty"):
        load_mask(encode_png(m))
    m[5:10, 5:10] = True
    with pytest.raises(MaskError, match="40x30 but the image is 41x30"):
        load_mask(encode_png(m), shape=(30, 41))
    assert np.array_equal(load_mask(encode_png(m), shape=(30, 40)), m)


def test_mask_from_alpha_channel():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:4, 2:4, 3] = 255
    rgba[..., :3] = 255  # white everywhere: only alpha decides
    assert load_mask(encode_png(rgba)).sum() == 4


def test_save_png_is_atomic_and_round_trips(tmp_path):
    rgba = np.random.default_rng(1).integers(0, 255, (9, 7, 4), dtype=np.uint8)
    save_png(tmp_path / "x.png", rgba)
    assert np.array_equal(load_rgba(tmp_path / "x.png"), rgba)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary file left
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_morphology_and_seam_ring():
    m = np.zeros((41, 41), bool)
    m[15:26, 15:26] = True
    assert dilate(m, 3).sum() > m.sum() > erode(m, 3).sum()
    assert np.array_equal(dilate(m, 0), m)
    ring = seam_ring(m, 2)
    assert not ring[20, 20] and ring[15, 20] and ring[13, 20] and not ring[10, 20]


def test_alpha_over_extremes_and_size_check():
    fg = np.zeros((4, 4, 4), np.float32)
    fg[..., :3] = 1.0
    bg = np.full((4, 4, 3), 0.25, np.float32)
    fg[0, 0, 3] = 1.0
    fg[0, 1, 3] = 0.5
    out = alpha_over(fg, bg)
    assert np.allclose(out[0, 0], 1.0) and np.allclose(out[0, 1], 0.625) and np.allclose(out[1, 1], 0.25)
    with pytest.raises(MaskError, match="composite"):
        alpha_over(fg, bg[:3])


def _ramp16(w=256, h=4) -> np.ndarray:  # uint16 [h, w], 0..65535
    return np.tile(np.linspace(0, 65535, w).round().astype(np.uint16), (h, 1))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16_bit_pngs_load_scaled_to_8_bits(tmp_path, channels):
    import cv2

    grey = _ramp16()
    planes = [grey, 65535 - grey, grey // 2][:min(channels, 3)]
    if channels == 4:
        planes.append(np.full_like(grey, 40000))
    path = tmp_path / f"photo16_{channels}.png"
    stacked = planes[0] if channels == 1 else np.stack(planes[:3][::-1] + planes[3:], -1)  # cv2 writes BGR(A)
    assert cv2.imwrite(str(path), stacked)
    assert Image.open(path).mode == ("I;16" if channels == 1 else "RGB" if channels == 3 else "RGBA")
    image = load_image(path)
    expected = np.stack([p.astype(np.float64) / 257 for p in planes[:3]], -1) if channels > 1 else \
        np.repeat(grey[..., None].astype(np.float64) / 257, 3, -1)
    assert image.dtype == np.uint8 and image.shape == (4, 256, 3)
    assert np.abs(image - expected).max() <= 1.0  # rounding or truncation of the low byte
    assert image.max() == 255 and image.min() == 0  # not clipped to white


def test_a_16_bit_grey_mask_thresholds_at_half(tmp_path):
    import cv2

    path = tmp_path / "mask16.png"
    assert cv2.imwrite(str(path), _ramp16())
    mask = load_mask(path)
    assert 0.45 < mask.mean() < 0.55


def test_the_pixel_limit_is_one_check_everywhere(tmp_path):
    from uplift.core.errors import ImageTooLargeError
    from uplift.core.image_io import MAX_PIXELS, check_pixel_count
    from uplift.services.config import ServerConfig

    assert ServerConfig().max_pixels == MAX_PIXELS
    check_pixel_count(MAX_PIXELS, 1)
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        check_pixel_count(MAX_PIXELS + 1, 1)
    with pytest.raises(ImageTooLargeError, match="40x30 = 1,200 pixels, over the limit of 1,000"):
        load_image(_jpeg(), max_pixels=1000)
