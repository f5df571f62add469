"""Backend protocols and the registry that builds them from a `ServerConfig`.

Shapes: images uint8 [H, W, 3] RGB; masks bool [H, W]; points float [P, 2] pixels
(x, y) with labels int [P] (1 foreground, 0 background); box float [4] (x0, y0, x1, y1).
"""
from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

import numpy as np

from ...core.errors import BackendUnavailableError
from ..api import SegmentResult


@runtime_checkable
class Segmenter(Protocol):
    name: str

    def segment(self, image: np.ndarray, points: np.ndarray, labels: np.ndarray,
                box: np.ndarray | None) -> SegmentResult: ...


@runtime_checkable
class Lifter(Protocol):
    name: str

    def lift(self, image: np.ndarray, mask: np.ndarray, camera): ...  # -> Gaussians placed in camera's world


@runtime_checkable
class Inpainter(Protocol):
    name: str
    takes_prompt: bool

    def inpaint(self, image: np.ndarray, region: np.ndarray, prompt: str | None) -> np.ndarray:
        """Fill `region` (bool [H, W]) -> uint8 [H, W, 3]; pixels outside may be altered by the model,
        the caller restores them."""


def require_module(module: str, backend: str, hint: str):
    """Import `module` or fail with an install hint naming the backend."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(f"the {backend} backend needs the Python package '{module}' ({exc}); {hint}") from None


def require_path(path, backend: str, what: str, *, directory: bool = False):
    from pathlib import Path

    if path is None:
        raise BackendUnavailableError(f"the {backend} backend needs {what}; nothing is downloaded")
    path = Path(path)
    if directory and not path.is_dir():
        raise BackendUnavailableError(f"the {backend} backend needs {what}: {path} is not a folder")
    if not directory and not path.is_file():
        raise BackendUnavailableError(f"the {backend} backend needs {what}: {path} is not a file")
    return path


def build_segmenter(config) -> Segmenter | None:
    if config.segment == "grabcut":
        from .grabcut import GrabCutSegmenter
        return GrabCutSegmenter()
    if config.segment == "sam":
        from .sam import SamSegmenter
        return SamSegmenter(config.sam_checkpoint, config.sam_model_type, config.device)
    return None


def build_lifter(config) -> Lifter | None:
    if config.lift == "inflate":
        from .inflate import InflateLifter
        return InflateLifter(device=config.device)
    if config.lift == "trellis":
        from .trellis import TrellisLifter
        return TrellisLifter(config.trellis_model, config.device, seed=config.seed)
    return None


def build_inpainter(config) -> Inpainter | None:
    if config.inpaint in ("telea", "ns", "fsr_fast", "fsr_best", "patchmatch"):
        from .opencv_inpaint import OpenCVInpainter
        return OpenCVInpainter(config.inpaint)
    if config.inpaint == "lama":
        from .lama import LamaInpainter
        return LamaInpainter(config.lama_model, config.device)
    if config.inpaint == "diffusers":
        from .diffusers_inpaint import DiffusersInpainter
        return DiffusersInpainter(config.diffusers_model, config.device, seed=config.seed, steps=config.diffusers_steps)
    return None
