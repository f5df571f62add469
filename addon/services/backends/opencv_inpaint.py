"""Embedded hole fillers, no model files: OpenCV's cv2.inpaint ('telea', 'ns'), OpenCV contrib's
frequency-selective reconstruction ('fsr_fast', 'fsr_best', `cv2.xphoto.inpaint`), PatchMatch
('patchmatch', the optional `pypatchmatch` package) and 'structure_texture' (a smooth membrane plus
PatchMatch's texture detail near the rim; 'membrane' alone, which is also what it fills a seam ring with).

Telea and NS diffuse the rim's colours inwards (smooth, streaky in large holes); FSR and PatchMatch
synthesise texture. FSR and PatchMatch cost grows with the image, so they run on a crop around the
hole (plus a margin of context), shrunk to at most `max_pixels` when larger, and the result is
upsampled back only inside the hole. Every filler returns the input unchanged outside the region.

'structure_texture' splits the fill into two bands. The low band is the harmonic membrane (Laplace's
equation inside the hole, the known pixels as boundary values): the smoothest surface meeting the rim,
with no radial streaks. The high band is PatchMatch's plate minus its blur, added with an amplitude
exp(-d / DETAIL_DECAY) at distance d from the nearest known pixel: next to the rim the synthesised
texture continues the real one (no smooth blob edge), deeper in it is a guess uncorrelated with the
lost background, and full-amplitude guessed texture doubles the expected squared error of a smooth fill.
Without `pypatchmatch` the method is the membrane alone.
"""
from __future__ import annotations

import importlib.util

import numpy as np

from ...core.errors import ImageFormatError, MaskError

RADIUS = 5  # cv2.inpaint: neighbourhood considered for each filled pixel, in pixels
CONTEXT_MARGIN = 0.25  # crop margin around the hole's bounding box, as a fraction of its longer side ...
MIN_MARGIN = 16        # ... but at least this many pixels of context
# Crop pixel budgets (measured: FSR_BEST is ~15x slower than FSR_FAST; see bench.quality's filler table).
MAX_PIXELS = {"fsr_fast": 60_000, "fsr_best": 15_000, "patchmatch": 250_000, "structure_texture": 120_000}
# The membrane's cost is its unknowns (one sparse solve), not the crop: a seam ring round a large
# object stays at full resolution, a large hole is shrunk to this many unknowns.
MEMBRANE_UNKNOWNS = 400_000
PATCHMATCH_PATCH = 3   # patch radius: (2 * 3 + 1)^2 px patches
PATCHMATCH_SEED = 0    # fixed, so the same input always gives the same plate
# structure_texture: the detail band is PatchMatch's plate minus its Gaussian blur at this sigma (px) ...
DETAIL_SIGMA = 2.0
# ... faded as exp(-d / DETAIL_DECAY) with the distance d (px) into the hole: a synthesised patch agrees
# with the lost texture only about one patch radius beyond the rim.
DETAIL_DECAY = float(PATCHMATCH_PATCH)
METHODS = ("telea", "ns", "fsr_fast", "fsr_best", "patchmatch", "structure_texture", "membrane")


class OpenCVInpainter:
    takes_prompt = False

    def __init__(self, method: str = "telea") -> None:
        if method not in METHODS:
            raise ValueError(f"embedded inpainting method must be one of {', '.join(METHODS)}, not {method!r}")
        if method == "patchmatch":
            from .base import require_module

            require_module("patchmatch", "patchmatch", "install it with `pip install pypatchmatch`")
        self.name = method

    def for_seam(self) -> "OpenCVInpainter":
        """The filler of the thin seam ring round a composited object. structure_texture's PatchMatch
        detail is at full strength there (every pixel is within 2 px of a known one) and mostly
        wrong: the ring straddles the object's edge, and a one-level change of its input can swap
        the patches it copies (Blender's layers vs the CLI's). Its smooth membrane fills the ring:
        measured +0.35 dB over Telea on the bench's seam ring, structure_texture -0.16."""
        return OpenCVInpainter("membrane") if self.name == "structure_texture" else self

    def inpaint(self, image: np.ndarray, region: np.ndarray, prompt: str | None = None) -> np.ndarray:
        image, region = _checked(image, region)
        if not region.any():
            return image.copy()
        if self.name in ("telea", "ns"):
            filled = _cv2_inpaint(image, region, self.name)
        elif self.name == "membrane":
            filled = fill_in_crop(image, region, _FILLERS[self.name], None, max_unknowns=MEMBRANE_UNKNOWNS)
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


