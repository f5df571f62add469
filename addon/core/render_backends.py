"""Which renderer draws (`core.render`): the backend names, what 'auto' means here, and the
renderers other layers provide.

The 'viewport' renderer is the Blender layer's GLSL splat shader (`blender/splat_draw.py`):
the core never imports it. The Blender layer hands its offscreen draw in with `provide`
when it registers (and the `uplift render --backend viewport` command asks it to), so
`core/` stays bpy-free and free of import cycles. This module sits beside the `render`
package, not in it, and imports torch only when resolving: the extension registers (and
provides) without torch, and any module inside `render/` would import the package's torch.
"""
from __future__ import annotations

from typing import Callable

from .errors import ConfigError, RenderBackendError

BACKENDS = ("auto", "torch", "gsplat", "viewport")

# name -> draw(gaussians_cpu, camera, *, depth: bool, features: np.ndarray | None)
#   -> (premultiplied colour [H, W, 3 (+ E)], alpha [H, W], depth sum [H, W]) numpy float32
_provided: dict[str, Callable] = {}


def provide(name: str, draw: Callable) -> None:
    """Register the renderer `name` (the Blender layer's 'viewport', at its register time)."""
    _provided[name] = draw


def withdraw(name: str) -> None:
    """Forget the renderer `name` (the Blender layer's unregister)."""
    _provided.pop(name, None)


def provided(name: str) -> Callable | None:
    return _provided.get(name)


def resolve_backend(backend: str) -> str:
    """'auto' -> 'gsplat' with CUDA and an importable gsplat, else 'torch'; 'torch' and 'viewport'
    as asked. Raises for gsplat without CUDA."""
    if backend not in BACKENDS:
        raise ConfigError(f"render backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend in ("torch", "viewport"):
        return backend
    import torch

    if not torch.cuda.is_available():
        if backend == "gsplat":
            raise RenderBackendError("the gsplat renderer needs a CUDA GPU and torch sees none; use --backend torch")
        return "torch"
    if backend == "auto":
        from .render.gsplat_backend import gsplat_available

        return "gsplat" if gsplat_available() else "torch"
    return "gsplat"
