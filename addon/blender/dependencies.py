"""Which Python packages the extension needs that Blender's own Python may lack.

Blender ships numpy but not torch, pillow, scipy or OpenCV. The extension registers
without them and the panel and preferences list what is missing (see README,
"Torch inside Blender"). Checking uses `importlib.util.find_spec`, so nothing heavy
is imported just to draw the UI.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    module: str        # import name
    package: str       # pip name
    needed_for: str    # what stops working without it


REQUIREMENTS = (
    Requirement("numpy", "numpy<2", "everything"),
    Requirement("torch", "torch", "lifting, posing (ARAP) and rendering the Gaussians"),
    Requirement("PIL", "pillow", "reading photos and masks"),
    Requirement("scipy", "scipy", "building the control graph"),
    Requirement("cv2", "opencv-python-headless", "mask dilation and compositing"),
)

_cache: tuple[Requirement, ...] | None = None


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(refresh: bool = False) -> tuple[Requirement, ...]:
    """The requirements that cannot be imported here (cached until `refresh`)."""
    global _cache
    if _cache is None or refresh:
        _cache = tuple(r for r in REQUIREMENTS if not _importable(r.module))
    return _cache


def add_search_path(path: str) -> bool:
    """Let Blender's Python import from `path` (a site-packages of a Python 3.11 venv).
    Returns True when it was added now."""
    if path and path not in sys.path:
        sys.path.append(path)
        missing(refresh=True)
        return True
    return False


def install_hint() -> str:
    packages = " ".join(f'"{r.package}"' for r in missing())
    return (f"{sys.executable} -m pip install {packages}   (or set 'Extra Python packages' in the "
            "preferences to a Python 3.11 site-packages folder that has them)")


def missing_message() -> str:
    """One line for a poll message or report; empty when nothing is missing."""
    absent = missing()
    if not absent:
        return ""
    names = ", ".join(r.package for r in absent)
    return f"Missing Python packages in Blender: {names} (see Uplift's preferences)"