def fill_in_crop(image: np.ndarray, region: np.ndarray, fill, max_pixels: int | None,
                 max_unknowns: int | None = None) -> np.ndarray:
    """Run `fill(crop uint8 [h, w, 3], hole bool [h, w]) -> uint8 [h, w, 3]` on the hole's bounding
    box plus context, at a scale that keeps the crop under `max_pixels`; -> uint8 [H, W, 3], equal to
    `image` outside the crop (inside the crop but outside the hole the caller keeps the input).
    max_unknowns: shrink instead so that the hole keeps at most this many pixels (None: no limit)."""
    import cv2

    H, W = region.shape
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    margin = max(MIN_MARGIN, int(CONTEXT_MARGIN * max(y1 - y0, x1 - x0)))
    y0, x0 = max(0, y0 - margin), max(0, x0 - margin)
    y1, x1 = min(H, y1 + margin), min(W, x1 + margin)
    crop, hole = image[y0:y1, x0:x1], region[y0:y1, x0:x1]
    h, w = hole.shape
    scale = 1.0 if max_pixels is None else min(1.0, (max_pixels / (h * w)) ** 0.5)
    if max_unknowns is not None:
        scale = min(scale, (max_unknowns / max(int(hole.sum()), 1)) ** 0.5)
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


def membrane(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The harmonic fill: inside `hole`, the solution of Laplace's equation (each pixel the mean of its
    4 neighbours) with the known pixels as fixed boundary values and no flux across the image border.
    uint8 [h, w, 3], bool [h, w] -> float64 [h, w, 3], equal to `image` outside the hole. A hole
    with no known pixel at all (the whole image) has no boundary values: it is returned unchanged."""
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import splu

    out = image.astype(np.float64)
    if hole.all():
        return out
    h, w = hole.shape
    ys, xs = np.nonzero(hole)
    n = len(ys)
    index = np.full((h, w), -1, np.int64)
    index[ys, xs] = np.arange(n)
    diag = np.zeros(n)
    rhs = np.zeros((n, image.shape[2]))
    rows, cols = [], []
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)  # off-image neighbours: no equation term
        diag += inside
        i, ny, nx = np.nonzero(inside)[0], ny[inside], nx[inside]
        unknown = hole[ny, nx]
        rows.append(i[unknown])
        cols.append(index[ny[unknown], nx[unknown]])
        np.add.at(rhs, i[~unknown], out[ny[~unknown], nx[~unknown]])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    # Every hole component touches a known pixel (the hole is not the whole image), so A is non-singular.
    A = csc_matrix((np.concatenate([diag, -np.ones(len(rows))]),
                    (np.concatenate([np.arange(n), rows]), np.concatenate([np.arange(n), cols]))), shape=(n, n))
    out[ys, xs] = splu(A).solve(rhs)
    return out


def _structure_texture(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    import cv2

    fill = membrane(image, hole)
    if importlib.util.find_spec("patchmatch") is not None and not hole.all():
        texture = _patchmatch(image, hole).astype(np.float64)
        detail = texture - cv2.GaussianBlur(texture, (0, 0), DETAIL_SIGMA)
        depth = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5)  # px to the nearest known pixel
        fill += np.exp(-depth / DETAIL_DECAY)[..., None] * detail
    return _to_uint8(fill)


def _to_uint8(image: np.ndarray) -> np.ndarray:  # float [h, w, 3] -> uint8, rounded and clipped
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


_FILLERS = {"fsr_fast": lambda img, hole: _fsr(img, hole, best=False),
            "fsr_best": lambda img, hole: _fsr(img, hole, best=True),
            "patchmatch": _patchmatch,
            "structure_texture": _structure_texture,
            "membrane": lambda img, hole: _to_uint8(membrane(img, hole))}
