"""lift/inflate — the embedded lifter: the masked region becomes a closed, relief-like
3DGS object in the camera's world, without any learned model.

Shape (Teddy / Monster Mash style inflation): every mask sample sits on its own camera
ray; its height above the silhouette plane grows with its distance d from the mask
boundary as h = INFLATION * sqrt(d (2 dmax - d)) pixels (a round cross-section at the
thickest part, flattened by INFLATION). The front surface lies h in front of the
plane and carries the photo's colours, the back surface h behind it closes the volume,
and "skirts" fill depth steps between neighbouring samples (the side wall at the rim
included) so the object has no cracks when seen from the side.

Scale: the silhouette plane sits at depth Z0 = reference_depth(mask, camera), where the
mask's bounding box spans 1 world unit — objects of any pixel size come out about a
metre big, which is the scale the deformation defaults are tuned for.

Colours: splats are flat discs facing the camera, one per sample; a few passes of
residual correction through the renderer (c += target - render, a Jacobi iteration on
the blur the overlapping splats introduce) make the render match the photo.

Cost: samples are taken every `stride` pixels, with stride grown until the total
count stays under `max_gaussians` (splats grow with the stride so coverage holds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...core.errors import MaskError

SKIRT_SPACING = 1.5  # skirt splats along a ray, in units of their std: overlapping, so no crack shows


@dataclass(frozen=True)
class InflateConfig:
    max_gaussians: int = 300_000
    inflation: float = 0.8         # medial thickness relative to a round cross-section
    sigma_px: float = 0.5          # splat std in the image plane, in sample spacings
    flatness: float = 0.3          # splat std along the camera ray relative to sigma_px
    opacity: float = 0.995
    fit_passes: int = 4            # colour-correction passes through the renderer (0: none)
    render_backend: str = "torch"  # the renderer used for the colour fit


def reference_depth(mask: np.ndarray, camera) -> float:
    """Depth at which the mask's bounding box spans 1 world unit (its larger side)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise MaskError("cannot lift an empty mask")
    w, h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    return 1.0 / max(w / camera.K[0, 0], h / camera.K[1, 1])


class InflateLifter:
    name = "inflate"

    def __init__(self, config: InflateConfig = InflateConfig()) -> None:
        self.config = config

    def lift(self, image: np.ndarray,   # uint8 [H, W, 3]
             mask: np.ndarray,          # bool [H, W]
             camera):                   # core.camera.Camera of the image's size
        area = int(mask.sum())
        stride = max(1, math.ceil(math.sqrt(2.2 * area / self.config.max_gaussians)))
        while True:
            layout = _layout(image, mask, camera, stride, self.config)
            if layout.count <= self.config.max_gaussians:
                break
            stride += 1
        g = layout.gaussians(layout.front_colors)
        if self.config.fit_passes > 0:
            g = _fit_colors(layout, image, mask, camera, self.config)
        return g


@dataclass
class _Layout:
    """Where every splat goes; colours are per sample cell and shared by a cell's splats."""
    means: np.ndarray          # [N, 3] world
    sigma: np.ndarray          # [N] in-plane std, world units
    flatness: np.ndarray       # [N] std along the camera ray / in-plane std
    cell_of: np.ndarray        # [N] index of the sample cell each splat takes its colour from
    front_colors: np.ndarray   # [C, 3] cell colours from the photo, in [0, 1]
    cell_pixels: np.ndarray    # [H, W] int cell index per pixel, -1 outside the mask
    quat: np.ndarray           # [4] wxyz camera-to-world rotation shared by all splats
    config: InflateConfig

    @property
    def count(self) -> int:
        return self.means.shape[0]

    def gaussians(self, cell_colors: np.ndarray):
        import torch

        from ...core.gaussians import Gaussians

        n = self.count
        s = self.sigma[:, None] * np.stack([np.ones(n), np.ones(n), self.flatness], 1)
        return Gaussians.from_colors(
            means=torch.from_numpy(self.means).float(),
            colors=torch.from_numpy(cell_colors[self.cell_of]).float(),
            scales=torch.from_numpy(s).float(),
            opacities=torch.full((n,), self.config.opacity),
            quats=torch.from_numpy(np.tile(self.quat, (n, 1))).float(),
        )


