"""Embedded hole fillers, no model files: OpenCV's cv2.inpaint ('telea', 'ns'), OpenCV contrib's
frequency-selective reconstruction ('fsr_fast', 'fsr_best', `cv2.xphoto.inpaint`) and PatchMatch
('patchmatch', the optional `pypatchmatch` package).

Telea and NS diffuse the rim's colours inwards (smooth, streaky in large holes); FSR and PatchMatch
synthesise texture. FSR and PatchMatch cost grows with the image, so they run on a crop around the
hole (plus a margin of context), shrunk to at most `max_pixels` when larger, and the result is
upsampled back only inside the hole. Every filler returns the input unchanged outside the region.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ImageFormatError, MaskError

RADIUS = 5  # cv2.inpaint: neighbourhood considered for each filled pixel, in pixels
CONTEXT_MARGIN = 0.25  # crop margin around the hole's bounding box, as a fraction of its longer side ...
MIN_MARGIN = 16        # ... but at least this many pixels of context
# Crop pixel budgets (measured: FSR_BEST is ~15x slower than FSR_FAST; see bench.quality's filler table).
MAX_PIXELS = {"fsr_fast": 60_000, "fsr_best": 15_000, "patchmatch": 250_000}
PATCHMATCH_PATCH = 3   # patch radius: (2 * 3 + 1)^2 px patches
PATCHMATCH_SEED = 0    # fixed, so the same input always gives the same plate
METHODS = ("telea", "ns", "fsr_fast", "fsr_best", "patchmatch")


class OpenCVInpainter:
    takes_prompt = False

    def __init__(self, method: str = "telea") -> None:
        if method not in METHODS:
            raise ValueError(f"embedded inpainting method must be one of {', '.join(METHODS)}, not {method!r}")
        if method == "patchmatch":
            from .base import require_module

            require_module("patchmatch", "patchmatch", "install it with `pip install pypatchmatch`")
        self.name = method

    def inpaint(self, image: np.ndarray, region: np.ndarray, prompt: str | None = None) -> np.ndarray:
        image, region = _checked(image, region)
        if not region.any():
            return image.copy()
        if self.name in ("telea", "ns"):
            filled = _cv2_inpaint(image, region, self.name)
        else:
            filled = fill_in_crop(image, region, _FILLERS[self.name], MAX_PIXELS[self.name])
        return np.where(region[..., None], filled, image)  # outside the region: exactly the input


def _checked(image, region) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageFormatError(f"the image to inpaint must be uint8 RGB [H, W, 3], not {image.dtype} {image.shape}")
    region = np.asarray(region)
    if region.shape != image.shape[:2]:
        raise MaskError(f"the inpainting region is {region.shape} but the image is {image.shape[:2]}")
    return image, region.astype(bool)


def fill_in_crop(image: np.ndarray, region: np.ndarray, fill, max_pixels: int) -> np.ndarray:
    """Run `fill(crop uint8 [h, w, 3], hole bool [h, w]) -> uint8 [h, w, 3]` on the hole's bounding
    box plus context, at a scale that keeps the crop under `max_pixels`; -> uint8 [H, W, 3], equal to
    `image` outside the crop (inside the crop but outside the hole the caller keeps the input)."""
    import cv2

    H, W = region.shape
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    margin = max(MIN_MARGIN, int(CONTEXT_MARGIN * max(y1 - y0, x1 - x0)))
    y0, x0 = max(0, y0 - margin), max(0, x0 - margin)
    y1, x1 = min(H, y1 + margin), min(W, x1 + margin)
    crop, hole = image[y0:y1, x0:x1], region[y0:y1, x0:x1]
    h, w = hole.shape
    scale = min(1.0, (max_pixels / (h * w)) ** 0.5)
    if scale < 1.0:
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
        # Any hole pixel in a small pixel makes it a hole: no photo pixel of the object leaks back.
        small_hole = cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0
        filled = cv2.resize(fill(small, small_hole), (w, h), interpolation=cv2.INTER_CUBIC)
    else:
        filled = fill(crop, hole)
    out = image.copy()
    out[y0:y1, x0:x1] = np.where(hole[..., None], filled, crop)
    return out


def _cv2_inpaint(image: np.ndarray, hole: np.ndarray, method: str) -> np.ndarray:
    import cv2

    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    out = cv2.inpaint(np.ascontiguousarray(image[..., ::-1]), hole.astype(np.uint8) * 255, RADIUS, flag)
    return np.ascontiguousarray(out[..., ::-1])


def _fsr(image: np.ndarray, hole: np.ndarray, best: bool) -> np.ndarray:
    import cv2

    out = np.zeros_like(image)
    valid = (~hole).astype(np.uint8)  # xphoto's mask is the other way round: non-zero = known pixel
    algorithm = cv2.xphoto.INPAINT_FSR_BEST if best else cv2.xphoto.INPAINT_FSR_FAST
    cv2.xphoto.inpaint(np.ascontiguousarray(image[..., ::-1]), valid, out, algorithm)
    return np.ascontiguousarray(out[..., ::-1])


def _patchmatch(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    from patchmatch import patch_match

    patch_match.set_random_seed(PATCHMATCH_SEED)  # the native search is randomised: seed every call
    return np.asarray(patch_match.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255,
                                          patch_size=PATCHMATCH_PATCH))


_FILLERS = {"fsr_fast": lambda img, hole: _fsr(img, hole, best=False),
            "fsr_best": lambda img, hole: _fsr(img, hole, best=True),
            "patchmatch": _patchmatch}
