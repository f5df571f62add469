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


def _rasterization():
    if not torch.cuda.is_available():
        raise RenderBackendError("the gsplat renderer needs a CUDA GPU and torch sees none; use --backend torch")
    try:
        from gsplat import rasterization
    except Exception as exc:
        raise RenderBackendError(f"the gsplat renderer cannot load: {exc}") from None
    return rasterization


def _camera_args(cam: Camera, dev) -> dict:
    return dict(viewmats=torch.as_tensor(cam.world_to_camera, dtype=torch.float32, device=dev)[None],
                Ks=torch.as_tensor(cam.K, dtype=torch.float32, device=dev)[None], width=cam.width,
                height=cam.height, near_plane=NEAR_PLANE, eps2d=EPS2D, rasterize_mode="classic", packed=False)


def rasterize_gsplat(g: Gaussians, cam: Camera, extra: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """-> (premultiplied colour [H, W, 3 (+ E)], alpha [H, W], accumulated depth [H, W]) on CUDA.
    `extra` [N, E]: photo features composited as further channels (column 0, the weight u the
    photo takes, scales the colour by 1 - u), as the torch backend does."""
    rasterization = _rasterization()
    if extra is None:
        colors, sh_degree = g.sh.float(), g.sh_degree
    else:  # arbitrary feature channels: gsplat composites `colors` [N, D] as they are when sh_degree is None
        from .sh import sh_to_rgb

        center = torch.as_tensor(cam.center, dtype=torch.float32, device=g.device)
        rgb = sh_to_rgb(g.sh.float(), g.means.float(), center) * (1.0 - extra[:, :1].float())
        colors, sh_degree = torch.cat((rgb, extra.float()), 1), None
    out, alphas, _ = rasterization(
        means=g.means.float(), quats=g.quats.float(), scales=g.scales.float(), opacities=g.opacities.float(),
        colors=colors, sh_degree=sh_degree, render_mode="RGB+D", **_camera_args(cam, g.device),
    )
    return out[0, ..., :-1], alphas[0, ..., 0], out[0, ..., -1]


def gsplat_weight_sums(g: Gaussians, cam: Camera) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """-> (each Gaussian's total compositing weight [N], its conic [N, 3], projected [N] bool,
    depth sum [H, W], alpha [H, W]): what `reprojection.visibility_from_weights` needs. The
    per-Gaussian sum of compositing weights is the gradient of the rendered sum of a ones
    channel with respect to that channel."""
    rasterization = _rasterization()
    ones = torch.ones((len(g), 1), device=g.device, requires_grad=True)
    with torch.enable_grad():
        out, alphas, meta = rasterization(
            means=g.means.float().detach(), quats=g.quats.float().detach(), scales=g.scales.float().detach(),
            opacities=g.opacities.float().detach(), colors=ones, sh_degree=None, render_mode="RGB+D",
            **_camera_args(cam, g.device),
        )
        out[..., 0].sum().backward()
    projected = (meta["radii"][0] > 0).reshape(len(g), -1).any(1)
    return (ones.grad[:, 0], meta["conics"][0].float().detach(), projected, out[0, ..., 1].detach(),
            alphas[0, ..., 0].detach())
