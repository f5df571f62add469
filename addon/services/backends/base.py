"""Backend protocols and the helpers backends share. The registry that builds backends
from a `ServerConfig` is `registry.py`: this module imports no backend, so any backend
can import it first.

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
