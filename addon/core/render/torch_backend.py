"""Pure-torch tile rasteriser (CPU or any torch device), classic 3DGS rules.

Algorithm (no Python loop over Gaussians):
1. Sort the projected Gaussians by camera depth (stable).
2. Bin them into small square tiles by their pixel bounding boxes; a stable sort
   by tile id keeps each tile's list in depth order.
3. Per (Gaussian, tile) pair, write the exponent ln(o) - 1/2 d^T Sigma^-1 d as a
   quadratic in tile-centred pixel coordinates, so that a whole chunk of
   exponents comes out of one small matrix product with a fixed [P, 6] basis.
4. Lay every tile's list out in chunks of CHUNK Gaussians, level by level
   (level c = the c-th chunk of every tile long enough to have one), so that a
   level is a contiguous slab and the walk front to back needs no gathers.
5. Per slab block (sized to stay in cache): alpha = min(0.999, exp(...)), skipped
   below 1/255; transmittance from a cumulative product; a Gaussian whose
   contribution would take the transmittance to 1e-4 or below is excluded, and so
   is everything behind it (gsplat's rule). Tiles whose pixels have all finished
   are dropped from later levels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.functional import threshold_

from .projection import ALPHA_MIN, ProjectedGaussians

ALPHA_MAX = 0.999          # gsplat's clamp (the original 3DGS CUDA code uses 0.99)
TRANSMITTANCE_MIN = 1e-4   # a pixel is finished once its transmittance would reach this
TILE_SIZE = 8              # pixels per tile side: fewer (Gaussian, tile) pairs vs fewer wasted alpha evaluations
CHUNK = 32                 # Gaussians per tile per step
BLOCK_ELEMENTS = 1 << 18   # alpha values per step, to keep the working set in cache
_EXP_FLOOR = -20.0         # exp() is slow far below -87 (denormals); alpha there is 0 anyway

_LOG_ALPHA_MAX = math.log(ALPHA_MAX)


@dataclass
class RasterOutput:
    color: Tensor  # [H, W, 3] premultiplied colour, sum of w_i c_i
    alpha: Tensor  # [H, W] sum of w_i = 1 - transmittance where compositing stopped
    depth: Tensor  # [H, W] sum of w_i z_i (divide by alpha for the expected depth)


def tile_basis(tile: int, device=None, dtype=torch.float32) -> Tensor:  # -> [P, 6]
    """Monomials (p^2, pq, q^2, p, q, 1) of the pixel centres about the tile centre;
    p runs along x, q along y, pixel index = q_row * tile + p_col."""
    offs = torch.arange(tile, device=device, dtype=dtype) + 0.5 - 0.5 * tile
    q, p = torch.meshgrid(offs, offs, indexing="ij")
    p, q = p.reshape(-1), q.reshape(-1)
    return torch.stack((p * p, p * q, q * q, p, q, torch.ones_like(p)), dim=1)


def rasterize(
    proj: ProjectedGaussians,
    colors: Tensor,  # [M, 3] per projected Gaussian
    width: int,
    height: int,
    *,
    tile: int = TILE_SIZE,
    chunk: int = CHUNK,
) -> RasterOutput:
    device, dtype = colors.device, colors.dtype
    tiles_x, tiles_y = -(-width // tile), -(-height // tile)
    n_tiles, P, M = tiles_x * tiles_y, tile * tile, len(proj)
    empty = RasterOutput(colors.new_zeros((height, width, 3)), colors.new_zeros((height, width)),
                         colors.new_zeros((height, width)))
    if M == 0:
        return empty

    # Per-Gaussian columns in depth order, plus one padding Gaussian (index M) of zero alpha.
    order = torch.argsort(proj.depths, stable=True)
    unsorted = (*proj.means2d.T, *proj.conics.T, proj.opacities.log(), *colors.T, proj.depths,
                torch.ones_like(proj.depths))
    pad = (0.0,) * 5 + (-100.0,) + (0.0,) * 5  # padding Gaussian: log opacity -100, alpha 0
    mx, my, ca, cb, cc, log_op, *features = (  # features: r, g, b, depth, 1
        torch.cat((col.index_select(0, order), col.new_full((1,), value))) for col, value in zip(unsorted, pad))
    radii = proj.radii.index_select(0, order)

    # Pixels whose centres lie in the bounding box, and the tiles they fall in.
    x_lo = torch.ceil(mx[:M] - radii[:, 0] - 0.5)
    x_hi = torch.floor(mx[:M] + radii[:, 0] - 0.5)
    y_lo = torch.ceil(my[:M] - radii[:, 1] - 0.5)
    y_hi = torch.floor(my[:M] + radii[:, 1] - 0.5)
    hits = (x_hi >= 0) & (x_lo <= width - 1) & (x_lo <= x_hi) & (y_hi >= 0) & (y_lo <= height - 1) & (y_lo <= y_hi)
    tx0 = torch.div(x_lo.clamp(0, width - 1), tile, rounding_mode="floor").long()
    tx1 = torch.div(x_hi.clamp(0, width - 1), tile, rounding_mode="floor").long()
    ty0 = torch.div(y_lo.clamp(0, height - 1), tile, rounding_mode="floor").long()
    ty1 = torch.div(y_hi.clamp(0, height - 1), tile, rounding_mode="floor").long()
    nx = tx1 - tx0 + 1
    per_gauss = torch.where(hits, nx * (ty1 - ty0 + 1), 0)
    total = int(per_gauss.sum())
    if total == 0:
        return empty
    gid = torch.repeat_interleave(torch.arange(M, device=device), per_gauss)  # [I], depth-major
    local = torch.arange(total, device=device) - (torch.cumsum(per_gauss, 0) - per_gauss).index_select(0, gid)
    nx_i = nx.index_select(0, gid)
    row = torch.div(local, nx_i, rounding_mode="floor")
    tile_id = (ty0.index_select(0, gid) + row) * tiles_x + tx0.index_select(0, gid) + (local - row * nx_i)
    tile_id, perm = torch.sort(tile_id.int(), stable=True)  # stable: depth order kept within a tile
    gid = gid.index_select(0, perm)
    tile_id = tile_id.long()

    # Slab layout: row r holds chunk `level` of one tile; levels are contiguous runs of rows.
    counts = torch.bincount(tile_id, minlength=n_tiles)
    levels = -(-int(counts.max()) // chunk)
    has_level = counts[None, :] > chunk * torch.arange(levels, device=device)[:, None]  # [C, n_tiles]
    rank = torch.cumsum(has_level.view(-1).long(), 0).view(levels, n_tiles) - 1  # row of (level, tile)
    level_rows = has_level.sum(1)
    row_tile = has_level.nonzero()[:, 1]  # [R] tile of every row, rows in (level, tile) order
    position = torch.arange(total, device=device) - (torch.cumsum(counts, 0) - counts).index_select(0, tile_id)
    level_of = torch.div(position, chunk, rounding_mode="floor")
    slot = rank.view(-1).index_select(0, level_of * n_tiles + tile_id) * chunk + (position - level_of * chunk)
    slab_gid = gid.new_full((row_tile.shape[0] * chunk,), M).index_copy_(0, slot, gid)

    # Exponent coefficients over the basis (p^2, pq, q^2, p, q, 1), in slab layout [R, 6, K].
    centre_x = ((row_tile % tiles_x).to(dtype) * tile + 0.5 * tile).repeat_interleave(chunk)
    centre_y = (torch.div(row_tile, tiles_x, rounding_mode="floor").to(dtype) * tile + 0.5 * tile).repeat_interleave(chunk)
    dx = mx.index_select(0, slab_gid) - centre_x
    dy = my.index_select(0, slab_gid) - centre_y
    a, b, c = (t.index_select(0, slab_gid) for t in (ca, cb, cc))
    bdx, bdy = b * dx, b * dy
    coef = torch.stack([t.view(-1, chunk) for t in (
        -0.5 * a, -b, -0.5 * c, a * dx + bdy, c * dy + bdx,
        log_op.index_select(0, slab_gid) - 0.5 * (a * dx * dx + 2 * bdy * dx + c * dy * dy))], dim=1)  # [R, 6, K]
    feats = torch.stack([f.index_select(0, slab_gid).view(-1, chunk) for f in features], dim=1)  # [R, 5, K]

    basis = tile_basis(tile, device, dtype)  # [P, 6]
    trans = colors.new_ones((n_tiles, P))  # running transmittance (includes excluded Gaussians)
    accum = colors.new_zeros((n_tiles, 5, P))  # sum of w * (r, g, b, depth, 1)
    block = max(1, BLOCK_ELEMENTS // (chunk * P))
    # Work buffers reused by every block: fresh large tensors would cost a page fault per 4 KiB.
    expo_buf = colors.new_empty((block, P, chunk))
    keep_buf = colors.new_empty((block, P, chunk))
    trans_buf = colors.new_empty((block, P, chunk))
    sums_buf = colors.new_empty((block, 5, P))
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
            else:
                r = rows[b0:b0 + block]
                tiles, level_coef, level_feats = row_tile.index_select(0, r), coef.index_select(0, r), feats.index_select(0, r)
            n = tiles.shape[0]
            alpha, keep, t_after, sums = expo_buf[:n], keep_buf[:n], trans_buf[:n], sums_buf[:n]
            torch.matmul(basis, level_coef, out=alpha)  # exponents [n, P, K]
            alpha.clamp_(_EXP_FLOOR, _LOG_ALPHA_MAX).exp_()
            threshold_(alpha, ALPHA_MIN, 0.0)  # alpha < 1/255: skipped
            torch.sub(1.0, alpha, out=keep)
            torch.cumprod(keep, dim=2, out=t_after)
            t_after.mul_(trans.index_select(0, tiles)[:, :, None])
            threshold_(t_after, TRANSMITTANCE_MIN, 0.0)  # excluded: the Gaussian that reaches 1e-4 and all after
            weights = alpha.div_(keep).mul_(t_after)  # alpha * T_before
            accum.index_add_(0, tiles, torch.bmm(level_feats, weights.transpose(1, 2), out=sums))
            trans.index_copy_(0, tiles, t_after[:, :, -1])
        first += int(level_rows[level])

    image = accum.view(tiles_y, tiles_x, 5, tile, tile).permute(0, 3, 1, 4, 2).reshape(tiles_y * tile, tiles_x * tile, 5)
    image = image[:height, :width]
    return RasterOutput(image[..., :3], image[..., 4], image[..., 3])
