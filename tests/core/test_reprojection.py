"""Photo reprojection against a slow per-pixel reference, and its properties.

The reference composites each Gaussian's weight image in float64 (front to back, gsplat's
classic rules, as in test_render.py) and forms every pixel's source coordinate from the
brief's formula, written out directly: the Gaussian conditional mean of the posed 3D offset
given the screen offset, x' = Sigma' J'^T (J' Sigma' J'^T)^-1 d, carried back to rest by
A^-1 (A = R' diag(S'/S) R^T) and into the photo by J_photo. The renderer's closed form
(M = D B^+) is a different route to the same map. Float32 vs float64 leaves ~1e-4 px.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_render import look_at_camera, quat_matrix

from uplift.core.camera import Camera
from uplift.core.errors import ConfigError
from uplift.core.gaussians import SH_C0, Gaussians
from uplift.core.render import render
from uplift.core.render.reprojection import (CONDITION_FADE, PIXEL_SEEN_FULL, SHARE_OPEN_RADIUS, PhotoSource,
                                             photo_visibility, smooth_share, visibility_from_weights)
from uplift.core.render.projection import project_gaussians
from uplift.core.render.torch_backend import rasterize
from uplift.core.transforms import Similarity, apply_similarity

W, H = 40, 32


def scene(n: int = 12, seed: int = 0) -> Gaussians:
    """Small, well-inside-the-view Gaussians (the Jacobian clamp never applies)."""
    gen = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=gen) - 0.5) * 0.8
    quats = torch.randn(n, 4, generator=gen)
    log_scales = torch.log(0.04 + 0.12 * torch.rand(n, 3, generator=gen))
    logits = torch.randn(n, generator=gen)
    sh = torch.randn(n, 1, 3, generator=gen) * 0.5
    return Gaussians(means=means, quats=quats, log_scales=log_scales, opacity_logits=logits, sh=sh)


def turned(g: Gaussians, yaw_deg: float, scale: float = 1.0) -> Gaussians:
    a = math.radians(yaw_deg)
    R = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1.0]])  # about world Z
    return apply_similarity(g, Similarity(R, np.array([0.05, -0.1, 0.02]), scale))


def textured_photo(cam: Camera) -> torch.Tensor:  # [H, W, 3] smooth but far from constant
    ys, xs = np.mgrid[0:cam.height, 0:cam.width] + 0.5
    img = np.stack([0.5 + 0.4 * np.sin(xs / 3.0), 0.5 + 0.4 * np.cos(ys / 2.5), (xs + ys) / (cam.width + cam.height)], -1)
    return torch.from_numpy(img.astype(np.float32))


def reference_weights(g: Gaussians, cam: Camera) -> tuple[np.ndarray, list[int]]:
    """-> (w [N, H, W] float64 compositing weight of each Gaussian at each pixel, ids in depth order)."""
    R, t = cam.world_to_camera[:3, :3], cam.world_to_camera[:3, 3]
    fx, fy, cx, cy = cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]
    ys, xs = np.mgrid[0:cam.height, 0:cam.width] + 0.5
    means, quats = g.means.double().numpy(), g.quats.double().numpy()
    scales, opac = g.log_scales.double().exp().numpy(), torch.sigmoid(g.opacity_logits.double()).numpy()
    depth = [(R @ means[i] + t)[2] for i in range(len(g))]
    order = sorted(range(len(g)), key=lambda i: (depth[i], i))
    T = np.ones(xs.shape)
    done = np.zeros(xs.shape, bool)
    w = np.zeros((len(g),) + xs.shape)
    for i in order:
        p = R @ means[i] + t
        J = np.array([[fx / p[2], 0, -fx * p[0] / p[2] ** 2], [0, fy / p[2], -fy * p[1] / p[2] ** 2]])
        Mq = quat_matrix(quats[i]) @ np.diag(scales[i])
        conic = np.linalg.inv(J @ R @ Mq @ Mq.T @ R.T @ J.T + 0.3 * np.eye(2))
        dx, dy = xs - (fx * p[0] / p[2] + cx), ys - (fy * p[1] / p[2] + cy)
        alpha = np.minimum(0.999, opac[i] * np.exp(-0.5 * (conic[0, 0] * dx * dx + 2 * conic[0, 1] * dx * dy
                                                           + conic[1, 1] * dy * dy)))
        active = (alpha >= 1 / 255) & ~done
        stop = active & (T * (1 - alpha) <= 1e-4)
        use = active & ~stop
        w[i] = np.where(use, alpha * T, 0.0)
        T = np.where(use, T * (1 - alpha), T)
        done |= stop
    return w, order


def reference_map(rest: Gaussians, posed: Gaussians, i: int, photo_cam: Camera, cam: Camera):
    """-> (s [2] photo projection of the rest mean, mu' [2] render projection, M [2, 2]) for Gaussian i."""
    def project(c: Camera, x):
        R, t = c.world_to_camera[:3, :3], c.world_to_camera[:3, 3]
        p = R @ x + t
        fx, fy = c.K[0, 0], c.K[1, 1]
        J = np.array([[fx / p[2], 0, -fx * p[0] / p[2] ** 2], [0, fy / p[2], -fy * p[1] / p[2] ** 2]]) @ R
        return np.array([fx * p[0] / p[2] + c.K[0, 2], fy * p[1] / p[2] + c.K[1, 2]]), J

    Rr, Rp = quat_matrix(rest.quats[i].double().numpy()), quat_matrix(posed.quats[i].double().numpy())
    Sr, Sp = rest.log_scales[i].double().exp().numpy(), posed.log_scales[i].double().exp().numpy()
    A_inv = Rr @ np.diag(Sr / Sp) @ Rp.T
    cov = Rp @ np.diag(Sp ** 2) @ Rp.T
    s, J_photo = project(photo_cam, rest.means[i].double().numpy())
    mu, J = project(cam, posed.means[i].double().numpy())
    M = J_photo @ A_inv @ cov @ J.T @ np.linalg.inv(J @ cov @ J.T)
    return s, mu, M


def reference_reprojection(rest, posed, visibility, photo_cam, cam):
    """-> (seen U [H, W], source [H, W, 2], lifted colour sum of w (1 - u) c [H, W, 3], alpha [H, W])."""
    w, _ = reference_weights(posed, cam)
    ys, xs = np.mgrid[0:cam.height, 0:cam.width] + 0.5
    p = np.stack([xs, ys], -1)
    U = np.zeros(xs.shape)
    src = np.zeros(xs.shape + (2,))
    lifted = np.zeros(xs.shape + (3,))
    colours = np.maximum(0.5 + 0.28209479177387814 * posed.sh[:, 0].double().numpy(), 0.0)  # degree 0
    for i in range(len(rest)):
        s, mu, M = reference_map(rest, posed, i, photo_cam, cam)
        sv = np.linalg.svd(M, compute_uv=False)
        lo, hi = CONDITION_FADE
        fade = float(np.clip((hi - sv[0] / sv[1]) / (hi - lo), 0, 1)) if np.linalg.det(M) > 0 else 0.0
        u = w[i] * float(visibility[i]) * fade
        U += u
        src += u[..., None] * (s + (p - mu) @ M.T)
        lifted += (w[i] - u)[..., None] * colours[i]
    return U, src / np.maximum(U, 1e-300)[..., None], lifted, w.sum(0)


def reference_share(raw: np.ndarray, alpha: np.ndarray, radius: int = SHARE_OPEN_RADIUS) -> np.ndarray:
    """`smooth_share` pixel by pixel: over each window (clipped to the image) of covered pixels,
    the min (erosion), then the max of those (opening), then their alpha-weighted mean."""
    H, W = raw.shape
    covered = alpha > 0

    def window(y, x):
        return [(v, u) for v in range(max(0, y - radius), min(H, y + radius + 1))
                for u in range(max(0, x - radius), min(W, x + radius + 1)) if covered[v, u]]

    eroded, opened, out = np.ones_like(raw), np.zeros_like(raw), np.zeros_like(raw)
    for y, x in zip(*np.nonzero(covered)):
        eroded[y, x] = min(raw[v, u] for v, u in window(y, x))
    for y, x in zip(*np.nonzero(covered)):
        opened[y, x] = max(eroded[v, u] for v, u in window(y, x))
    for y, x in zip(*np.nonzero(covered)):
        near = window(y, x)
        out[y, x] = sum(opened[v, u] * alpha[v, u] for v, u in near) / sum(alpha[v, u] for v, u in near)
    return out


def test_share_smoothing_removes_photo_specks_at_a_seam_but_keeps_thin_seen_parts():
    """A turned rim: seen surface (share 1) left, unseen side wall (0) right, and between them a
    band where single seen pixels alternate with unseen ones (the demo cup's dotted lip). Apart,
    a seen stalk one pixel wide with nothing around it (a spoon's handle)."""
    H, W = 24, 40
    raw, alpha = np.zeros((H, W)), np.zeros((H, W))
    alpha[2:22, 2:30] = 1.0
    raw[2:22, 2:12] = 1.0
    raw[2:22:2, 13] = raw[3:22:2, 15] = 1.0      # specks in the seam band
    alpha[2:22, 35] = raw[2:22, 35] = 1.0          # the stalk
    ours = smooth_share(torch.from_numpy(raw), torch.from_numpy(alpha)).numpy()
    np.testing.assert_allclose(ours, reference_share(raw, alpha), atol=1e-12)
    assert ours[2:22, 2:9].min() == 1.0            # the seen surface keeps the photo
    assert ours[2:22, 13:16].max() < 0.35          # no speck shows its photo pixel
    assert ours[2:22, 35].min() == 1.0 and ours[:, 33:35].max() == 0.0
    assert raw[2:22, 13:16].max() == 1.0           # (they did before)


@pytest.mark.parametrize("yaw, scale, size", [(25.0, 1.0, (W, H)), (-40.0, 1.3, (W, H)), (10.0, 0.8, (56, 44))])
def test_reprojection_matches_the_per_pixel_reference(yaw, scale, size):
    rest = scene()
    photo_cam = look_at_camera(W, H, eye=(0.3, -3.0, 0.6))
    cam = look_at_camera(*size, eye=(-0.2, -3.2, 0.4), fov=45)
    posed = turned(rest, yaw, scale)
    visibility = torch.rand(len(rest), generator=torch.Generator().manual_seed(1))
    photo = PhotoSource(textured_photo(photo_cam), photo_cam, rest, visibility)
    ours = render(posed, cam, backend="torch", photo=photo)
    U, src, lifted, alpha = reference_reprojection(rest, posed, visibility.numpy(), photo_cam, cam)
    assert U.max() > 0.3 and lifted.max() > 0.2  # both the photo and the lifted colours reach the render
    for name, ref in (("seen", U), ("lifted", lifted), ("alpha", alpha)):
        err = np.abs(getattr(ours.layers, name).numpy() - ref).max()
        assert err < 1e-4, f"{name} off by {err:.2e}"
    strong = U > 0.05
    err = np.abs(ours.source_xy.numpy() - src)[strong]
    assert err.max() < 2e-3, f"source coordinates off by {err.max():.2e} px"
    # Straight colour: photo(source) and the unseen share's lifted colour, by the seen fraction
    # saturating at PIXEL_SEEN_FULL and smoothed at seams (resolve's solid alpha leaves straight colour alone).
    photo_at_src = photo.sample(torch.from_numpy(src).float()).double().numpy()
    share = reference_share(np.clip(U / np.maximum(alpha, 1e-12) / PIXEL_SEEN_FULL, 0, 1), alpha)[..., None]
    expected = share * photo_at_src + (1 - share) * lifted / np.maximum(alpha - U, 1e-12)[..., None]
    covered = alpha > 0.05
    assert np.abs(ours.rgba[..., :3].numpy() - expected)[covered].max() < 2e-3


def test_identity_source_is_the_pixel_itself_at_any_render_scale():
    """posed == rest: every covered pixel takes the photo pixel under it, also when rendering at
    another resolution of the photo's view (the pipeline's working size)."""
    rest = scene(30, seed=3)
    photo_cam = look_at_camera(W, H)
    photo = PhotoSource(textured_photo(photo_cam), photo_cam, rest, torch.ones(len(rest)))
    for factor in (1.0, 0.5, 1.5):
        out = render(rest, photo_cam, backend="torch", photo=photo, scale=factor)
        cam = out.camera
        ys, xs = np.mgrid[0:cam.height, 0:cam.width] + 0.5
        expected = np.stack([xs * photo_cam.width / cam.width, ys * photo_cam.height / cam.height], -1)
        covered = out.layers.seen.numpy() > 1e-3
        assert covered.mean() > 0.1
        assert np.abs(out.source_xy.numpy() - expected)[covered].max() < 1e-3
        assert np.allclose(out.seen.numpy()[covered], 1.0, atol=1e-5)


def test_resampled_layers_keep_the_source_exact():
    """The pipeline renders small and samples the photo at full size: the upsampled source field
    of an identity render is still each full-size pixel's own centre."""
    rest = scene(30, seed=4)
    photo_cam = look_at_camera(3 * W, 3 * H)
    photo = PhotoSource(textured_photo(photo_cam), photo_cam, rest, torch.ones(len(rest)))
    small = render(rest, photo_cam.scaled(1 / 3), backend="torch", photo=photo)
    big = small.layers.resampled(photo_cam.width, photo_cam.height)
    x0, y0 = big.origin
    h, w = big.seen.shape
    ys, xs = np.mgrid[y0:y0 + h, x0:x0 + w] + 0.5
    covered = big.seen.numpy() > 1e-3
    assert covered.mean() > 0.2
    assert np.abs(big.source_xy().numpy() - np.stack([xs, ys], -1))[covered].max() < 1e-3


def two_layer_scene() -> Gaussians:
    """A large opaque front splat and a small one right behind it (hidden from the camera)."""
    means = torch.tensor([[0.0, -0.5, 0.0], [0.0, 0.0, 0.0]])
    log_scales = torch.log(torch.tensor([[1.0, 0.02, 1.0], [0.15, 0.15, 0.15]]))
    return Gaussians(means=means, quats=torch.tensor([[1.0, 0, 0, 0]] * 2), log_scales=log_scales,
                     opacity_logits=torch.tensor([6.0, 3.0]), sh=torch.zeros(2, 1, 3))


def test_a_gaussian_hidden_from_the_photo_takes_no_photo_colour():
    rest = two_layer_scene()
    rest.sh[1, 0] = torch.tensor([1.5, -1.7, -1.7])  # its own colour: red
    photo_cam = look_at_camera(W, H, eye=(0.0, -4.0, 0.0))
    vis = photo_visibility(rest, photo_cam, backend="torch")
    assert vis[0] == 1.0 and vis[1] < 0.01
    # Pose: the front splat moves away, revealing the hidden one in place.
    posed = rest.replace(means=rest.means + torch.tensor([[10.0, 0, 0], [0, 0, 0]]))
    blue = torch.zeros(H, W, 3)
    blue[..., 2] = 1.0
    out = render(posed, photo_cam, backend="torch", photo=PhotoSource(blue, photo_cam, rest, vis))
    centre = out.rgba[H // 2, W // 2]
    assert centre[3] > 0.8
    assert centre[0] > 0.9 and centre[2] < 0.05, f"the hidden Gaussian shows {centre[:3].tolist()}"
    # The same posed splat marked visible would take the photo's blue: the test can fail.
    seen = render(posed, photo_cam, backend="torch", photo=PhotoSource(blue, photo_cam, rest, torch.ones(2)))
    assert seen.rgba[H // 2, W // 2, 2] > 0.9


def test_overlapping_splats_of_one_surface_all_count_as_seen():
    """Coplanar overlapping splats sort arbitrarily, so most look covered by a neighbour; the
    front-surface test still counts them seen, and a splat well behind the layer stays unseen."""
    gen = torch.Generator().manual_seed(2)
    n = 300
    means = torch.rand(n, 3, generator=gen) * torch.tensor([1.2, 0.0, 0.8]) - torch.tensor([0.6, 0.0, 0.4])
    means = torch.cat([means, torch.tensor([[0.0, 0.5, 0.0]])])  # behind the layer's centre
    g = Gaussians.from_colors(means, torch.rand(n + 1, 3, generator=gen), torch.full((n + 1, 3), 0.06),
                              torch.full((n + 1,), 0.9))
    vis = photo_visibility(g, look_at_camera(W, H, eye=(0.0, -4.0, 0.0)), backend="torch")
    inner = (means[:n, 0].abs() < 0.5) & (means[:n, 2].abs() < 0.3)
    assert vis[:n][inner].min() == 1.0
    assert vis[n] == 0.0


@pytest.mark.parametrize("angle, photo_share", [(20.0, (0.99, 1.0)), (80.0, (0.0, 0.05))])
def test_a_splat_turned_edge_on_fades_to_its_own_colour(angle, photo_share):
    """A flat splat facing the photo, turned by `angle` about the vertical: the photo's pixels
    are crushed 1/cos(angle) times, so at 80 deg it shows its own colour."""
    flat = Gaussians(means=torch.zeros(1, 3), quats=torch.tensor([[1.0, 0, 0, 0]]),
                     log_scales=torch.log(torch.tensor([[0.4, 0.01, 0.4]])), opacity_logits=torch.tensor([5.0]),
                     sh=torch.zeros(1, 1, 3))
    cam = look_at_camera(W, H, eye=(0.0, -4.0, 0.0))
    photo = PhotoSource(torch.zeros(H, W, 3), cam, flat, torch.ones(1))
    posed = turned(flat, angle).replace(means=torch.zeros(1, 3))
    out = render(posed, cam, backend="torch", photo=photo)
    share = float(out.seen[H // 2, W // 2])
    assert photo_share[0] <= share <= photo_share[1]


def test_visibility_weight_sums_match_the_reference():
    rest = scene(20, seed=6)
    cam = look_at_camera(W, H)
    w2c = torch.as_tensor(cam.world_to_camera, dtype=torch.float32)
    K = torch.as_tensor(cam.K, dtype=torch.float32)
    proj = project_gaussians(rest.means, rest.quats, rest.scales, rest.opacities, w2c, K, W, H)
    out = rasterize(proj, rest.means.new_zeros((len(proj), 0)), W, H, weight_sums=True)
    w, _ = reference_weights(rest, cam)
    ref = w.sum((1, 2))[proj.ids.numpy()]
    assert ref.max() > 1.0
    assert np.allclose(out.weight_sums.numpy(), ref, rtol=1e-4, atol=1e-3)
    vis = visibility_from_weights(out.weight_sums, proj.opacities, proj.conics)
    assert vis.min() >= 0 and vis.max() == 1


def test_mismatched_rest_object_is_refused():
    rest = scene(5)
    cam = look_at_camera(W, H)
    photo = PhotoSource(torch.zeros(H, W, 3), cam, rest, torch.ones(5))
    with pytest.raises(ConfigError, match="same Gaussians"):
        render(scene(6), cam, backend="torch", photo=photo)
    with pytest.raises(ConfigError, match="photo is"):
        PhotoSource(torch.zeros(H + 1, W, 3), cam, rest, torch.ones(5))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA for gsplat")
def test_gsplat_reprojection_matches_the_reference():
    rest = scene()
    photo_cam = look_at_camera(W, H, eye=(0.3, -3.0, 0.6))
    cam = look_at_camera(W, H, eye=(-0.2, -3.2, 0.4), fov=45)
    posed = turned(rest, 25.0)
    visibility = torch.rand(len(rest), generator=torch.Generator().manual_seed(1))
    photo = PhotoSource(textured_photo(photo_cam), photo_cam, rest.to("cuda"), visibility.cuda())
    ours = render(posed.to("cuda"), cam, backend="gsplat", photo=photo)
    U, src, _, _ = reference_reprojection(rest, posed, visibility.numpy(), photo_cam, cam)
    assert np.abs(ours.layers.seen.cpu().numpy() - U).max() < 1e-3
    strong = U > 0.05
    assert np.abs(ours.source_xy.cpu().numpy() - src)[strong].max() < 1e-2
    # Visibility through gsplat's gradients agrees with the torch accumulation path.
    torch_vis = photo_visibility(rest, photo_cam, backend="torch")
    gsplat_vis = photo_visibility(rest.to("cuda"), photo_cam, backend="gsplat").cpu()
    assert torch.allclose(torch_vis, gsplat_vis, atol=2e-2)


def _in_frame(source: PhotoSource, frame: Similarity) -> PhotoSource:
    """The same object and photo, described in another frame (a Blender root's): rest moved by
    `frame`, the photo camera moved with it."""
    to_frame = np.eye(4)
    to_frame[:3, :3], to_frame[:3, 3] = frame.rotation, frame.translation
    cam = source.camera
    moved = Camera(cam.width, cam.height, cam.K, cam.world_to_camera @ np.linalg.inv(to_frame))
    return PhotoSource(source.image, moved, apply_similarity(source.rest, frame), source.visibility)


def test_combined_sources_in_their_own_frames_render_as_one():
    """Two objects, each described in a frame of its own, combine into the source that one
    photo of both gives: same image up to float32 rounding (1e-4 of the range)."""
    from uplift.core.gaussians import concat

    photo_cam = look_at_camera(W, H, eye=(0.3, -3.0, 0.6))
    cam = look_at_camera(W, H, eye=(-0.2, -3.2, 0.4), fov=45)
    a, b = scene(10, seed=3), scene(10, seed=4)
    b = apply_similarity(b, Similarity(np.eye(3), np.array([0.4, 0.3, 0.0]), 1.0))
    image = textured_photo(photo_cam)
    vis = torch.rand(20, generator=torch.Generator().manual_seed(5))
    whole = PhotoSource(image, photo_cam, concat([a, b]), vis)
    a_src, b_src = PhotoSource(image, photo_cam, a, vis[:10]), PhotoSource(image, photo_cam, b, vis[10:])
    a_root = Similarity(quat_matrix(np.array([0.9, 0.1, -0.3, 0.2]) / np.linalg.norm([0.9, 0.1, -0.3, 0.2])),
                        np.array([1.0, -2.0, 0.5]), 1.0)
    combined = PhotoSource.combine([_in_frame(a_src, a_root), b_src])
    posed = turned(concat([a, b]), 20.0)
    expected = render(posed, cam, backend="torch", photo=whole).rgba
    got = render(posed, cam, backend="torch", photo=combined).rgba
    assert expected[..., 3].sum() > 1.0  # something was drawn
    assert torch.allclose(got, expected, atol=1e-4)
    assert PhotoSource.combine([a_src]) is a_src


def test_sources_of_different_photos_do_not_combine():
    photo_cam = look_at_camera(W, H)
    a = PhotoSource(textured_photo(photo_cam), photo_cam, scene(4), torch.ones(4))
    other_cam = look_at_camera(W + 2, H)
    b = PhotoSource(textured_photo(other_cam), other_cam, scene(4), torch.ones(4))
    with pytest.raises(ConfigError, match="different photos"):
        PhotoSource.combine([a, b])


def test_depth_is_the_same_with_the_photo():
    """Reprojection changes colours and makes seen pixels solid, not where the surface is: the
    expected depth stays the rasterised one (divided by the raw alpha, not the solid one)."""
    photo_cam = look_at_camera(W, H, eye=(0.3, -3.0, 0.6))
    g = scene(30, seed=7)
    source = PhotoSource.from_photo(textured_photo(photo_cam), photo_cam, g, backend="torch")
    cam = look_at_camera(W, H, eye=(-0.2, -3.2, 0.4), fov=45)
    posed = turned(g, 15.0)
    plain, with_photo = render(posed, cam, backend="torch"), render(posed, cam, backend="torch", photo=source)
    covered = plain.alpha > 0
    assert covered.float().mean() > 0.2
    assert torch.allclose(with_photo.depth[covered], plain.depth[covered], rtol=1e-5, atol=1e-6)


def test_pinholes_in_a_seen_surface_take_the_photo_around_them():
    """A gap the rasteriser left at alpha 0 (a turned surface's discs pulling apart) inside a
    surface the photo saw is filled: solid, with the photo's colour of its neighbourhood, not
    black and not the plate; the silhouette outside stays where it was."""
    from uplift.core.render.reprojection import PhotoLayers, resolve

    cam = look_at_camera(W, H)
    image = textured_photo(cam)
    alpha = torch.zeros(H, W)
    alpha[8:24, 10:30] = 1.0
    alpha[15, 19] = 0.0            # a 1-px pinhole
    alpha[12, 14:16] = 0.0         # a 2-px one
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    jacobian = torch.stack((alpha, torch.zeros_like(alpha), torch.zeros_like(alpha), alpha), -1)
    layers = PhotoLayers(torch.zeros(H, W, 3), alpha.clone(), torch.zeros(H, W, 2), jacobian, alpha.clone())
    source = PhotoSource(image, cam, scene(1), torch.ones(1))
    premult, out_alpha, src = resolve(layers, source)
    for y, x in ((15, 19), (12, 14), (12, 15)):
        assert out_alpha[y, x] > 0.99
        # The 5x5 neighbourhood's colour: the test photo's period is 16 px, so within 0.1 of the pixel's own.
        assert torch.allclose(premult[y, x], image[y, x], atol=0.1)
        assert torch.allclose(src[y, x], torch.tensor([x + 0.5, y + 0.5]), atol=0.6)
    inside = alpha > 0
    assert torch.allclose(premult[inside], image[inside], atol=1e-5)  # seen pixels are the photo's own
    assert out_alpha[~torch.nn.functional.max_pool2d(alpha[None, None], 5, 1, 2)[0, 0].bool()].max() == 0.0


def test_features_from_the_projection_equal_the_standalone_ones():
    """The torch renderer takes the features from its own projection's screen axes, gsplat and the
    viewport from `photo_features`: the same numbers for every splat the projection keeps (some
    of this scene are culled off-screen, so the index bookkeeping is exercised)."""
    from uplift.core.render.reprojection import photo_features, projected_photo_features

    rest = scene(40, seed=3)
    rest.means[:8, 0] += 5.0  # off-screen: culled
    photo_cam = look_at_camera(W, H, eye=(0.3, -3.0, 0.6))
    cam = look_at_camera(W, H, eye=(-0.2, -3.2, 0.4), fov=45)
    posed = turned(rest, 30.0, 1.2)
    photo = PhotoSource(textured_photo(photo_cam), photo_cam, rest, torch.rand(len(rest)))
    proj = project_gaussians(posed.means, posed.quats, posed.scales, posed.opacities,
                             torch.as_tensor(cam.world_to_camera, dtype=torch.float32),
                             torch.as_tensor(cam.K, dtype=torch.float32), cam.width, cam.height, keep_axes=True)
    assert 0 < len(proj) < len(posed) - 7
    ours = projected_photo_features(proj, posed, photo)
    expected = photo_features(posed, cam, photo).index_select(0, proj.ids)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (37, 29)])
def test_closing_equals_max_pooling(shape):
    """The separable running-max closing against max_pool2d (the obvious reference), edges included."""
    from uplift.core.render.reprojection import HOLE_RADIUS, _closing

    x = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))
    k = 2 * HOLE_RADIUS + 1
    grown = torch.nn.functional.max_pool2d(x[None, None], k, stride=1, padding=HOLE_RADIUS)
    expected = -torch.nn.functional.max_pool2d(-grown, k, stride=1, padding=HOLE_RADIUS)[0, 0]
    assert torch.equal(_closing(x), expected)


def test_resolving_the_object_box_equals_resolving_every_pixel():
    """`resolve` works over the object's bounding box (plus the closing's reach) and fills the rest
    as empty: the same image as the whole-image `resolve_box`, pinholes included."""
    from uplift.core.render.reprojection import resolve, resolve_box

    rest = scene(30, seed=5)
    rest.means.mul_(0.4)  # a small object in a larger frame: the box is a fraction of the image
    photo_cam = look_at_camera(64, 48, eye=(0.3, -3.0, 0.6))
    photo = PhotoSource(textured_photo(photo_cam), photo_cam, rest, torch.rand(len(rest)))
    layers = render(turned(rest, 35.0), photo_cam, backend="torch", photo=photo, resolve_photo=False).layers
    covered = (layers.alpha > 0).float().mean()
    assert 0.02 < covered < 0.3
    for ours, whole in zip(resolve(layers, photo), resolve_box(layers, photo)):
        torch.testing.assert_close(ours, whole, rtol=0, atol=1e-6)


def test_edge_extension_keeps_the_solid_object_and_replaces_its_soft_edge():
    from uplift.core.render.reprojection import EDGE_INSET, EDGE_REACH, edge_extended

    H, W = 30, 40
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    radius = np.hypot(xs - 20, ys - 15)
    alpha = np.clip(10.5 - radius, 0, 1).astype(np.float32) * 0.94  # a disc, 1 px soft edge, not quite opaque
    red, blue = np.array([0.9, 0.1, 0.1]), np.array([0.1, 0.2, 0.9])
    mix = np.clip(10.5 - radius, 0, 1)[..., None]
    photo = (mix * red + (1 - mix) * blue).astype(np.float32)
    out = edge_extended(photo, alpha)
    core = radius < 10.0 - EDGE_INSET - 0.5  # well inside the alpha-1/2 contour (r = 10)
    assert np.array_equal(out[core], photo[core])
    edge = (alpha > 0) & (mix[..., 0] < 1)
    assert edge.sum() > 20 and np.abs(out[edge] - red).max() < 1e-6  # the object's own colour, not the mix
    assert np.array_equal(out[alpha == 0], photo[alpha == 0])          # outside the object: untouched
    far = edge_extended(photo, np.where(np.hypot(xs - 5, ys - 5) < EDGE_REACH + 3, 0.5, alpha).astype(np.float32))
    lonely = np.hypot(xs - 5, ys - 5) < 2  # soft, but no solid pixel within reach: kept
    assert np.array_equal(far[lonely], photo[lonely])


def test_a_turned_object_shows_no_background_from_its_photo_rim():
    """The photo's silhouette pixels mix the object (red) with the scene behind it (blue). Turned,
    the rim lands inside the object's image; it must show the object's colour there, not a blue line."""
    gen = torch.Generator().manual_seed(7)
    n = 3000
    directions = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=1)
    rest = Gaussians(means=directions * 0.5, quats=torch.randn(n, 4, generator=gen),
                     log_scales=torch.full((n, 3), math.log(0.04)), opacity_logits=torch.full((n,), 5.0),
                     sh=torch.zeros(n, 1, 3))  # an opaque ball: solid inside its silhouette ...
    red, blue = torch.tensor([0.9, 0.1, 0.1]), torch.tensor([0.1, 0.2, 0.9])
    rest = rest.replace(sh=((red - 0.5) / SH_C0).expand(n, 1, 3).clone())  # ... and red all over
    photo_cam = look_at_camera(64, 48, eye=(0.3, -3.0, 0.6))
    alpha = render(rest, photo_cam, backend="torch").alpha[..., None]
    assert float((alpha >= 0.99).float().mean()) > 0.1
    image = alpha * red + (1 - alpha) * blue
    photo = PhotoSource(image, photo_cam, rest, photo_visibility(rest, photo_cam, backend="torch"))
    out = render(turned(rest, 25.0), photo_cam, backend="torch", photo=photo)
    covered = out.alpha > 0.5
    blue_share = (out.rgba[..., 2] - 0.1) / 0.8  # 0 for red, 1 for blue
    assert covered.sum() > 50
    # Measured with the photo's own rim: max 0.31, 99th percentile 0.18; with the rim extended:
    # 0.06 and 0.004 (bilinear taps beside the outermost rim pixels at the turned object's edge).
    assert float(blue_share[covered].max()) < 0.1
    assert float(blue_share[covered].quantile(0.99)) < 0.02


