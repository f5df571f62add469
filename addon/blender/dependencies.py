"""Which Python packages the extension needs that Blender's own Python may lack, and where
they can come from.

Blender ships numpy but not torch, pillow, scipy or OpenCV. The extension registers
without them and the panel and preferences list what is missing (see README,
"Torch inside Blender"). Checking uses `importlib.util.find_spec`, so nothing heavy
is imported just to draw the UI. Install Dependencies puts them in the extension's own
site-packages folder (`site_packages()`), which joins `sys.path` at register; an "Extra
Python Packages" folder built for another Python is refused (`use_folder`).
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
    optional: bool = False  # installed by the button, but no step is disabled without it


REQUIREMENTS = (
    Requirement("numpy", "numpy", "everything"),  # Blender ships it: never replaced, only constrained to it
    Requirement("torch", "torch", "lifting, posing (ARAP) and rendering the Gaussians"),
    Requirement("PIL", "pillow", "reading photos and masks"),
    Requirement("scipy", "scipy", "building the control graph"),
    Requirement("cv2", "opencv-python-headless", "mask dilation and compositing"),
    Requirement("OpenEXR", "OpenEXR", "the multilayer layers.exr of Compose & Export", optional=True),
    Requirement("gsply", "gsply", ".spz files of Export Posed Splats (.ply needs nothing)", optional=True),
)

_cache: tuple[Requirement, ...] | None = None

# The last Install Dependencies run (`services.pip_install.PipRun`, at most one running) and the
# modules it installs: the operator starts it, the preferences draw its progress and Cancel button.
install_run: dict = {"run": None, "modules": set()}


def running_install():
    """The PipRun still running, or None."""
    run = install_run["run"]
    return run if run is not None and not run.done.is_set() else None


def importable(module: str) -> bool:
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
        _cache = tuple(r for r in REQUIREMENTS if not importable(r.module))
    return _cache


def add_search_path(path: str) -> bool:
    """Let Blender's Python import from `path`. Returns True when it was added now."""
    if path and path not in sys.path:
        sys.path.append(path)
        importlib.invalidate_caches()
        missing(refresh=True)
        return True
    return False


# Why the "Extra Python Packages" folder was refused ("" when it was not), shown in the preferences.
extra_folder_problem = {"text": ""}


def use_folder(path: str) -> str:
    """Add the "Extra Python Packages" folder `path` to sys.path unless it was built for another
    Python; returns the refusal ("" when added or empty)."""
    from ..services.pip_install import folder_mismatch

    problem = folder_mismatch(path) if path else ""
    extra_folder_problem["text"] = problem
    if not problem:
        add_search_path(path)
    return problem


def site_packages(create: bool = True) -> str:
    """The extension's own site-packages folder (Install Dependencies writes there); "" when
    the package was not enabled as an extension (a script's `import uplift`)."""
    import bpy

    package = __package__.rpartition(".")[0]
    try:
        return bpy.utils.extension_path_user(package, path="site-packages", create=create)
    except (ValueError, RuntimeError, TypeError):
        return ""


def pip_packages(absent) -> tuple[str, ...]:
    """pip requirement strings for the missing requirements."""
    return tuple(r.package for r in absent)


def numpy_constraint() -> tuple[str, ...]:
    """Pin numpy to Blender's own, so pip neither upgrades nor shadows it (scipy and OpenCV
    depend on numpy and `--target` would otherwise fetch the newest)."""
    try:
        from importlib.metadata import version

        return (f"numpy=={version('numpy')}",)
    except Exception:  # noqa: BLE001 - no numpy metadata: let pip choose
        return ()


def install_hint() -> str:
    packages = " ".join(f'"{r.package}"' for r in missing())
    return (f"Preferences > Add-ons > Uplift > Install Dependencies (or: {sys.executable} -m pip install "
            f"{packages}, or set 'Extra Python Packages' to a Python {sys.version_info[0]}.{sys.version_info[1]} "
            "site-packages folder that has them)")


def missing_message() -> str:
    """One line for a poll message or report; empty when nothing is missing."""
    absent = [r for r in missing() if not r.optional]
    if not absent:
        return ""
    names = ", ".join(r.package for r in absent)
    return f"Missing Python packages in Blender: {names} (see Uplift's preferences)"
