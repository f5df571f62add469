"""The gsplat (CUDA) backend: `gsplat.rasterization` in classic mode.

gsplat is imported lazily so that the core stays importable without it (inside
Blender, or on machines where its CUDA extension cannot build).
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

from ..camera import Camera
from ..errors import RenderBackendError
from ..gaussians import Gaussians
from .projection import EPS2D, NEAR_PLANE


@functools.lru_cache(maxsize=None)
def gsplat_available() -> bool:
    try:
        import gsplat  # noqa: F401
    except Exception:  # a broken CUDA extension raises more than ImportError
        return False
    return True


def rasterize_gsplat(g: Gaussians, cam: Camera) -> tuple[Tensor, Tensor, Tensor]:
    """-> (premultiplied colour [H, W, 3], alpha [H, W], accumulated depth [H, W]) on CUDA."""
    if not torch.cuda.is_available():
        raise RenderBackendError("the gsplat renderer needs a CUDA GPU and torch sees none; use --backend torch")
    try:
        from gsplat import rasterization
    except Exception as exc:
        raise RenderBackendError(f"the gsplat renderer cannot load: {exc}") from None
    dev = g.device
    viewmats = torch.as_tensor(cam.world_to_camera, dtype=torch.float32, device=dev)[None]
    Ks = torch.as_tensor(cam.K, dtype=torch.float32, device=dev)[None]
    colors, alphas, _ = rasterization(
        means=g.means.float(), quats=g.quats.float(), scales=g.scales.float(),
        opacities=g.opacities.float(), colors=g.sh.float(), viewmats=viewmats, Ks=Ks,
        width=cam.width, height=cam.height, near_plane=NEAR_PLANE, eps2d=EPS2D,
        sh_degree=g.sh_degree, render_mode="RGB+D", rasterize_mode="classic", packed=False,
    )
    return colors[0, ..., :3], alphas[0, ..., 0], colors[0, ..., 3]
