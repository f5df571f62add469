"""Photo reprojection: a posed object shows the photo's own pixels wherever the photo saw it.

Per Gaussian i (rest pose -> posed, same order):
- visibility v_i in [0, 1]: its total compositing weight (T alpha summed over pixels) in the
  photo-camera render of the rest Gaussians, over its unoccluded footprint o 2 pi sqrt(det Sigma2d),
  relative to the front surface's typical value and through a ramp (`VISIBILITY_RAMP`), so that a
  mostly visible Gaussian counts fully and one hidden behind another counts not at all; and 1
  for a Gaussian on the front surface (within its own depth extent of the render's expected
  depth at its pixel), which overlapping splats of one surface can otherwise hide. Computed once per lifted object (`photo_visibility`).
- a per-splat affine map from the render to the photo: photo(p) = s_i + M_i (p - mu'_i), with
  s_i the rest mean's photo projection, mu'_i the posed mean's render projection, and
  M_i = D_i B_i^+ where B_i = J' R' S' (the posed splat's axes on the render screen) and
  D_i = J_photo R S (the rest splat's axes on the photo): the least-squares map taking the
  render footprint onto the photo footprint, i.e. the Gaussian conditional mean of the 3D
  offset given the screen offset, carried back to rest and into the photo. At identity
  (posed == rest, render camera == photo camera up to scale) M_i = scale * I and the source
  coordinate is exactly the pixel itself.
- a foreshortening fade f_i from M_i's condition number kappa (1 at identity, 1/cos(theta)
  for a flat splat turned by theta, whether turned away or turned into view, and independent
  of uniform scale): photo pixels of a surface the render sees much more obliquely, or much
  more frontally, than the photo did are stretched or crushed, so the splat falls back to
  its own colour; det M_i < 0 means it is seen from behind (f = 0).

The source coordinate is linear in the pixel inside a splat, so the renderer composites the
per-Gaussian features u_i = v_i f_i, u_i (s_i - M_i mu'_i) (2) and u_i M_i (4) as ordinary
channels and each pixel evaluates source(p) = (offset(p) + Mbar(p) p) / U(p). The colour
blends photo(source) with the lifted colour of the unseen share, sum_i w_i (1 - u_i) c_i, by
the pixel's seen fraction U / alpha (saturating at PIXEL_SEEN_FULL and opened at seams, see
`photo_share`): what the photo did not see keeps the lifted colour.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..camera import Camera
from ..errors import ConfigError
from ..gaussians import Gaussians
from .projection import _dot3

VISIBILITY_RAMP = (0.1, 0.5)     # seen fraction over the front layer's typical one -> visibility 0 .. 1
CONDITION_FADE = (2.0, 5.0)      # kappa(M): photo fully up to 2 (60 deg turn), none from 5 (78 deg)
PIXEL_SEEN_FULL = 0.6            # seen fraction of a pixel's alpha from which it shows the photo only
HOLE_RADIUS = 2                  # px: alpha holes up to 2 * HOLE_RADIUS wide are closed where seen
SHARE_OPEN_RADIUS = 1            # px: photo specks narrower than 2 * SHARE_OPEN_RADIUS + 1 at a seen/unseen seam go
SOLID_FROM = (0.5, 0.85)         # alpha over which seen pixels are made fully opaque (see resolve)
FEATURES = 7                     # u, u * offset (2), u * M (4)
EDGE_INSET = 2                   # px inside the silhouette (rest alpha 1/2) from which a photo pixel is the object's alone ...
EDGE_REACH = 4                   # ... and how far (px) its colour is carried out over the edge
EDGE_ALPHA_PIXELS = 4_000_000    # the rest coverage for that is rendered at most this large, then upsampled
_SEEN_MIN = 1e-6                 # U below this: no photo colour at the pixel


@dataclass
class PhotoSource:
    """The photo a posed object takes its colours from."""

    image: Tensor          # [H, W, 3] float32 RGB in [0, 1] at the photo's full size
    camera: Camera         # the photo's camera, at the image's size
    rest: Gaussians        # the object at rest, in the order of the posed Gaussians rendered
    visibility: Tensor     # [N] in [0, 1], `photo_visibility(rest, camera)`

    def __post_init__(self) -> None:
        image = torch.as_tensor(self.image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ConfigError(f"the photo must be an [H, W, 3] image, got shape {tuple(image.shape)}")
        if image.dtype == torch.uint8:
            image = image.float() / 255.0
        if (image.shape[1], image.shape[0]) != (self.camera.width, self.camera.height):
            raise ConfigError(f"the photo is {image.shape[1]}x{image.shape[0]} but its camera is "
                              f"{self.camera.width}x{self.camera.height}")
        if self.visibility.shape != (len(self.rest),):
            raise ConfigError(f"visibility has shape {tuple(self.visibility.shape)}, expected ({len(self.rest)},)")
        self.image = image.float().contiguous()
        self._chw = None  # [1, 3, H, W] for grid_sample, made on first use per device
        self._rest_axes = None  # the rest Gaussians on the photo: the same for every frame

    def rest_axes(self, device) -> tuple[Tensor, Tensor, Tensor]:
        """-> (photo projection of the rest means [2, N], rows of J R R_q S [3, N] each)."""
        if self._rest_axes is None or self._rest_axes[0].device.type != torch.device(device).type:
            self._rest_axes = _screen_axes(self.rest.to(device), self.camera)
        return self._rest_axes

    @classmethod
    def from_photo(cls, image, camera: Camera, rest: Gaussians, backend: str = "auto") -> "PhotoSource":
        """Visibility computed here (one photo-camera render of `rest`)."""
        image = torch.as_tensor(np.ascontiguousarray(image)) if isinstance(image, np.ndarray) else image
        return cls(image, camera, rest, photo_visibility(rest, camera, backend=backend))

    @classmethod
    def combine(cls, sources: "list[PhotoSource]") -> "PhotoSource":
        """One source for several objects rendered together (their posed Gaussians concatenated in
        this order). Each source may have its rest Gaussians and photo camera in a frame of its own
        (a Blender root's); the rests are moved into the photo camera's axes, where the shared
        camera sits at the origin, so the photo sees every object as it did at its lift."""
        if not sources:
            raise ConfigError("no photo source to combine")
        if len(sources) == 1:
            return sources[0]
        from ..gaussians import concat
        from ..transforms import Similarity, apply_similarity

        first = sources[0]
        for other in sources[1:]:
            if (other.image.shape != first.image.shape or not np.allclose(other.camera.K, first.camera.K)):
                raise ConfigError("objects lifted from different photos cannot be reprojected together")
        rests = [apply_similarity(s.rest, Similarity(s.camera.world_to_camera[:3, :3], s.camera.world_to_camera[:3, 3],
                                                     1.0)) for s in sources]
        camera = Camera(first.camera.width, first.camera.height, first.camera.K, np.eye(4))
        return cls(first.image, camera, concat(rests), torch.cat([s.visibility.float().cpu() for s in sources]))

    def rest_alpha(self, width: int, height: int) -> np.ndarray:  # -> float32 [height, width]
        """The rest object's coverage in the photo (its alpha through the photo's camera) at
        `width` x `height`, rendered once per size. Where a posed render covers a pixel exactly
        as the rest did, and shows it from its own place, that pixel is the photo's own."""
        cache = self.__dict__.setdefault("_rest_alpha", {})
        if (width, height) not in cache:
            cam = self.camera if width == self.camera.width else self.camera.scaled(width / self.camera.width)
            cache[(width, height)] = _coverage(self.rest, cam)[1].alpha.detach().cpu().numpy()
        return cache[(width, height)]

    def sampled_image(self) -> Tensor:  # -> [H, W, 3] float32, what `sample` reads
        """The photo with its object's soft edge replaced by the object's own colour carried out
        from inside (computed once). A silhouette pixel mixes the object with what was behind it;
        moved elsewhere, the rim shows that background as a dark or bright line across the object
        (the truck's wheel, the monkey's ears). Pixels the object covers where it did, as it did,
        keep the photo's own pixel anyway (`pipeline.edit.render_object_layers`)."""
        cached = self.__dict__.get("_sampled")
        if cached is None:
            import cv2

            W, H = self.camera.width, self.camera.height
            small = self.camera.scaled(min(1.0, (EDGE_ALPHA_PIXELS / (W * H)) ** 0.5))  # a 40 MP photo: seconds, not a minute
            # A rest render already made at no less than half that resolution (the edit's own) serves.
            made = [size for size in self.__dict__.get("_rest_alpha", {})
                    if 4 * size[0] * size[1] >= small.width * small.height and size[0] <= small.width]
            width, height = max(made) if made else (small.width, small.height)
            alpha = self.rest_alpha(width, height)
            if (width, height) != (W, H):
                alpha = cv2.resize(alpha, (W, H), interpolation=cv2.INTER_LINEAR)
            cached = self.__dict__["_sampled"] = torch.from_numpy(edge_extended(self.image.detach().cpu().numpy(), alpha))
        return cached

    def image_chw(self, device) -> Tensor:  # -> [1, 3, H, W] of `sampled_image`
        if self._chw is None or self._chw.device.type != torch.device(device).type:
            self._chw = self.sampled_image().to(device).permute(2, 0, 1)[None].contiguous()
        return self._chw

    def sample(self, source_xy: Tensor) -> Tensor:  # [..., 2] photo pixels (centres +0.5) -> [..., 3] bilinear
        image = self.image_chw(source_xy.device)
        H, W = image.shape[-2:]
        grid = torch.stack((source_xy[..., 0] * (2.0 / W) - 1.0, source_xy[..., 1] * (2.0 / H) - 1.0), -1)
        flat = grid.reshape(1, 1, -1, 2).float()
        out = torch.nn.functional.grid_sample(image, flat, mode="bilinear", padding_mode="border", align_corners=False)
        return out[0, :, 0].T.reshape(*source_xy.shape[:-1], 3)