def test_a_large_photo_takes_its_edge_band_from_a_smaller_rest_render(monkeypatch):
    """Above EDGE_ALPHA_PIXELS the rest coverage is rendered smaller and upsampled: the band moves by
    under a pixel, so the extended image matches the full-size one away from the band's border."""
    from uplift.core.render import reprojection

    rest = scene(30, seed=5)
    cam = look_at_camera(96, 72, eye=(0.3, -3.0, 0.6))
    image = textured_photo(cam)
    full = PhotoSource(image, cam, rest, torch.ones(len(rest))).sampled_image()
    monkeypatch.setattr(reprojection, "EDGE_ALPHA_PIXELS", 96 * 72 // 4)
    small = PhotoSource(image, cam, rest, torch.ones(len(rest)))
    reduced = small.sampled_image()
    assert list(small.__dict__["_rest_alpha"]) == [(48, 36)]  # rendered at half size only
    same = (full - reduced).abs().amax(-1) < 1e-6
    assert float(same.float().mean()) > 0.9


def test_visibility_is_kept_for_the_same_geometry_and_camera_only():
    """The last results are reused for the same geometry and camera (the lifter's colour fill, then
    the edit's photo): equal to a fresh computation, a copy the caller may change, and recomputed
    when the geometry, the opacities or the camera differ (colours do not matter)."""
    from uplift.core.render import reprojection

    rest = scene(40, seed=11)
    cam = look_at_camera(W, H, eye=(0.3, -3.0, 0.6))
    reprojection._VISIBILITY_CACHE.clear()
    first = photo_visibility(rest, cam, backend="torch")
    first.zero_()  # a caller's change must not reach the kept copy
    again = photo_visibility(rest.replace(sh=torch.zeros_like(rest.sh)), cam, backend="torch")  # other colours
    fresh = reprojection._photo_visibility(rest, cam, "torch", 1)
    assert torch.equal(again, fresh) and float(fresh.sum()) > 0
    assert len(reprojection._VISIBILITY_CACHE) == 1
    moved = rest.replace(means=rest.means + torch.tensor([0.3, 0.0, 0.0]))
    assert torch.equal(photo_visibility(moved, cam, backend="torch"), reprojection._photo_visibility(moved, cam, "torch", 1))
    other_camera = look_at_camera(W, H, eye=(-0.5, -3.0, 0.6))
    photo_visibility(rest, other_camera, backend="torch")
    assert len(reprojection._VISIBILITY_CACHE) == reprojection._VISIBILITY_KEPT  # oldest dropped
