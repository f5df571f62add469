"""Render Gaussians through a `Camera`: one interface, two backends.

`render(g, cam, backend=...)` returns straight-alpha RGBA and expected depth.
- 'gsplat': `gsplat.rasterization(..., rasterize_mode="classic")` on CUDA;
- 'torch': the pure-torch tile rasteriser in `torch_backend.py` (CPU or CUDA);
- 'viewport': the GLSL splat shader through Blender's `gpu` module, offscreen
  (`viewport_backend.py`; needs bpy 5.2+ and the Blender layer, which provides it through
  `core.render_backends.provide` when it registers);
- 'auto': gsplat when CUDA is available, else torch (never 'viewport').

Both follow gsplat's classic 3DGS rules (see `projection.py` and
`torch_backend.py`): EWA projection with 0.3 px^2 dilation, pixel centres at
+0.5, alpha = min(0.999, o exp(-1/2 d^T Sigma^-1 d)) skipped below 1/255,
front-to-back by camera depth, stopping before transmittance reaches 1e-4,
colour = max(0, 0.5 + SH(view direction)), near-plane culling.

With `photo=PhotoSource(...)` the object takes the photo's own pixels wherever the photo
saw it (`reprojection.py`): every backend composites the extra per-Gaussian channels (the
viewport backend in further passes of its shader, `blender/splat_draw.py`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ..camera import Camera
from ..device import torch_cpu_threads
from ..errors import ConfigError
from ..gaussians import Gaussians
from ..render_backends import BACKENDS, resolve_backend

if TYPE_CHECKING:
    from .reprojection import PhotoLayers, PhotoSource


@dataclass(frozen=True)
class RenderConfig:
    backend: str = "auto"                 # 'auto' | 'torch' | 'gsplat' | 'viewport'
    background: tuple[float, float, float] | None = None  # RGB in [0, 1]; None: transparent
    scale: float = 1.0                    # preview scale of the output resolution, (0, 4]
    # CPU threads for the torch backend; 0 keeps torch's setting. One by default: the
    # renderer issues thousands of small parallel ops per frame, and when the cores are
    # shared (Blender busy, other jobs) each OpenMP barrier waits for a descheduled
    # thread: measured 5.5 s vs 0.9 s per 512^2 frame at load 12 on 2 cores.
    cpu_threads: int = 1

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"render backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if not 0 < self.scale <= 4:
            raise ConfigError(f"render scale must be in (0, 4], got {self.scale}")
        if not isinstance(self.cpu_threads, int) or self.cpu_threads < 0:
            raise ConfigError(f"cpu_threads must be a whole number >= 0, got {self.cpu_threads}")
        if self.background is not None:
            bg = tuple(float(v) for v in self.background)
            if len(bg) != 3 or not all(np.isfinite(v) and 0 <= v <= 1 for v in bg):
                raise ConfigError(f"background must be three numbers in [0, 1], got {self.background}")
            object.__setattr__(self, "background", bg)


@dataclass
class RenderResult:
    rgba: Tensor   # [H, W, 4] float32, straight alpha; RGB >= 0 (not clamped above, as in gsplat)
    depth: Tensor  # [H, W] float32 expected camera-space z of the visible Gaussians; 0 where alpha is 0
    camera: Camera  # the camera actually rendered (scaled for previews)
    # With a photo (reprojection): the photo pixel each pixel shows, the seen fraction of its
    # alpha (1: all photo, 0: all lifted colour), and the raw sums for resampling at another size.
    source_xy: Tensor | None = None  # [H, W, 2] photo pixels, centres at +0.5
    layers: "PhotoLayers | None" = None

    @property
    def alpha(self) -> Tensor:  # [H, W]
        return self.rgba[..., 3]

    @property
    def seen(self) -> Tensor | None:  # [H, W] in [0, 1] share of the colour the photo gives (resolved renders)
        """Made on demand: a frame's resolve works its own out over the object's box only."""
        if self.layers is None or self.source_xy is None:
            return None
        from .reprojection import photo_share

        return photo_share(self.layers)


def render(
    gaussians: Gaussians,
    camera: Camera,
    *,
    backend: str = "auto",
    background=None,        # RGB triple in [0, 1] or None for a transparent background
    scale: float = 1.0,
    device: torch.device | str | None = None,
    cpu_threads: int = 1,   # torch backend on CPU; 0 keeps torch's own thread count
    photo: "PhotoSource | None" = None,  # reproject this photo onto the (posed) Gaussians
    resolve_photo: bool = True,  # False: only `layers` (a caller resolving at another size); rgba is the lifted part
) -> RenderResult:
    config = RenderConfig(backend=backend, background=None if background is None else tuple(background), scale=scale,
                          cpu_threads=cpu_threads)
    name = resolve_backend(config.backend)
    cam = camera if config.scale == 1.0 else camera.scaled(config.scale)
    if device is None:
        device = torch.device("cuda") if name == "gsplat" else gaussians.device
    g = gaussians.to(device)

    with torch_cpu_threads(config.cpu_threads if name == "torch" and g.device.type == "cpu" else 0):
        if name == "torch":  # the features from the projection's own screen axes
            color, alpha, depth_sum = _rasterize_torch(g, cam, photo)
        else:
            extra = None
            if photo is not None:
                from .reprojection import photo_features

                extra = photo_features(g, cam, photo)
            if name == "gsplat":
                from .gsplat_backend import rasterize_gsplat

                color, alpha, depth_sum = rasterize_gsplat(g, cam, extra)
            else:
                from .viewport_backend import rasterize_viewport

                color, alpha, depth_sum = rasterize_viewport(g, cam, extra)
        layers = source_xy = None
        if photo is not None:
            from .reprojection import PhotoLayers, resolve

            layers = PhotoLayers(color[..., :3], color[..., 3], color[..., 4:6], color[..., 6:10], alpha)
            color = layers.lifted
            if resolve_photo:
                color, alpha, source_xy = resolve(layers, photo)

    raw_alpha = alpha if layers is None else layers.alpha  # depth is a sum over the rasterised weights
    covered = raw_alpha > 0
    depth = torch.where(covered, depth_sum / torch.where(covered, raw_alpha, torch.ones_like(raw_alpha)),
                        torch.zeros_like(depth_sum))
    visible = alpha > 0
    safe = torch.where(visible, alpha, torch.ones_like(alpha))
    if config.background is None:
        rgb = torch.where(visible[..., None], color / safe[..., None], torch.zeros_like(color))
        rgba = torch.cat((rgb, alpha[..., None]), dim=-1)
    else:
        bg = color.new_tensor(config.background)
        rgb = color + (1.0 - alpha[..., None]) * bg
        rgba = torch.cat((rgb, torch.ones_like(alpha)[..., None]), dim=-1)
    return RenderResult(rgba=rgba.float().contiguous(), depth=depth.float().contiguous(), camera=cam,
                        source_xy=source_xy, layers=layers)


def _rasterize_torch(g: Gaussians, cam: Camera, photo: "PhotoSource | None" = None) -> tuple[Tensor, Tensor, Tensor]:
    """-> (premultiplied colour [H, W, 3 (+ FEATURES)], alpha, depth sum); with a photo the colour
    is scaled by 1 - u and the photo features follow it (`reprojection.photo_features`)."""
    from .projection import project_gaussians
    from .sh import sh_to_rgb
    from .torch_backend import rasterize

    dev = g.device
    w2c = torch.as_tensor(cam.world_to_camera, dtype=torch.float32, device=dev)
    K = torch.as_tensor(cam.K, dtype=torch.float32, device=dev)
    proj = project_gaussians(g.means.float(), g.quats.float(), g.scales.float(), g.opacities.float(),
                             w2c, K, cam.width, cam.height, keep_axes=photo is not None)
    center = torch.as_tensor(cam.center, dtype=torch.float32, device=dev)
    colors = sh_to_rgb(g.sh.index_select(0, proj.ids).float(), g.means.index_select(0, proj.ids).float(), center)
    if photo is not None:
        from .reprojection import projected_photo_features

        extra = projected_photo_features(proj, g, photo)
        colors = torch.cat((colors * (1.0 - extra[:, :1]), extra), 1)
    out = rasterize(proj, colors, cam.width, cam.height)
    return out.color, out.alpha, out.depth