def edge_extended(image: np.ndarray,  # [H, W, 3] float
                  alpha: np.ndarray,  # [H, W] the object's coverage of each pixel
                  inset: int = EDGE_INSET, reach: int = EDGE_REACH) -> np.ndarray:  # -> [H, W, 3] float32
    """`image` at least `inset` px inside the object's silhouette (alpha >= 1/2: a lifted object's
    interior is not fully opaque, the inflate lifter's composites to about 0.94); on the band
    outside that (alpha > 0), the average colour of the inside pixels within `reach` px (rings
    grown one pixel at a time, so the nearest ones win); elsewhere, and where no inside pixel is
    within reach, `image` unchanged."""
    out = np.array(image, dtype=np.float32)
    rows, cols = np.nonzero((alpha > 0).any(1))[0], np.nonzero((alpha > 0).any(0))[0]
    if rows.size == 0:
        return out
    margin = inset + reach + 1  # the work stays inside the object's box plus what the filters reach
    y0, y1 = max(0, rows[0] - margin), min(alpha.shape[0], rows[-1] + 1 + margin)
    x0, x1 = max(0, cols[0] - margin), min(alpha.shape[1], cols[-1] + 1 + margin)
    out[y0:y1, x0:x1] = _edge_extended_box(out[y0:y1, x0:x1], alpha[y0:y1, x0:x1], inset, reach)
    return out


