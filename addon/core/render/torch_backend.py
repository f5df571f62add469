"""Pure-torch tile rasteriser (CPU or any torch device), classic 3DGS rules.

Algorithm (no Python loop over Gaussians):
1. Sort the projected Gaussians by camera depth (stable; two 16-bit radix passes).
2. Bin them into small tiles: per Gaussian and tile row, the x extent of the
   ellipse where alpha >= 1/255 gives the tiles it can reach (tighter than its
   bounding box, and exact: tiles left out would only see alphas that are skipped);
   a stable sort by tile id keeps each tile's list in depth order.
3. Per (Gaussian, tile) pair, write the exponent ln(o) - 1/2 d^T Sigma^-1 d as a
   quadratic in tile-centred pixel coordinates, so that a whole chunk of
   exponents comes out of one small matrix product with a fixed [P, 6] basis.
4. Lay every tile's list out in chunks of CHUNK Gaussians, level by level
   (level c = the c-th chunk of every tile long enough to have one), so that a
   level is a contiguous slab and the walk front to back needs no gathers.
5. Per slab block (sized to stay in cache): alpha = min(0.999, exp2(...)), skipped
   below 1/255; transmittance from a cumulative product; a Gaussian whose
   contribution would take the transmittance to 1e-4 or below is excluded, and so
   is everything behind it (gsplat's rule). Tiles whose pixels have all finished
   are dropped from later levels.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.functional import threshold_

from .projection import ALPHA_MIN, ProjectedGaussians

ALPHA_MAX = 0.999          # gsplat's clamp (the original 3DGS CUDA code uses 0.99)
TRANSMITTANCE_MIN = 1e-4   # a pixel is finished once its transmittance would reach this
TILE_SIZE = (8, 8)         # tile width, height in pixels: fewer (Gaussian, tile) pairs vs fewer wasted alpha evaluations
CHUNK = 32                 # Gaussians per tile per step
BLOCK_ELEMENTS = 1 << 18   # alpha values per step, to keep the working set in cache
_LEVEL_MARGIN = 1e-2       # added to the alpha >= 1/255 bound on d^T Q d when culling tiles: float rounding
_PIXEL_MARGIN = 1e-2       # pixels, likewise

SCRATCH_KEPT_MAX = 1 << 26  # floats (256 MiB): larger per-frame coefficient buffers are not kept between frames

_LOG2E = 1.0 / math.log(2.0)  # exponents are kept in log2 units: exp2 is faster than exp
_LOG2_ALPHA_MAX = math.log2(ALPHA_MAX)
_LOG2_ALPHA_MIN = math.log2(ALPHA_MIN)


@dataclass
class RasterOutput:
    color: Tensor  # [H, W, C] premultiplied features, sum of w_i c_i (C = 3 for RGB)
    alpha: Tensor  # [H, W] sum of w_i = 1 - transmittance where compositing stopped
    depth: Tensor  # [H, W] sum of w_i z_i (divide by alpha for the expected depth)
    weight_sums: Tensor | None = None  # [M] per projected Gaussian: sum over pixels of w_i (when asked for)


def tile_basis(tile: tuple[int, int], device=None, dtype=torch.float32) -> Tensor:  # (width, height) -> [P, 6]
    """Monomials (p^2, pq, q^2, p, q, 1) of the pixel centres about the tile centre;
    p runs along x, q along y, pixel index = q_row * width + p_col."""
    offs_x, offs_y = (torch.arange(n, device=device, dtype=dtype) + 0.5 - 0.5 * n for n in tile)
    q, p = torch.meshgrid(offs_y, offs_x, indexing="ij")
    p, q = p.reshape(-1), q.reshape(-1)
    return torch.stack((p * p, p * q, q * q, p, q, torch.ones_like(p)), dim=1)


_scratch_local = threading.local()


def _scratch(numel: int, like: Tensor) -> Tensor:  # -> [numel] uninitialised, like's dtype and device
    """A CPU buffer kept per thread between frames. A fresh multi-megabyte tensor costs a page
    fault per 4 KiB on every frame (measured about 10 ms of a 512^2 frame, more inside a VM);
    CUDA's caching allocator already reuses memory."""
    if like.device.type != "cpu" or numel > SCRATCH_KEPT_MAX:
        return like.new_empty(numel)
    buf = getattr(_scratch_local, "buf", None)
    if buf is None or buf.numel() < numel or buf.dtype != like.dtype:
        buf = like.new_empty(int(numel * 1.25))  # headroom: the next frame's slab is usually a little larger
        _scratch_local.buf = buf
    return buf[:numel]


