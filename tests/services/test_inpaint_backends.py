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
ALL_FILLERS = ["telea", "ns", "structure_texture", "membrane", *TEXTURE_FILLERS]
HAS_PATCHMATCH = __import__("importlib").util.find_spec("patchmatch") is not None


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


@pytest.mark.parametrize("name", ["telea", "ns", "fsr_fast", "fsr_best", "structure_texture"])
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


# -- structure_texture: a harmonic membrane plus PatchMatch detail faded with the distance into the hole --

def smooth_plus_texture(h=96, w=128, seed=7) -> np.ndarray:
    """A wide colour gradient plus fine i.i.d. texture (sigma 10): inside a big hole the best guess is
    the gradient itself; any texture placed there is uncorrelated with the lost one."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([60 + 1.2 * x, 50 + 1.5 * y, 200 - 0.6 * x - 0.5 * y], -1)
    return np.clip(base + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)


def test_structure_texture_beats_telea_on_a_gradient_with_texture():
    """A linear ramp is harmonic, so the membrane puts back the gradient itself: its error is the lost
    texture alone (sigma 10 levels, 28.2 dB, the floor for any fill that cannot know the noise). Telea
    and PatchMatch also carry copies of rim noise into the hole (an error up to sigma * sqrt(2), 3 dB
    worse). Measured: telea 25.5, patchmatch 24.4, membrane alone 28.0, structure_texture 27.7 dB
    (its faded rim detail costs 0.3 dB here)."""
    truth = smooth_plus_texture()
    hole = hole_mask(96, 128, box=(34, 24, 94, 72))  # 60 x 48 px
    damaged = truth.copy()
    damaged[hole] = (255, 0, 255)
    telea = psnr(OpenCVInpainter("telea").inpaint(damaged, hole), truth, hole)
    ours = psnr(OpenCVInpainter("structure_texture").inpaint(damaged, hole), truth, hole)
    assert ours > telea + 1.5, (ours, telea)


def test_membrane_reproduces_a_linear_ramp_exactly():
    """Laplace's equation holds for a linear function, so the membrane must give it back (to rounding)."""
    y, x = np.mgrid[0:40, 0:50]
    ramp = np.stack([2 * x + 3, 3 * y + 10, 100 + x + 2 * y], -1).astype(np.uint8)
    hole = hole_mask(40, 50, box=(10, 8, 40, 30))
    out = opencv_inpaint.membrane(ramp, hole)
    assert np.abs(out - ramp).max() < 1e-6
    assert np.array_equal(out[~hole], ramp[~hole])


@pytest.mark.parametrize("shape", ["border", "components", "most_of_image", "thin_ring"])
def test_structure_texture_handles_any_hole_shape(shape):
    photo = noisy_photo(seed=11)
    h, w = photo.shape[:2]
    hole = np.zeros((h, w), bool)
    if shape == "border":  # touches two image edges
        hole[40:, 70:] = True
    elif shape == "components":  # three separate holes, one at the left edge
        hole[5:15, 5:20] = hole[30:50, 40:70] = hole[55:70, 0:10] = True
    elif shape == "most_of_image":  # only a 6 px frame (and one corner block) stays known
        hole[6:-6, 6:-6] = True
        hole[:20, :20] = True
    else:  # a seam-pass-like ring
        from uplift.core.compositing import seam_ring
        hole = seam_ring(hole_mask(h, w, box=(30, 20, 70, 50)), 2)
    damaged = photo.copy()
    damaged[hole] = (255, 0, 255)
    out = OpenCVInpainter("structure_texture").inpaint(damaged, hole)
    assert np.array_equal(out[~hole], damaged[~hole])
    # The magenta is gone everywhere, and the fill follows the photo's gradient.
    assert not np.any(np.all(out[hole] == (255, 0, 255), axis=-1))
    assert psnr(out, photo, hole) > psnr(damaged, photo, hole) + 6


def test_structure_texture_on_a_whole_image_hole_returns_the_input():
    """No known pixel: nothing to continue, so the (validated) input comes back rather than an error."""
    photo = noisy_photo()
    out = OpenCVInpainter("structure_texture").inpaint(photo, np.ones(photo.shape[:2], bool))
    assert np.array_equal(out, photo)


@pytest.mark.skipif(not HAS_PATCHMATCH, reason="pypatchmatch not installed")
def test_structure_texture_detail_fades_into_the_hole(monkeypatch):
    """Next to the rim the plate carries PatchMatch's texture, deep inside it is the smooth membrane;
    without pypatchmatch the method is the membrane alone."""
    photo = noisy_photo(seed=4)
    hole = hole_mask(box=(20, 10, 80, 62))  # 60 x 52: its centre is 26 px from the rim (detail e^-8.7)
    out = OpenCVInpainter("structure_texture").inpaint(photo, hole).astype(np.float64)
    smooth = opencv_inpaint.membrane(photo, hole)
    import cv2

    depth = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5)
    near, deep = hole & (depth <= 2), hole & (depth >= 15)
    assert np.abs(out - smooth)[near].mean() > 3        # texture at the rim
    assert np.abs(out - smooth)[deep].max() <= 1         # rounding only, deep inside
    find_spec = opencv_inpaint.importlib.util.find_spec
    monkeypatch.setattr(opencv_inpaint.importlib.util, "find_spec",
                        lambda name, *a: None if name == "patchmatch" else find_spec(name, *a))
    plain = OpenCVInpainter("structure_texture").inpaint(photo, hole)
    assert np.array_equal(plain, np.where(hole[..., None], np.clip(np.rint(smooth), 0, 255), photo).astype(np.uint8))


def test_the_seam_ring_of_structure_texture_is_its_membrane():
    """The seam pass (a ring a few px wide round the composited object) takes the smooth membrane:
    a one-level change of the composite must not swap PatchMatch's copied patches there."""
    from uplift.core.compositing import seam_ring
    from uplift.services.local import LocalServices

    image, mask = noisy_photo(), hole_mask()
    services = LocalServices(ServerConfig(inpaint="structure_texture"))
    seamed = services.inpaint(image, mask, mode="seam", dilate=2)
    ring = seam_ring(mask, 2)
    expected = OpenCVInpainter("membrane").inpaint(image, ring)
    assert ring.sum() > 50 and np.array_equal(seamed, expected)
    nudged = image.copy()
    nudged[~ring] = np.clip(nudged[~ring].astype(int) + 1, 0, 255).astype(np.uint8)  # one level elsewhere
    assert np.abs(services.inpaint(nudged, mask, mode="seam", dilate=2).astype(int) - seamed)[ring].max() <= 1
    filled = services.inpaint(image, mask, mode="fill")  # the hole itself still gets the texture
    assert np.array_equal(filled, OpenCVInpainter("structure_texture").inpaint(image, mask))


def test_the_membrane_fills_a_thin_ring_round_a_large_object_at_full_resolution():
    """Its cost is the ring's pixels: the crop round a 2000 px object is not shrunk (a shrunk ring
    comes back blurred from a wider neighbourhood): equal to the membrane solved on the whole image."""
    from uplift.core.compositing import seam_ring

    h, w = 2200, 2400
    image = np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)
    inside = np.zeros((h, w), bool)
    inside[100:2100, 200:2200] = True
    ring = seam_ring(inside, 2)
    out = OpenCVInpainter("membrane").inpaint(image, ring)
    reference = np.clip(np.rint(opencv_inpaint.membrane(image, ring)), 0, 255)
    assert np.abs(out.astype(int) - reference)[ring].max() <= 1
