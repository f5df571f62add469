"""The 'viewport' render backend: the GPU splat shader of the Blender layer
(`blender/splat_draw.py`), drawn offscreen through Blender's `gpu` module.

The core stays bpy-free: bpy is imported only when this backend is asked for, and its
absence (or a Blender that cannot start the GPU in background mode) is a
`RenderBackendError` naming what is missing.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..camera import Camera
from ..errors import RenderBackendError
from ..gaussians import Gaussians


def rasterize_viewport(g: Gaussians, cam: Camera, extra: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """-> (premultiplied colour [H, W, 3 (+ E)], alpha [H, W], depth sum [H, W]) like the other
    backends; `extra` [N, E] photo features composited as further channels."""
    try:
        from ...blender import splat_draw
    except ImportError as exc:
        raise RenderBackendError(f"the viewport renderer needs Blender's bpy module (pip install bpy): {exc}") from None
    color, alpha, depth_sum = splat_draw.render_offscreen(
        g.to("cpu"), cam, depth=True, features=None if extra is None else extra.detach().cpu().numpy())
    return tuple(torch.from_numpy(x).to(g.device) for x in (color, alpha, depth_sum))
