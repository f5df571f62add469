"""`LocalServices`: the `Services` protocol answered by in-process backends.

Used by the command line (no server needed), by tests, and by `uplift serve`, whose
endpoints only decode bytes and call these methods — so the CLI and the server
validate input and contain backend failures in exactly the same way.
"""
from __future__ import annotations

import threading

import numpy as np

from ..core.errors import BackendFailedError, CameraError, ImageFormatError, MaskError, UpliftError
from ..core.image_io import check_pixel_count
from . import protocol as P
from .api import SegmentResult
from .config import ServerConfig
from .errors import BackendNotLoadedError, BackendOutOfMemoryError, InvalidRequestError

MAX_DILATE = 1024     # pixels; larger asks are refused as absurd
MAX_POINTS = 256


class LocalServices:
    def __init__(self, config: ServerConfig = ServerConfig(), *, segmenter=None, lifter=None, inpainter=None) -> None:
        self.config = config
        self._backends = {"segment": segmenter, "lift": lifter, "inpaint": inpainter}
        self._lock = threading.Lock()

    # -- backends -------------------------------------------------------------------
    def backend(self, kind: str):
        """The loaded backend for 'segment' | 'lift' | 'inpaint', loading it on first use."""
        from .backends.registry import BUILDERS

        with self._lock:
            if self._backends[kind] is None:
                name = getattr(self.config, kind)
                if name == "none":
                    raise BackendNotLoadedError(f"this Uplift service runs without a {kind} backend "
                                                f"(started with --{kind} none)")
                self._backends[kind] = BUILDERS[kind](self.config)
            return self._backends[kind]

    def load_all(self) -> None:
        """Load every configured backend now (the server does this at start-up: fail fast)."""
        for kind in self._backends:
            if getattr(self.config, kind) != "none" or self._backends[kind] is not None:
                self.backend(kind)

    def loaded(self) -> dict[str, str | None]:
        return {kind: getattr(b, "name", type(b).__name__) if b is not None else None
                for kind, b in self._backends.items()}

    # -- services -----------------------------------------------------------------------
    def segment(self, image, points=None, labels=None, box=None) -> SegmentResult:
        self.check_image(image)
        h, w = image.shape[:2]
        pts, lab, box = _prompts(points, labels, box, w, h)
        segmenter = self.backend("segment")
        result = _contained(segmenter.name, lambda: segmenter.segment(image, pts, lab, box))
        mask = np.asarray(result.mask)
        if mask.shape != (h, w):
            raise BackendFailedError(f"the {segmenter.name} backend returned a {mask.shape} mask for a {w}x{h} image")
        return SegmentResult(mask.astype(bool), float(result.score))

    def lift(self, image, mask, camera, mesh=None):
        """mesh: a `backends.mesh_lift.MeshLiftConfig` to lift onto that mesh instead of the configured
        lifter (the server's answer to an uploaded mesh)."""
        import torch

        self.check_image(image)
        mask = self.check_mask(mask, image)
        if (camera.width, camera.height) != (image.shape[1], image.shape[0]):
            raise CameraError(f"the camera is {camera.width}x{camera.height} but the image is "
                              f"{image.shape[1]}x{image.shape[0]}")
        if mesh is None:
            lifter = self.backend("lift")
        else:
            from .backends.mesh_lift import MeshLifter

            lifter = _contained("mesh", lambda: MeshLifter(mesh, self.config.device))
        g = _contained(lifter.name, lambda: lifter.lift(image, mask, camera))
        if len(g) == 0:
            raise BackendFailedError(f"the {lifter.name} backend produced no Gaussians")
        if not all(torch.isfinite(t).all() for t in (g.means, g.quats, g.log_scales, g.opacity_logits, g.sh)):
            raise BackendFailedError(f"the {lifter.name} backend produced NaN or infinite Gaussians")
        return g.to("cpu")

    def inpaint(self, image, mask, mode: str = "fill", dilate: int = 0, prompt: str | None = None) -> np.ndarray:
        from ..core.compositing import SEAM_WIDTH, dilate as grow, seam_ring

        self.check_image(image)
        mask = self.check_mask(mask, image)
        if mode not in P.INPAINT_MODES:
            raise InvalidRequestError(f"inpaint mode must be one of {', '.join(P.INPAINT_MODES)}, not {mode!r}")
        if isinstance(dilate, bool) or not isinstance(dilate, (int, np.integer)) or not 0 <= dilate <= MAX_DILATE:
            raise InvalidRequestError(f"dilate must be an integer number of pixels in 0..{MAX_DILATE}, not {dilate!r}")
        inpainter = self.backend("inpaint")
        if prompt is not None and not isinstance(prompt, str):
            raise InvalidRequestError("prompt must be text")
        prompt = prompt.strip() if prompt else None
        if inpainter.takes_prompt and not prompt:
            raise InvalidRequestError(f"the {inpainter.name} inpainting backend needs a prompt describing the "
                                      "background to paint (e.g. 'empty street')")
        region = seam_ring(mask, int(dilate) or SEAM_WIDTH) if mode == "seam" else grow(mask, int(dilate))
        if mode == "seam" and hasattr(inpainter, "for_seam"):
            inpainter = inpainter.for_seam()
        out = _contained(inpainter.name, lambda: inpainter.inpaint(image, region, prompt))
        out = np.asarray(out)
        if out.shape != image.shape or out.dtype != np.uint8:
            raise BackendFailedError(f"the {inpainter.name} backend returned {out.dtype} {out.shape} "
                                     f"for a uint8 {image.shape} image")
        return np.where(region[..., None], out, image)  # only the region may change

    # -- validation -----------------------------------------------------------------------
    def check_image(self, image) -> None:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ImageFormatError("the image must be uint8 RGB [H, W, 3]")
        h, w = image.shape[:2]
        if h == 0 or w == 0:
            raise ImageFormatError("the image is empty (0x0 pixels)")
        check_pixel_count(w, h, "image", self.config.max_pixels)

    @staticmethod
    def check_mask(mask, image) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.shape != image.shape[:2]:
            got = f"{mask.shape[1]}x{mask.shape[0]}" if mask.ndim == 2 else str(mask.shape)
            raise MaskError(f"the mask is {got} but the image is {image.shape[1]}x{image.shape[0]}")
        mask = mask.astype(bool)
        if not mask.any():
            raise MaskError("the mask is empty: no pixel is selected")
        return mask