def _edge_extended_box(out: np.ndarray, alpha: np.ndarray, inset: int, reach: int) -> np.ndarray:
    import cv2

    inner = cv2.erode((alpha >= 0.5).astype(np.uint8), np.ones((3, 3), np.uint8), iterations=inset,
                      borderType=cv2.BORDER_REPLICATE).astype(bool)
    todo = (alpha > 0) & ~inner
    if not todo.any() or not inner.any():
        return out
    known = inner.astype(np.float32)
    colour = out * known[..., None]
    for _ in range(reach):
        weight = cv2.boxFilter(known, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
        total = cv2.boxFilter(colour, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
        grow = (weight > 0) & (known == 0) & todo
        colour[grow] = total[grow] / weight[grow, None]
        known[grow] = 1.0
    reached = todo & (known > 0)
    out[reached] = colour[reached]
    return out


@dataclass
class PhotoLayers:
    """Per-pixel composited sums of a reprojecting render, premultiplied by the weights w, over
    the pixels [x0, x0 + W) x [y0, y0 + H) of an image (`origin` = (x0, y0))."""

    lifted: Tensor    # [H, W, 3] sum w (1 - u) c: colour of what the photo did not see
    seen: Tensor      # [H, W] U = sum w u
    offset: Tensor    # [H, W, 2] sum w u (s - M mu')
    jacobian: Tensor  # [H, W, 4] sum w u M, row-major 2x2
    alpha: Tensor     # [H, W] sum w
    origin: tuple[int, int] = (0, 0)

    def source_xy(self) -> Tensor:  # -> [H, W, 2] photo pixel each pixel shows (its own position where U = 0)
        xy = _pixel_centres(*self.seen.shape, self.origin, self.seen.device)
        return source_from_sums(self.offset, self.jacobian, self.seen, xy[..., 0], xy[..., 1])

    def resampled(self, width: int, height: int) -> "PhotoLayers":
        """Bilinearly resampled to a `width` x `height` image of the same view (pixel centres at +0.5,
        borders replicated, as cv2.resize), over the box of the new pixels the object can touch. The
        Jacobian sums are turned into photo pixels per new pixel, so the source field stays exact
        inside each splat."""
        if self.origin != (0, 0):
            raise ValueError("resample a whole-image PhotoLayers")
        H, W = self.seen.shape
        sx, sy = W / width, H / height  # old pixels per new pixel
        x0, y0, x1, y1 = reach_box(self.alpha > 0, width, height)
        stack = torch.cat((self.lifted, self.seen[..., None], self.offset, self.jacobian, self.alpha[..., None]), -1)
        out = resample_box(stack, width, height, (x0, y0, x1, y1))
        jac = out[..., 6:10] * out.new_tensor([sx, sy, sx, sy])  # d photo / d new pixel
        return PhotoLayers(out[..., :3], out[..., 3], out[..., 4:6], jac, out[..., 10], (x0, y0))


def reach_box(covered: Tensor, width: int, height: int) -> tuple[int, int, int, int]:
    """bool [H, W] -> (x0, y0, x1, y1): the pixels of a `width` x `height` resampling (as
    `resample_box`) that the covered pixels reach; outside it the resampled image is 0. Empty
    when nothing is covered."""
    H, W = covered.shape
    sx, sy = W / width, H / height  # old pixels per new pixel
    rows, cols = covered.any(1).nonzero(), covered.any(0).nonzero()
    if rows.numel() == 0:
        return 0, 0, 0, 0
    # old pixels [c0, c1] reach new pixel centres within one old pixel of them
    x0, x1 = max(0, int((int(cols[0]) - 1) / sx)), min(width, int((int(cols[-1]) + 2) / sx) + 1)
    y0, y1 = max(0, int((int(rows[0]) - 1) / sy)), min(height, int((int(rows[-1]) + 2) / sy) + 1)
    return x0, y0, x1, y1


def resample_box(image: Tensor, width: int, height: int, box: tuple[int, int, int, int]) -> Tensor:
    """[H, W, C] -> [y1 - y0, x1 - x0, C]: the pixels [x0, x1) x [y0, y1) of `image` bilinearly
    resampled to width x height (pixel centres at +0.5, borders replicated, as cv2.resize)."""
    H, W = image.shape[:2]
    x0, y0, x1, y1 = box
    sx, sy = W / width, H / height
    dev = image.device
    gx = ((torch.arange(x0, x1, device=dev) + 0.5) * sx) * (2.0 / W) - 1.0
    gy = ((torch.arange(y0, y1, device=dev) + 0.5) * sy) * (2.0 / H) - 1.0
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1)[None].float()  # [1, h, w, 2]
    return torch.nn.functional.grid_sample(image.permute(2, 0, 1)[None].float(), grid, mode="bilinear",
                                           padding_mode="border", align_corners=False)[0].permute(1, 2, 0)


def source_from_sums(offset: Tensor, jacobian: Tensor, seen: Tensor, xs: Tensor, ys: Tensor) -> Tensor:
    """(offset + Mbar p) / U per pixel -> [H, W, 2]; pixels with U ~ 0 get their own position."""
    safe = torch.where(seen > _SEEN_MIN, seen, torch.ones_like(seen))
    sx = (offset[..., 0] + jacobian[..., 0] * xs + jacobian[..., 1] * ys) / safe
    sy = (offset[..., 1] + jacobian[..., 2] * xs + jacobian[..., 3] * ys) / safe
    seen_px = seen > _SEEN_MIN
    return torch.stack((torch.where(seen_px, sx, xs), torch.where(seen_px, sy, ys)), -1)


def photo_share(layers: PhotoLayers) -> Tensor:  # -> [H, W] in [0, 1]
    """The share of each pixel's colour the photo gives: the seen fraction U / alpha, saturating at
    PIXEL_SEEN_FULL. A surface the photo saw is seldom seen through the whole stack of splats: the
    inflate lifter's front splats leave ~6% to the back and side-wall splats behind them at rest,
    and a 30 deg turn opens gaps between its discs (median seen fraction 0.87 on the truck's
    door, 5% of pixels below 0.6); those inner splats' colours (diffused, `core.color_fill`)
    must not tint what the photo shows as a grid of streaks."""
    fraction = layers.seen / layers.alpha.clamp_min(1e-12)
    return smooth_share((fraction / PIXEL_SEEN_FULL).clamp(0.0, 1.0), layers.alpha)


def smooth_share(share: Tensor, alpha: Tensor) -> Tensor:  # [H, W], [H, W] -> [H, W] in [0, 1]
    """Where a surface the photo saw meets one it did not (a turned rim), the seen and unseen
    splats interleave, and the raw share alternates from pixel to pixel: the photo's rim pixels
    showed as a dotted line (the demo cup's lip). A grey opening over covered pixels removes
    photo specks narrower than SHARE_OPEN_RADIUS * 2 + 1 px without narrowing anything the photo
    saw (uncovered pixels are ignored, so thin parts keep their share), then an alpha-weighted
    box mean of the same radius softens the step. Where everything is seen it stays 1."""
    covered = alpha > 0
    eroded = -_box_max(-torch.where(covered, share, torch.ones_like(share)), SHARE_OPEN_RADIUS)
    opened = _box_max(torch.where(covered, eroded, torch.zeros_like(eroded)), SHARE_OPEN_RADIUS)
    weight = torch.where(covered, alpha, torch.zeros_like(alpha))
    mean = _box_sum(opened * weight, SHARE_OPEN_RADIUS) / _box_sum(weight, SHARE_OPEN_RADIUS).clamp_min(1e-12)
    return torch.where(covered, mean.clamp(0.0, 1.0), torch.zeros_like(share))


def resolve(layers: PhotoLayers, photo: PhotoSource) -> tuple[Tensor, Tensor, Tensor]:
    """-> (premultiplied RGB [H, W, 3], alpha [H, W], source_xy [H, W, 2]), worked out over the
    object's bounding box only (plus the closing's reach); elsewhere alpha and colour are 0 and
    the source is the pixel's own position, as the whole-image `resolve_box` gives."""
    H, W = layers.alpha.shape
    rows, cols = (layers.alpha > 0).any(1).nonzero(), (layers.alpha > 0).any(0).nonzero()
    if rows.numel() == 0:
        return resolve_box(layers, photo)
    reach = 2 * HOLE_RADIUS  # the closing's dilation and erosion stay inside this margin
    y0, y1 = max(0, int(rows[0]) - reach), min(H, int(rows[-1]) + 1 + reach)
    x0, x1 = max(0, int(cols[0]) - reach), min(W, int(cols[-1]) + 1 + reach)
    if (y1 - y0) * (x1 - x0) > 0.8 * H * W:
        return resolve_box(layers, photo)
    ox, oy = layers.origin
    box = PhotoLayers(*(t[y0:y1, x0:x1] for t in (layers.lifted, layers.seen, layers.offset, layers.jacobian,
                                                  layers.alpha)), origin=(ox + x0, oy + y0))
    premult, alpha, source = resolve_box(box, photo)
    full_premult = premult.new_zeros((H, W, 3))
    full_alpha = alpha.new_zeros((H, W))
    full_source = _pixel_centres(H, W, layers.origin, alpha.device)
    full_premult[y0:y1, x0:x1], full_alpha[y0:y1, x0:x1], full_source[y0:y1, x0:x1] = premult, alpha, source
    return full_premult, full_alpha, full_source


def _pixel_centres(H: int, W: int, origin: tuple[int, int], device) -> Tensor:  # -> [H, W, 2] (x, y) + 0.5
    x0, y0 = origin
    ys, xs = torch.meshgrid(torch.arange(H, device=device) + (y0 + 0.5), torch.arange(W, device=device) + (x0 + 0.5),
                            indexing="ij")
    return torch.stack((xs, ys), -1)


def resolve_box(layers: PhotoLayers, photo: PhotoSource) -> tuple[Tensor, Tensor, Tensor]:
    """`resolve` over every pixel of `layers`.

    Straight colour = share photo(source) + (1 - share) (lifted colour of the unseen splats).
    Alpha is made solid where the photo saw the surface: a lifted object is rarely fully opaque
    inside (the inflate lifter's interior composites to about 0.94, its splats' 0.995 opacity
    meeting the 1e-4 transmittance stop), and the photo's pixel there is an opaque surface, so
    the plate behind must not show through. The soft outer edge (alpha below SOLID_FROM) is kept."""
    source = layers.source_xy()
    alpha = layers.alpha
    share = photo_share(layers)[..., None]
    unseen = (alpha - layers.seen).clamp_min(1e-12)[..., None]
    straight = share * photo.sample(source) + (1.0 - share) * layers.lifted / unseen
    lo, hi = SOLID_FROM
    solid = alpha + (1.0 - alpha) * share[..., 0] * ((alpha - lo) / (hi - lo)).clamp(0.0, 1.0)
    # Pinholes: a turned splat surface opens gaps of a pixel or two between its discs, which
    # would show the plate as a dotted grid. A grey closing finds holes narrower than the window
    # (the silhouette stays where it is): partly covered pixels there are made solid in their own
    # colour; gaps the rasteriser left at alpha 0 have neither a share nor a colour of their own,
    # so they take colour and source from the seen pixels around them (normalised box average).
    closed = _closing(solid)
    raised = torch.maximum(solid, closed * share[..., 0])
    premult = straight * raised[..., None]
    hole = (alpha <= 0) & (closed > 1e-4)
    if not bool(hole.any()):
        return premult, raised, source
    ys, xs = hole.nonzero(as_tuple=True)  # few: gather each hole's window instead of filtering the image
    H, W = alpha.shape
    offsets = torch.arange(-HOLE_RADIUS, HOLE_RADIUS + 1, device=alpha.device)
    wy = (ys[:, None, None] + offsets[None, :, None]).expand(-1, len(offsets), len(offsets))
    wx = (xs[:, None, None] + offsets[None, None, :]).expand(-1, len(offsets), len(offsets))
    inside = (wy >= 0) & (wy < H) & (wx >= 0) & (wx < W)
    wy, wx = wy.clamp(0, H - 1), wx.clamp(0, W - 1)
    weights = (solid * share[..., 0])[wy, wx] * inside  # [K, k, k]: seen coverage around each hole
    den = weights.sum((1, 2))
    ok = den > 1e-6
    norm = (weights / den.clamp_min(1e-12)[:, None, None])[..., None]
    fill_rgb = (straight[wy, wx] * norm).sum((1, 2))  # [K, 3]
    fill_src = (source[wy, wx] * norm).sum((1, 2))    # [K, 2]
    ys, xs, fill_rgb, fill_src = ys[ok], xs[ok], fill_rgb[ok], fill_src[ok]
    filled, premult, source = raised.clone(), premult.clone(), source.clone()
    filled[ys, xs] = closed[ys, xs]
    premult[ys, xs] = fill_rgb * closed[ys, xs][:, None]
    source[ys, xs] = fill_src
    return premult, filled, source


def _closing(x: Tensor) -> Tensor:  # [H, W] -> [H, W] grey closing over a (2 HOLE_RADIUS + 1)^2 window
    return -_box_max(-_box_max(x, HOLE_RADIUS), HOLE_RADIUS)


def _box_sum(x: Tensor, radius: int) -> Tensor:  # [H, W] -> [H, W] sum over the (2 radius + 1)^2 window, edges clipped
    for dim in (0, 1):
        out = x.clone()
        n = x.shape[dim]
        for d in range(1, min(radius, n - 1) + 1):
            out.narrow(dim, d, n - d).add_(x.narrow(dim, 0, n - d))
            out.narrow(dim, 0, n - d).add_(x.narrow(dim, d, n - d))
        x = out
    return x


def _box_max(x: Tensor, radius: int) -> Tensor:  # [H, W] -> [H, W] max over the (2 radius + 1)^2 window, edges clipped
    """Separable running maxima of shifted views: about 10x faster than max_pool2d on the CPU,
    which forms indices it is not asked for."""
    for dim in (0, 1):
        out = x.clone()
        n = x.shape[dim]
        for d in range(1, radius + 1):
            if d >= n:
                break
            torch.maximum(out.narrow(dim, d, n - d), x.narrow(dim, 0, n - d), out=out.narrow(dim, d, n - d))
            torch.maximum(out.narrow(dim, 0, n - d), x.narrow(dim, d, n - d), out=out.narrow(dim, 0, n - d))
        x = out
    return x


# -- per-Gaussian quantities ------------------------------------------------------------

def _screen_axes(g: Gaussians, cam: Camera) -> tuple[Tensor, Tensor, Tensor]:
    """-> (mean in pixels [2, N], rows of J R R_q S [3, N] each): the splat's scaled axes on the
    screen, as the projection forms them (same Jacobian clamp)."""
    from .projection import screen_axes

    dev = g.device
    R = torch.as_tensor(cam.world_to_camera[:3, :3], dtype=torch.float32, device=dev)
    t = torch.as_tensor(cam.world_to_camera[:3, 3], dtype=torch.float32, device=dev)
    K = torch.as_tensor(cam.K, dtype=torch.float32, device=dev)
    p = torch.addmm(t[:, None], R, g.means.float().T)  # [3, N]
    p[2].clamp_(min=1e-6)  # behind the camera: culled by the renderer anyway
    u, v, row_x, row_y = screen_axes(p, g.quats.float(), g.scales.float(), R, K, cam.width, cam.height)
    return torch.stack((u, v)), row_x, row_y


def photo_maps(posed: Gaussians, render_camera: Camera, photo: PhotoSource) -> tuple[Tensor, Tensor, Tensor]:
    """-> (s - M mu' [N, 2], M [N, 2, 2] photo pixels per render pixel, fade [N] in [0, 1])."""
    _check_same_gaussians(posed, photo)
    return maps_from_axes(photo.rest_axes(posed.device), _screen_axes(posed, render_camera))


def maps_from_axes(rest_axes: tuple[Tensor, Tensor, Tensor], posed_axes: tuple[Tensor, Tensor, Tensor]
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """(s [2, K], D rows [3, K] x 2) on the photo and (mu' [2, K], B rows [3, K] x 2) on the render,
    of the same K splats -> `photo_maps`' (offset [K, 2], M [K, 2, 2], fade [K])."""
    s, dx, dy = rest_axes
    mu, bx, by = posed_axes
    # M = D B^T (B B^T)^-1 with B B^T the undilated screen covariance (tiny ridge for edge-on splats).
    a, b, c = _dot3(bx, bx), _dot3(bx, by), _dot3(by, by)
    eps = 1e-6 * (a + c) + 1e-12
    a, c = a + eps, c + eps
    inv_det = 1.0 / (a * c - b * b)
    p00, p01, p10, p11 = _dot3(dx, bx), _dot3(dx, by), _dot3(dy, bx), _dot3(dy, by)  # D B^T
    m00, m01 = (p00 * c - p01 * b) * inv_det, (p01 * a - p00 * b) * inv_det
    m10, m11 = (p10 * c - p11 * b) * inv_det, (p11 * a - p10 * b) * inv_det
    M = torch.stack((m00, m01, m10, m11), 1).view(-1, 2, 2)
    offset = torch.stack((s[0] - m00 * mu[0] - m01 * mu[1], s[1] - m10 * mu[0] - m11 * mu[1]), 1)
    return offset, M, foreshortening_fade(M)


def _check_same_gaussians(posed: Gaussians, photo: PhotoSource) -> None:
    if len(posed) != len(photo.rest):
        raise ConfigError(f"the posed object has {len(posed)} Gaussians but the photo's rest object has "
                          f"{len(photo.rest)}; reprojection needs the same Gaussians in the same order")


def foreshortening_fade(M: Tensor) -> Tensor:  # [N, 2, 2] -> [N] in [0, 1]
    """1 while the render-to-photo map is near-conformal (condition number <= CONDITION_FADE[0]),
    0 beyond CONDITION_FADE[1] or when it mirrors (the splat is seen from behind)."""
    det = M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] * M[:, 1, 0]
    frob2 = (M * M).sum((1, 2))
    # singular values: s1^2 + s2^2 = frob2, s1 s2 = |det| -> kappa + 1/kappa = frob2 / |det|
    r = frob2 / det.abs().clamp_min(1e-30)
    kappa = 0.5 * (r + torch.sqrt((r * r - 4.0).clamp_min(0.0)))
    lo, hi = CONDITION_FADE
    fade = ((hi - kappa) / (hi - lo)).clamp(0.0, 1.0)
    return torch.where((det > 0) & torch.isfinite(kappa), fade, torch.zeros_like(fade))


def photo_features(posed: Gaussians, render_camera: Camera, photo: PhotoSource) -> Tensor:
    """-> [N, FEATURES]: u, u (s - M mu'), u M (row-major), with u = visibility * fade."""
    offset, M, fade = photo_maps(posed, render_camera, photo)
    return _features(photo.visibility.to(posed.device).float() * fade, offset, M)


def projected_photo_features(proj, posed: Gaussians, photo: PhotoSource) -> Tensor:
    """`photo_features` of the projected splats only ([M, FEATURES], in `proj.ids` order), from the
    screen axes the projection already formed (`project_gaussians(..., keep_axes=True)`)."""
    _check_same_gaussians(posed, photo)
    s, dx, dy = photo.rest_axes(posed.device)
    ids = proj.ids
    rest = (s.index_select(1, ids), dx.index_select(1, ids), dy.index_select(1, ids))
    offset, M, fade = maps_from_axes(rest, (proj.means2d.T, *proj.axes))
    return _features(photo.visibility.to(posed.device).float().index_select(0, ids) * fade, offset, M)


def _features(u: Tensor, offset: Tensor, M: Tensor) -> Tensor:  # -> [K, FEATURES]
    return torch.cat((u[:, None], u[:, None] * offset, u[:, None] * M.reshape(-1, 4)), 1)


def visibility_from_weights(weight_sums: Tensor, opacities: Tensor, conics: Tensor) -> Tensor:
    """Seen fraction of each Gaussian's footprint (weights over o 2 pi sqrt(det Sigma2d)), relative
    to the typical front-surface Gaussian's, through the ramp. Splats of a surface overlap, so even
    the front layer's seen fraction is well below 1 (about 0.38 for the inflate lifter: the first
    splat in depth order at a pixel covers the next); the weighted median of the fractions (weighted
    by the weights: the Gaussians that make the image) is that layer's value, while a Gaussian
    behind an opaque surface sees about 1e-3 of it."""
    a, b, c = conics.unbind(-1)
    footprint = opacities * (2 * torch.pi) / torch.sqrt((a * c - b * b).clamp_min(1e-30))
    fraction = weight_sums / footprint
    total = float(weight_sums.sum())
    if not total > 0:
        return torch.zeros_like(fraction)
    order = torch.argsort(fraction)
    cumulative = torch.cumsum(weight_sums[order].double(), 0)
    typical = float(fraction[order[int(torch.searchsorted(cumulative, cumulative.new_tensor(0.5 * total)))]])
    lo, hi = VISIBILITY_RAMP
    return ((fraction / max(typical, 1e-12) - lo) / (hi - lo)).clamp(0.0, 1.0)


def on_front_surface(g: Gaussians, camera: Camera, depth_sum: Tensor, alpha: Tensor) -> Tensor:
    """-> [N] float 1 where a Gaussian's mean lies no more than its own standard deviation along
    the ray behind the photo render's expected depth at its pixel (alpha > 1/2 there), else 0.
    The weight ratio alone misjudges splats of one surface stacked at the same depth: whichever
    sorts last looks covered although the photo saw that surface."""
    from .. import quaternion

    R = torch.as_tensor(camera.world_to_camera[:3, :3], dtype=torch.float32, device=g.device)
    t = torch.as_tensor(camera.world_to_camera[:3, 3], dtype=torch.float32, device=g.device)
    p = g.means.float() @ R.T + t
    z = p[:, 2]
    K = camera.K
    u = torch.floor(K[0, 0] * p[:, 0] / z.clamp_min(1e-6) + K[0, 2]).long()
    v = torch.floor(K[1, 1] * p[:, 1] / z.clamp_min(1e-6) + K[1, 2]).long()
    inside = (z > 0) & (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    flat = (v.clamp(0, camera.height - 1) * camera.width + u.clamp(0, camera.width - 1))
    a = alpha.reshape(-1).index_select(0, flat)
    expected = depth_sum.reshape(-1).index_select(0, flat) / a.clamp_min(1e-12)
    sigma_ray = ((R[2] @ quaternion.to_matrix(g.quats.float())) * g.scales.float()).norm(dim=1)  # [N]
    return (inside & (a > 0.5) & (z <= expected + sigma_ray)).float()


_VISIBILITY_CACHE: dict[bytes, Tensor] = {}  # the last few results, by the geometry and camera they came from
_VISIBILITY_KEPT = 2


def photo_visibility(rest: Gaussians, camera: Camera, backend: str = "auto", cpu_threads: int = 1) -> Tensor:
    """-> [N] float32 on rest's device: how much of each Gaussian the photo saw (see module doc):
    the larger of the weight ratio's ramp and the front-surface depth test.
    cpu_threads: as `render`'s (one by default: measured 10.7 s with all threads vs 2 s with one
    for a 189k-Gaussian truck at 1024 px on 2 shared cores).
    The last results are kept by a digest of the geometry, opacities and camera: the inflate
    lifter computes it for its colour fill and `uplift edit` again for the photo, on the same
    Gaussians (colours do not enter it)."""
    import hashlib

    from ..render_backends import resolve_backend

    digest = hashlib.blake2b(digest_size=16)
    for t in (rest.means, rest.quats, rest.log_scales, rest.opacity_logits):
        digest.update(t.detach().float().contiguous().cpu().numpy().tobytes())
    digest.update(np.ascontiguousarray(camera.K, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(camera.world_to_camera, dtype=np.float64).tobytes())
    digest.update(f"{camera.width}x{camera.height}:{resolve_backend(backend)}".encode())
    key = digest.digest()
    if key in _VISIBILITY_CACHE:
        return _VISIBILITY_CACHE[key].to(rest.device).clone()
    seen = _photo_visibility(rest, camera, backend, cpu_threads)
    _VISIBILITY_CACHE[key] = seen.detach().cpu().clone()  # the caller may change its own
    while len(_VISIBILITY_CACHE) > _VISIBILITY_KEPT:
        _VISIBILITY_CACHE.pop(next(iter(_VISIBILITY_CACHE)))
    return seen


def _coverage(g: Gaussians, camera: Camera, weight_sums: bool = False, cpu_threads: int = 1):
    """The torch rasteriser with no colour channels -> (projection, RasterOutput: alpha, depth
    sum and, when asked, each projected Gaussian's total compositing weight). One CPU thread
    by default, as `render`'s torch backend."""
    from ..device import torch_cpu_threads
    from .projection import project_gaussians
    from .torch_backend import rasterize

    w2c = torch.as_tensor(camera.world_to_camera, dtype=torch.float32, device=g.device)
    K = torch.as_tensor(camera.K, dtype=torch.float32, device=g.device)
    with torch_cpu_threads(cpu_threads if g.device.type == "cpu" else 0):
        proj = project_gaussians(g.means.float(), g.quats.float(), g.scales.float(), g.opacities.float(),
                                 w2c, K, camera.width, camera.height)
        out = rasterize(proj, g.means.new_zeros((len(proj), 0)), camera.width, camera.height, weight_sums=weight_sums)
    return proj, out


def _photo_visibility(rest: Gaussians, camera: Camera, backend: str, cpu_threads: int) -> Tensor:
    from ..render_backends import resolve_backend

    g = rest
    if resolve_backend(backend) == "gsplat":
        from .gsplat_backend import gsplat_weight_sums

        g = rest.to("cuda")  # as render() does: callers hold CPU Gaussians (lifted, read from PLY)
        weights, conics, projected, depth_sum, alpha = gsplat_weight_sums(g, camera)
        vis = visibility_from_weights(weights, g.opacities.float(), conics)
        vis = torch.where(projected, vis, torch.zeros_like(vis)).detach()
    else:
        proj, out = _coverage(g, camera, weight_sums=True, cpu_threads=cpu_threads)
        vis = g.means.new_zeros(len(g))
        vis[proj.ids] = visibility_from_weights(out.weight_sums, proj.opacities, proj.conics)
        depth_sum, alpha = out.depth, out.alpha
    seen = torch.maximum(vis.to(g.device), on_front_surface(g, camera, depth_sum.to(g.device), alpha.to(g.device)))
    return seen.to(rest.device)
