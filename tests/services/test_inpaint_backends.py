"""The embedded hole fillers, tested on the backend's own output (not LocalServices' final
np.where, which would hide a backend that touches pixels outside the hole)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from uplift.core.errors import ImageFormatError, MaskError
from uplift.services.backends import opencv_inpaint
from uplift.services.backends.registry import build_inpainter
from uplift.services.backends.opencv_inpaint import OpenCVInpainter
from uplift.services.config import ServerConfig

TEXTURE_FILLERS = ["fsr_fast", pytest.param("fsr_best", marks=pytest.mark.slow),  # ~10 s a fill on a loaded core
                   pytest.param("patchmatch", marks=pytest.mark.skipif(
                       not __import__("importlib").util.find_spec("patchmatch"), reason="pypatchmatch not installed"))]
ALL_FILLERS = ["telea", "ns", *TEXTURE_FILLERS]


def psnr(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    mse = np.mean((a[region].astype(np.float64) - b[region].astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def noisy_photo(h=72, w=96, seed=1) -> np.ndarray:
    """A smooth gradient with noise: every pixel differs, so any change outside the hole shows."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 2.0, y * 3.0, 128 + 40 * np.sin(x / 7.0)], -1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def hole_mask(h=72, w=96, box=(30, 20, 58, 46)) -> np.ndarray:
    x0, y0, x1, y1 = box
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def stripes(h=72, w=96, period=8) -> np.ndarray:
    """Vertical stripes, the texture a diffusion fill smears and a synthesising fill continues."""
    x = np.arange(w)
    row = np.where((x // (period // 2)) % 2 == 0, 40, 210)
    img = np.repeat(np.repeat(row[None, :, None], h, 0), 3, 2)
    img[..., 1] = 255 - img[..., 1]
    return img.astype(np.uint8)


@pytest.mark.parametrize("method", ALL_FILLERS)
def test_filler_keeps_every_pixel_outside_the_hole_and_fills_inside(method):
    photo = noisy_photo()
    hole = hole_mask()
    damaged = photo.copy()
    damaged[hole] = (255, 0, 255)  # what the object was: it must not survive the fill
    out = OpenCVInpainter(method).inpaint(damaged, hole)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    assert np.array_equal(out[~hole], damaged[~hole])
    assert psnr(out, photo, hole) > psnr(damaged, photo, hole) + 6  # magenta is gone, the gradient continues


@pytest.mark.parametrize("method", TEXTURE_FILLERS)
def test_shrunk_crop_keeps_outside_and_fills(method, monkeypatch):
    """A big hole is filled at a reduced scale and upsampled only inside it."""
    monkeypatch.setitem(opencv_inpaint.MAX_PIXELS, method, 900)  # the crop (~70x52) must shrink ~4x
    photo = noisy_photo()
    hole = hole_mask()
    damaged = photo.copy()
    damaged[hole] = (255, 0, 255)
    out = OpenCVInpainter(method).inpaint(damaged, hole)
    assert np.array_equal(out[~hole], damaged[~hole])
    assert psnr(out, photo, hole) > psnr(damaged, photo, hole) + 6


@pytest.mark.parametrize("method", ALL_FILLERS)
def test_filler_is_deterministic(method):
    photo, hole = noisy_photo(seed=3), hole_mask(box=(10, 30, 26, 42))  # small: FSR_BEST is slow
    filler = OpenCVInpainter(method)
    assert np.array_equal(filler.inpaint(photo, hole), filler.inpaint(photo.copy(), hole.copy()))


@pytest.mark.parametrize("method", TEXTURE_FILLERS)
def test_texture_fill_continues_stripes_better_than_telea(method):
    truth = stripes()
    hole = hole_mask(box=(34, 24, 54, 44))
    damaged = truth.copy()
    damaged[hole] = 128
    telea = psnr(OpenCVInpainter("telea").inpaint(damaged, hole), truth, hole)
    synthesised = psnr(OpenCVInpainter(method).inpaint(damaged, hole), truth, hole)
    assert synthesised > telea + 3, (synthesised, telea)


def test_empty_region_returns_the_image():
    photo = noisy_photo()
    out = OpenCVInpainter("fsr_fast").inpaint(photo, np.zeros(photo.shape[:2], bool))
    assert np.array_equal(out, photo) and out is not photo


@pytest.mark.parametrize("image, region, error", [
    (np.zeros((8, 8, 3), np.float32), np.ones((8, 8), bool), ImageFormatError),
    (np.zeros((8, 8), np.uint8), np.ones((8, 8), bool), ImageFormatError),
    (np.zeros((8, 8, 3), np.uint8), np.ones((8, 9), bool), MaskError),
])
def test_bad_input_is_refused_with_a_clear_error(image, region, error):
    with pytest.raises(error):
        OpenCVInpainter("fsr_fast").inpaint(image, region)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="fsr_fast"):
        OpenCVInpainter("shiftmap")


@pytest.mark.parametrize("name", ["telea", "ns", "fsr_fast", "fsr_best"])
def test_registry_builds_each_embedded_filler(name):
    assert build_inpainter(ServerConfig(inpaint=name)).name == name


def test_crop_plumbing_matches_the_whole_image_fill():
    """Telea only looks RADIUS px around the hole, so filling on the crop (margin >= MIN_MARGIN > RADIUS)
    must equal filling the whole image: the crop's placement and the outside are exactly right."""
    photo = noisy_photo(seed=5)
    hole = hole_mask(box=(60, 40, 90, 70))  # near a corner: the crop is clipped on two sides
    telea = lambda img, h: opencv_inpaint._cv2_inpaint(img, h, "telea")  # noqa: E731
    cropped = opencv_inpaint.fill_in_crop(photo, hole, telea, max_pixels=10**9)
    assert np.array_equal(cropped, telea(photo, hole))


@pytest.mark.parametrize("mode", ["fill", "seam"])
def test_services_serve_the_texture_filler_in_both_modes(mode):
    from uplift.services.local import LocalServices

    services = LocalServices(ServerConfig(segment="none", lift="none", inpaint="fsr_fast"))
    photo = noisy_photo()
    out = services.inpaint(photo, hole_mask(), mode=mode, dilate=2)
    assert services.loaded()["inpaint"] == "fsr_fast"
    assert out.shape == photo.shape and not np.array_equal(out, photo)