def _prompts(points, labels, box, w: int, h: int):
    """Validate prompts -> (points float [P, 2], labels int [P], box float [4] clipped | None)."""
    try:
        pts = np.zeros((0, 2)) if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 2)
        lab = np.ones(len(pts), np.int64) if labels is None else np.asarray(labels, dtype=np.float64).reshape(-1)
        bx = None if box is None else np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidRequestError("points must be [[x, y], ...], labels [0|1, ...] and box [x0, y0, x1, y1]") from None
    if len(pts) > MAX_POINTS:
        raise InvalidRequestError(f"at most {MAX_POINTS} points per request, got {len(pts)}")
    if lab.shape != (len(pts),):
        raise InvalidRequestError(f"{len(pts)} points need {len(pts)} labels, got {lab.size}")
    if not np.isin(lab, (0, 1)).all():
        raise InvalidRequestError("point labels must be 1 (foreground) or 0 (background)")
    if len(pts) == 0 and bx is None:
        raise InvalidRequestError("give at least one point or a box to segment")
    if not np.isfinite(pts).all() or ((pts < 0) | (pts > [w, h])).any():
        raise InvalidRequestError(f"every point must lie inside the {w}x{h} image")
    if bx is not None:
        if bx.shape != (4,) or not np.isfinite(bx).all():
            raise InvalidRequestError("box must be four numbers x0, y0, x1, y1")
        x0, y0, x1, y1 = bx
        if x1 <= x0 or y1 <= y0:
            raise InvalidRequestError(f"box {bx.tolist()} is empty: need x0 < x1 and y0 < y1")
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise InvalidRequestError(f"box {bx.tolist()} lies outside the {w}x{h} image")
        bx = np.clip(bx, 0, [w, h, w, h])
    if len(pts) and not (lab == 1).any() and bx is None:
        raise InvalidRequestError("background points alone do not say what to segment: add a foreground point or a box")
    return pts, lab.astype(np.int64), bx


def _contained(name: str, fn):
    """Run backend code: domain errors pass through; out-of-memory and any other crash
    become BackendOutOfMemoryError / BackendFailedError so callers (and the server) keep going."""
    try:
        return fn()
    except UpliftError:
        raise
    except MemoryError:
        raise BackendOutOfMemoryError(f"the {name} backend ran out of memory; try a smaller image") from None
    except Exception as exc:  # third-party model code: anything may come out
        if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
            _free_cuda_memory()
            raise BackendOutOfMemoryError(
                f"the {name} backend ran out of GPU memory; the server freed its cache and keeps running — "
                "try a smaller image, close other GPU programs, or start it with --device cpu") from None
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise BackendFailedError(f"the {name} backend failed: {type(exc).__name__}: {first}") from None


def _free_cuda_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
