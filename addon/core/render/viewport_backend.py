"""The 'viewport' render backend: the GPU splat shader of the Blender layer
(`blender/splat_draw.py`), drawn offscreen through Blender's `gpu` module.

The core stays bpy-free and does not import the Blender layer: the Blender layer provides
its offscreen draw (`core.render_backends.provide('viewport', ...)`) when it registers, and the
`uplift render --backend viewport` command asks it to. Without it (no bpy, or nothing
registered) this backend is a `RenderBackendError` saying what is missing.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..camera import Camera
from ..errors import RenderBackendError
from ..gaussians import Gaussians
from ..render_backends import provided

NEEDS_BPY = "the viewport renderer needs Blender's bpy module (pip install bpy)"
NOT_PROVIDED = (f"{NEEDS_BPY} with Uplift's Blender layer registered (enable the extension, or call "
                "uplift.blender.splat_draw.provide_render_backend())")


def rasterize_viewport(g: Gaussians, cam: Camera, extra: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """-> (premultiplied colour [H, W, 3 (+ E)], alpha [H, W], depth sum [H, W]) like the other
    backends; `extra` [N, E] photo features composited as further channels."""
    draw = provided("viewport")
    if draw is None:
        raise RenderBackendError(NOT_PROVIDED)
    color, alpha, depth_sum = draw(g.to("cpu"), cam, depth=True,
                                   features=None if extra is None else extra.detach().cpu().numpy())
    return tuple(torch.from_numpy(x).to(g.device) for x in (color, alpha, depth_sum))