def depth_order(depths: Tensor) -> Tensor:  # [M] positive -> [M] long
    """Stable ascending argsort of positive depths in two 16-bit radix passes: the bit
    pattern of a positive float32 orders like its value, and torch sorts int16 keys
    about three times faster than floats."""
    bits = depths.float().view(torch.int32)
    low = ((bits & 0xFFFF) - (1 << 15)).to(torch.int16)
    order = torch.sort(low, stable=True)[1]
    high = (bits.index_select(0, order) >> 16).to(torch.int16)  # sign bit clear: fits
    return order.index_select(0, torch.sort(high, stable=True)[1])


def _expand(counts: Tensor) -> tuple[Tensor, Tensor]:  # [N] long -> ([T] owner, [T] index within owner)
    """Entry j of owner i for every i and j < counts[i], owner-major."""
    owner = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(owner.shape[0], device=counts.device) - starts.index_select(0, owner)


def rasterize(
    proj: ProjectedGaussians,
    colors: Tensor,  # [M, C] features per projected Gaussian (RGB: C = 3)
    width: int,
    height: int,
    *,
    tile: tuple[int, int] = TILE_SIZE,  # width, height
    chunk: int = CHUNK,
    weight_sums: bool = False,  # also return every Gaussian's total compositing weight (visibility)
) -> RasterOutput:
    device, dtype = colors.device, colors.dtype
    tile_w, tile_h = tile
    tiles_x, tiles_y = -(-width // tile_w), -(-height // tile_h)
    n_tiles, P, M = tiles_x * tiles_y, tile_w * tile_h, len(proj)
    C = colors.shape[1]
    F = C + 2  # features composited per pixel: the C colour channels, depth and 1 (alpha)
    empty = RasterOutput(colors.new_zeros((height, width, C)), colors.new_zeros((height, width)),
                         colors.new_zeros((height, width)), colors.new_zeros(M) if weight_sums else None)
    if M == 0:
        return empty

    # Per-Gaussian columns in depth order, plus one padding Gaussian (index M) of zero alpha.
    order = depth_order(proj.depths)
    table = colors.new_zeros((8 + F, M + 1))  # one row per quantity; column M: the padding Gaussian
    for i, column in enumerate((*proj.means2d.T, *proj.conics.T, proj.opacities.log(), *colors.T, proj.depths,
                                torch.ones_like(proj.depths), *proj.radii.T)):
        table[i, :M] = column
    table[5, M] = -100.0  # padding Gaussian: log opacity -100, alpha 0
    table = table.index_select(1, torch.cat((order, order.new_full((1,), M))))
    mx, my, ca, cb, cc, log_op, *features = table[:6 + F]  # features: colour channels, depth, 1
    radii_x, radii_y = table[6 + F:, :M]

    # Tile rows that each Gaussian's pixel bounding box touches.
    x_lo = torch.ceil(mx[:M] - radii_x - 0.5).clamp_min_(0)
    x_hi = torch.floor(mx[:M] + radii_x - 0.5).clamp_max_(width - 1)
    y_lo = torch.ceil(my[:M] - radii_y - 0.5).clamp_min_(0)
    y_hi = torch.floor(my[:M] + radii_y - 0.5).clamp_max_(height - 1)
    ty0 = torch.div(y_lo, tile_h, rounding_mode="floor")
    n_rows = torch.where((x_lo <= x_hi) & (y_lo <= y_hi), torch.div(y_hi, tile_h, rounding_mode="floor") - ty0 + 1,
                         0).long()
    row_gid, row_local = _expand(n_rows)  # one entry per (Gaussian, tile row)
    if row_gid.shape[0] == 0:
        return empty

    # Per Gaussian, the ellipse where alpha >= 1/255: d^T Q d <= q_max, with a small margin for float rounding.
    a, b, c = ca[:M], cb[:M], cc[:M]
    q_max = 2.0 * (log_op[:M] - math.log(ALPHA_MIN)) + _LEVEL_MARGIN
    det = a * c - b * b
    y_reach = torch.sqrt(q_max * a / det)  # half extent in y
    x_reach = torch.sqrt(q_max * c / det)
    dy_extreme = b * x_reach / c  # the leftmost point is at (-x_reach, dy_extreme), the rightmost at the mirror
    slope, span, bend = -b / a, q_max / a, det / (a * a)  # x(dy) = slope dy -/+ sqrt(span - bend dy^2)
    # Per (Gaussian, tile row): the ellipse's x extent over the band of pixel-centre rows -> the tiles it touches.
    def per_row(t: Tensor) -> Tensor:
        return t.index_select(0, row_gid)
    row = per_row(ty0) + row_local
    centre_y = per_row(my[:M])
    band_lo = row * tile_h + 0.5 - centre_y
    band_hi = torch.clamp_max(row * tile_h + (tile_h - 0.5), height - 0.5) - centre_y
    reach, ext, sl, sp, bd = (per_row(t) for t in (y_reach, dy_extreme, slope, span, bend))
    dyl = torch.minimum(torch.maximum(ext, band_lo), band_hi)
    dyr = torch.minimum(torch.maximum(-ext, band_lo), band_hi)
    centre_x = per_row(mx[:M])
    left = centre_x + sl * dyl - torch.sqrt(torch.clamp_min(sp - bd * dyl * dyl, 0.0))
    right = centre_x + sl * dyr + torch.sqrt(torch.clamp_min(sp - bd * dyr * dyr, 0.0))
    col_lo = torch.maximum(torch.ceil(left - (0.5 + _PIXEL_MARGIN)), per_row(x_lo))
    col_hi = torch.minimum(torch.floor(right - (0.5 - _PIXEL_MARGIN)), per_row(x_hi))
    tx0 = torch.div(col_lo, tile_w, rounding_mode="floor")
    n_tiles_row = torch.div(col_hi, tile_w, rounding_mode="floor") - tx0 + 1
    inside = (band_lo <= reach) & (band_hi >= -reach) & (col_lo <= col_hi)
    pair_row, pair_local = _expand(torch.where(inside, n_tiles_row, 0).long())
    total = pair_row.shape[0]
    if total == 0:
        return empty
    tile_id = (row * tiles_x + tx0).long().index_select(0, pair_row) + pair_local
    gid = row_gid.index_select(0, pair_row)  # [I] depth-major
    # A stable sort by tile keeps each tile's list in depth order; int16 keys sort fastest.
    if n_tiles <= 1 << 16:
        perm = torch.sort((tile_id - (1 << 15)).to(torch.int16), stable=True)[1]
    else:
        perm = torch.sort(tile_id.int(), stable=True)[1]
    gid = gid.index_select(0, perm)
    tile_id = tile_id.index_select(0, perm)

    # Slab layout: row r holds chunk `level` of one tile; levels are contiguous runs of rows.
    counts = torch.bincount(tile_id, minlength=n_tiles)
    levels = -(-int(counts.max()) // chunk)
    has_level = counts[None, :] > chunk * torch.arange(levels, device=device)[:, None]  # [C, n_tiles]
    level_rows = has_level.sum(1)
    row_level, row_tile = has_level.nonzero().unbind(1)  # [R] level and tile of every row, in (level, tile) order
    # Row (c, t) holds entries c K ... c K + K - 1 of tile t's list; slots past its end hold the padding Gaussian.
    ends = torch.cumsum(counts, 0)
    first_entry = (ends - counts).index_select(0, row_tile) + row_level * chunk  # [R]
    entry = first_entry[:, None] + torch.arange(chunk, device=device)  # [R, K]
    entry = torch.where(entry < ends.index_select(0, row_tile)[:, None], entry, total)
    slab_gid = torch.cat((gid, gid.new_full((1,), M))).index_select(0, entry.view(-1))  # [R K]

    # Exponent coefficients over the basis (p^2, pq, q^2, p, q, 1), in slab layout [R, 6, K].
    centre_x = ((row_tile % tiles_x).to(dtype) * tile_w + 0.5 * tile_w).repeat_interleave(chunk)
    centre_y = (torch.div(row_tile, tiles_x, rounding_mode="floor").to(dtype) * tile_h + 0.5 * tile_h).repeat_interleave(chunk)
    # Written straight into the [R, 6, K] layout: a, b, c, log o in log2 units (for exp2), d = mean - tile centre,
    # exponent = log o - 1/2 (a (p - dx)^2 + 2 b (p - dx)(q - dy) + c (q - dy)^2).
    slab = _scratch(row_tile.shape[0] * (6 + F) * chunk, colors)
    coef = slab[:row_tile.shape[0] * 6 * chunk].view(-1, 6, chunk)  # [R, 6, K]
    a, b, c = (torch.mul(t, _LOG2E).index_select(0, slab_gid).view(-1, chunk) for t in (ca, cb, cc))
    dx = mx.index_select(0, slab_gid).view(-1, chunk).sub_(centre_x.view(-1, chunk))
    dy = my.index_select(0, slab_gid).view(-1, chunk).sub_(centre_y.view(-1, chunk))
    torch.mul(a, -0.5, out=coef[:, 0])
    torch.neg(b, out=coef[:, 1])
    torch.mul(c, -0.5, out=coef[:, 2])
    lin_p = torch.addcmul(a * dx, b, dy, out=coef[:, 3])  # a dx + b dy
    lin_q = torch.addcmul(c * dy, b, dx, out=coef[:, 4])  # b dx + c dy
    torch.add(torch.mul(log_op, _LOG2E).index_select(0, slab_gid).view(-1, chunk),
              torch.addcmul(dx * lin_p, dy, lin_q), alpha=-0.5, out=coef[:, 5])
    feats = slab[row_tile.shape[0] * 6 * chunk:].view(-1, F, chunk)  # [R, F, K]
    for j, f in enumerate(features):
        feats[:, j] = f.index_select(0, slab_gid).view(-1, chunk)

    basis = tile_basis(tile, device, dtype).expand(block := max(1, BLOCK_ELEMENTS // (chunk * P)), P, 6)  # [B, P, 6]
    clamp_alpha = bool(proj.opacities.max() > ALPHA_MAX)  # else o exp(...) <= o is never above the clamp
    trans = colors.new_ones((n_tiles, P))  # running transmittance (includes excluded Gaussians)
    accum = colors.new_zeros((n_tiles, F, P))  # sum of w * (colour..., depth, 1)
    wsum = colors.new_zeros(M + 1) if weight_sums else None  # per depth-sorted Gaussian; M: padding
    slab_gid_rows = slab_gid.view(-1, chunk)
    # Work buffers reused by every block: fresh large tensors would cost a page fault per 4 KiB.
    expo_buf = colors.new_empty((block, P, chunk))
    keep_buf = colors.new_empty((block, P, chunk + 1))  # column 0: transmittance before the chunk
    trans_buf = colors.new_empty((block, P, chunk + 1))  # column k: transmittance before Gaussian k
    sums_buf = colors.new_empty((block, F, P))
    first = 0
    for level in range(levels):
        n_rows = int(level_rows[level])
        rows = None  # None: every row of the level, taken as a slice
        if level:  # drop tiles whose pixels have all finished
            live = (trans.index_select(0, row_tile[first:first + n_rows]) > TRANSMITTANCE_MIN).any(1)
            if not bool(live.all()):
                rows = live.nonzero().squeeze(1) + first
                n_rows = rows.shape[0]
        for b0 in range(0, n_rows, block):
            if rows is None:
                sl = slice(first + b0, first + min(b0 + block, n_rows))
                tiles, level_coef, level_feats = row_tile[sl], coef[sl], feats[sl]
                level_gid = slab_gid_rows[sl] if weight_sums else None
            else:
                r = rows[b0:b0 + block]
                tiles, level_coef, level_feats = row_tile.index_select(0, r), coef.index_select(0, r), feats.index_select(0, r)
                level_gid = slab_gid_rows.index_select(0, r) if weight_sums else None
            n = tiles.shape[0]
            alpha, keep, t, sums = expo_buf[:n], keep_buf[:n], trans_buf[:n], sums_buf[:n]
            torch.bmm(basis[:n], level_coef, out=alpha)  # log2 of o exp(-1/2 d^T Sigma^-1 d), [n, P, K]
            threshold_(alpha, _LOG2_ALPHA_MIN, -math.inf)  # alpha < 1/255: skipped (exp2 -> 0)
            if clamp_alpha:
                alpha.clamp_max_(_LOG2_ALPHA_MAX)
            alpha.exp2_()
            keep[:, :, 0] = trans.index_select(0, tiles)
            keep_k = keep[:, :, 1:]
            torch.sub(1.0, alpha, out=keep_k)
            torch.cumprod(keep, dim=2, out=t)
            t_after = t[:, :, 1:]
            threshold_(t_after, TRANSMITTANCE_MIN, 0.0)  # excluded: the Gaussian that reaches 1e-4 and all after
            weights = alpha.div_(keep_k).mul_(t_after)  # alpha * T_before
            accum.index_add_(0, tiles, torch.bmm(level_feats, weights.transpose(1, 2), out=sums))
            if weight_sums:
                wsum.index_add_(0, level_gid.reshape(-1), weights.sum(1).reshape(-1))
            trans.index_copy_(0, tiles, t[:, :, -1])
        first += int(level_rows[level])

    # Channel-first image: copying runs of `tile_w` floats is cheap, moving 5-float channels last is not.
    image = accum.view(tiles_y, tiles_x, F, tile_h, tile_w).permute(2, 0, 3, 1, 4).reshape(F, tiles_y * tile_h,
                                                                                         tiles_x * tile_w)
    image = image[:, :height, :width].permute(1, 2, 0)  # [H, W, F] view
    sums = None
    if weight_sums:  # back from depth order to the projected Gaussians' order
        sums = torch.empty_like(wsum[:M]).index_copy_(0, order, wsum[:M])
    return RasterOutput(image[..., :C], image[..., C + 1], image[..., C], sums)