def _layout(image: np.ndarray, mask: np.ndarray, camera, stride: int, cfg: InflateConfig) -> _Layout:
    import cv2
    import torch

    from ...core import quaternion

    H, W = mask.shape
    ch, cw = -(-H // stride), -(-W // stride)
    pad = ((0, ch * stride - H), (0, cw * stride - W))
    m = np.pad(mask.astype(np.float64), pad)
    img = np.pad(image.astype(np.float64) / 255.0, pad + ((0, 0),))
    cover = m.reshape(ch, stride, cw, stride).sum((1, 3))                          # [ch, cw]
    color_sum = (img * m[..., None]).reshape(ch, stride, cw, stride, 3).sum((1, 3))
    cells = cover >= 0.5 * stride * stride if stride > 1 else cover > 0
    cells &= cover > 0
    if not cells.any():
        raise MaskError("the mask is too thin to lift at this resolution")
    colors = color_sum[cells] / cover[cells][:, None]                              # [C, 3]

    # Height field: distance to the boundary (pixels) -> inflated height (pixels).
    dist = cv2.distanceTransform(np.pad(cells, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1] * stride
    dmax = float(dist.max())
    height = cfg.inflation * np.sqrt(np.clip(dist * (2 * dmax - dist), 0, None))   # [ch, cw]
    z0 = reference_depth(mask, camera)
    f = 0.5 * (camera.K[0, 0] + camera.K[1, 1])
    to_depth = z0 / f                                      # world units per pixel of height at Z0
    z_front = np.maximum(z0 - height * to_depth, 0.05 * z0)
    z_back = z0 + height * to_depth

    # Skirts: fill the depth step to the deepest (front) / shallowest (back) 4-neighbour.
    zf = np.where(cells, z_front, z0)
    zb = np.where(cells, z_back, z0)
    zf_p, zb_p = np.pad(zf, 1, constant_values=z0), np.pad(zb, 1, constant_values=z0)
    neigh_f = np.max([zf_p[:-2, 1:-1], zf_p[2:, 1:-1], zf_p[1:-1, :-2], zf_p[1:-1, 2:]], axis=0)
    neigh_b = np.min([zb_p[:-2, 1:-1], zb_p[2:, 1:-1], zb_p[1:-1, :-2], zb_p[1:-1, 2:]], axis=0)

    iy, ix = np.nonzero(cells)
    C = iy.size
    uv = np.stack([(ix + 0.5) * stride, (iy + 0.5) * stride], 1)
    sigma_px = cfg.sigma_px * stride

    # Front and back splats are discs facing the camera; skirt splats are round (seen from the
    # side they must close the crack) and spaced SKIRT_SPACING of their std apart along the ray.
    depths, cell_ids, flat = [z_front[cells], z_back[cells]], [np.arange(C), np.arange(C)], [cfg.flatness] * 2
    for start, end, sign in ((z_front[cells], neigh_f[cells], 1.0), (z_back[cells], neigh_b[cells], -1.0)):
        step = SKIRT_SPACING * sigma_px * start / f
        n = np.floor(np.clip((end - start) * sign, 0, None) / step).astype(np.int64)
        rep = np.repeat(np.arange(C), n)
        k = np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n) + 1   # 1..n within each cell
        depths.append(start[rep] + sign * k * step[rep])
        cell_ids.append(rep)
        flat.append(1.0)
    depth = np.concatenate(depths)
    cell_of = np.concatenate(cell_ids)
    flatness = np.concatenate([np.full(d.size, fl) for d, fl in zip(depths, flat)])
    means = camera.unproject(uv[cell_of], depth)
    sigma = sigma_px * depth / f

    cell_index = -np.ones((ch, cw), np.int64)
    cell_index[iy, ix] = np.arange(C)
    cell_pixels = np.repeat(np.repeat(cell_index, stride, 0), stride, 1)[:H, :W]
    cell_pixels = np.where(mask, cell_pixels, -1)
    c2w = torch.from_numpy(camera.camera_to_world[:3, :3].copy())
    quat = quaternion.from_matrix(c2w).numpy()
    return _Layout(means, sigma, flatness, cell_of, colors, cell_pixels, quat, cfg)


def _fit_colors(layout: _Layout, image: np.ndarray, mask: np.ndarray, camera, cfg: InflateConfig):
    """Residual correction through the renderer: colours += mean(target - render) per cell."""
    from ...core.render import render

    target = image.astype(np.float64) / 255.0
    valid = layout.cell_pixels >= 0
    idx = layout.cell_pixels[valid]
    count = np.bincount(idx, minlength=len(layout.front_colors)).astype(np.float64)
    count = np.maximum(count, 1)
    colors = layout.front_colors.copy()
    g = layout.gaussians(colors)
    for _ in range(cfg.fit_passes):
        rgb = _as_numpy(render(g, camera, backend=cfg.render_backend).rgba)[..., :3].astype(np.float64)
        residual = (target - rgb)[valid]                                             # [P, 3]
        delta = np.stack([np.bincount(idx, residual[:, c], minlength=len(colors)) for c in range(3)], 1)
        colors = np.clip(colors + delta / count[:, None], -0.5, 1.5)
        g = layout.gaussians(colors)
    return g


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
