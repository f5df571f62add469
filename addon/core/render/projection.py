"""EWA projection of 3D Gaussians to image-space ellipses, as gsplat's
`fully_fused_projection` does in "classic" mode.

Per Gaussian: camera-space mean; 3D covariance R S S^T R^T taken to camera space;
2D covariance J Sigma J^T with the perspective Jacobian J evaluated at the mean
clamped to 1.3x the field of view (gsplat's guard against huge off-screen
footprints); `EPS2D` = 0.3 px^2 added to the diagonal (the low-pass filter);
opacity-aware bounding radius extend * sqrt(Sigma_xx), extend = min(3.33,
sqrt(2 ln(255 o))), outside of which alpha < 1/255 anyway. Gaussians behind the
near plane, with a degenerate covariance, below 1/255 opacity or wholly off-screen
are culled.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .. import quaternion

EPS2D = 0.3             # px^2 added to the 2D covariance diagonal
NEAR_PLANE = 0.01       # camera-space z below which a Gaussian is culled
FAR_PLANE = 1e10
ALPHA_MIN = 1.0 / 255.0  # contributions below this are skipped
MAX_EXTEND = 3.33        # bounding radius cap, in standard deviations
FOV_CLAMP = 1.3          # Jacobian evaluated within 1.3x the half field of view


@dataclass
class ProjectedGaussians:
    """The Gaussians that survive culling, in image space. M of the N inputs."""
    ids: Tensor        # [M] long, index into the input Gaussians
    means2d: Tensor    # [M, 2] pixels, pixel centres at +0.5
    conics: Tensor     # [M, 3] (a, b, c): inverse 2D covariance [[a, b], [b, c]]
    depths: Tensor     # [M] camera-space z
    radii: Tensor      # [M, 2] float, whole pixels: half extent of the bounding box in x and y
    opacities: Tensor  # [M] in [1/255, 1)
    # With `keep_axes`: rows of J R R_q S, the splats' scaled axes on the screen ([3, M] each, as
    # `screen_axes`), for the photo reprojection's per-splat maps without projecting twice.
    axes: tuple[Tensor, Tensor] | None = None

    def __len__(self) -> int:
        return self.ids.shape[0]


def project_gaussians(
    means: Tensor,            # [N, 3] world
    quats: Tensor,            # [N, 4] wxyz
    scales: Tensor,           # [N, 3] standard deviations
    opacities: Tensor,        # [N] in (0, 1)
    world_to_camera: Tensor,  # [4, 4] OpenCV axes
    K: Tensor,                # [3, 3]
    width: int,
    height: int,
    near_plane: float = NEAR_PLANE,
    eps2d: float = EPS2D,
    keep_axes: bool = False,
) -> ProjectedGaussians:
    dtype = means.dtype
    R = world_to_camera[:3, :3].to(dtype)
    t = world_to_camera[:3, 3].to(dtype)
    # Per-Gaussian quantities are kept as rows of [k, N] tensors: contiguous rows make the
    # elementwise work below several times faster than strided columns of [N, k].
    cam = torch.addmm(t[:, None], R, means.T)  # [3, N]
    keep = (cam[2] > near_plane) & (cam[2] < FAR_PLANE) & (opacities >= ALPHA_MIN)
    ids = keep.nonzero().squeeze(1)
    everything = ids.shape[0] == means.shape[0]  # common case: skip the gathers
    if not everything:
        cam = cam.index_select(1, ids)
        quats, scales, opacities = (x.index_select(0, ids) for x in (quats, scales, opacities))
    z = cam[2]
    u, v, row_x, row_y = screen_axes(cam, quats, scales, R, K, width, height)
    a = _dot3(row_x, row_x) + eps2d
    b = _dot3(row_x, row_y)
    c = _dot3(row_y, row_y) + eps2d
    det = a * c - b * b

    extend = torch.sqrt(2.0 * torch.log(opacities / ALPHA_MIN)).clamp_max(MAX_EXTEND)
    rx = torch.ceil(extend * a.clamp_min(0).sqrt())
    ry = torch.ceil(extend * c.clamp_min(0).sqrt())
    good = (det > 0) & ((rx > 0) | (ry > 0)) & (u + rx > 0) & (u - rx < width) & (v + ry > 0) & (v - ry < height)
    sel = good.nonzero().squeeze(1)
    pick = (lambda t: t.index_select(0, sel)) if sel.shape[0] < good.shape[0] else (lambda t: t)
    a, b, c, det, u, v, rx, ry, z, opacities = (pick(t) for t in (a, b, c, det, u, v, rx, ry, z, opacities))
    inv_det = 1.0 / det
    axes = None
    if keep_axes:
        pick_rows = (lambda t: t.index_select(1, sel)) if sel.shape[0] < good.shape[0] else (lambda t: t)
        axes = (pick_rows(row_x), pick_rows(row_y))
    return ProjectedGaussians(  # [M, k] fields as transposes of [k, M]: the rasteriser reads them by column
        ids=pick(ids),
        means2d=torch.stack((u, v)).T, conics=torch.stack((c * inv_det, -b * inv_det, a * inv_det)).T,
        depths=z, radii=torch.stack((rx, ry)).T, opacities=opacities, axes=axes,
    )


def screen_axes(
    cam: Tensor,     # [3, N] camera-space means
    quats: Tensor,   # [N, 4] wxyz, world
    scales: Tensor,  # [N, 3] standard deviations
    R: Tensor,       # [3, 3] world-to-camera rotation
    K: Tensor,       # [3, 3]
    width: int,
    height: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """-> (u [N], v [N] pixel means, row_x [3, N], row_y [3, N]): the rows of J R R_q S, each
    Gaussian's scaled axes on the screen (Sigma_2d = J R M (J R M)^T undilated), with the
    Jacobian's x/z, y/z clamped as gsplat does (`fov_limits`)."""
    dtype = cam.dtype
    x, y, z = cam.unbind(0)
    # Only the 2x3 factor J R M is formed, M = R_q S; R R_q = R(q_view q).
    q_view = quaternion.from_matrix(R.double()[None]).to(dtype)[0]  # [4]
    # R_q scaled by the standard deviations, as component-major rows [3, M] (bench quaternion:
    # core/quaternion.py here is as fast as the formulas inlined).
    m0, m1, m2 = (quaternion.to_matrix(quaternion.multiply(q_view, quats)) * scales[:, None, :]).permute(1, 2, 0) \
        .contiguous().unbind(0)
    fx, fy, cx, cy = (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))
    x_lo, x_hi, y_lo, y_hi = fov_limits(width, height, K)
    rz = 1.0 / z
    tx = torch.clamp(x * rz, x_lo, x_hi)  # clamped x/z
    ty = torch.clamp(y * rz, y_lo, y_hi)
    row_x = (fx * rz) * torch.addcmul(m0, tx, m2, value=-1.0)  # [3, M] first row of J R M
    row_y = (fy * rz) * torch.addcmul(m1, ty, m2, value=-1.0)
    return fx * x * rz + cx, fy * y * rz + cy, row_x, row_y


def _dot3(p: Tensor, q: Tensor) -> Tensor:  # [3, M] x [3, M] -> [M]; faster than (p * q).sum(0) on CPU
    return torch.addcmul(torch.addcmul(p[0] * q[0], p[1], q[1]), p[2], q[2])


def fov_limits(width: int, height: int, K) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of x/z and y/z beyond which the Jacobian is clamped:
    the image edges plus 0.3 of the half field of view (gsplat's `persp_proj`)."""
    fx, fy, cx, cy = float(K[0][0]), float(K[1][1]), float(K[0][2]), float(K[1][2])
    margin_x, margin_y = (FOV_CLAMP - 1.0) * 0.5 * width / fx, (FOV_CLAMP - 1.0) * 0.5 * height / fy
    return (-(cx / fx + margin_x), (width - cx) / fx + margin_x,
            -(cy / fy + margin_y), (height - cy) / fy + margin_y)

