"""The torch rasteriser against a slow, obviously-correct renderer written here.

The reference loops over Gaussians sorted by depth and composites each one over
the whole image in float64, with its own projection and SH code, following
gsplat's classic rules (see core/render/__init__.py). Float32 vs float64 and
cumulative-product vs sequential rounding leave errors around 1e-6; 40 dB PSNR
(RMS error 0.01) is the bar the issue sets and leaves room only for a handful of
pixels flipping across the 1/255 or 1e-4 thresholds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from uplift.core.camera import PHOTO_WORLD_TO_CAMERA, Camera
from uplift.core.errors import CameraError, ConfigError, RenderBackendError
from uplift.core.gaussians import Gaussians
from uplift.core.render import render, resolve_backend

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# Real SH constants as printed in the original 3DGS code (utils/sh_utils.py).
C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = [1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396]
C3 = [-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
      -0.4570457994644658, 1.445305721320277, -0.5900435899266435]


def reference_sh(sh: np.ndarray, d: np.ndarray) -> np.ndarray:  # sh [K, 3], d [3] unit -> [3]
    x, y, z = d
    out = C0 * sh[0]
    if len(sh) > 1:
        out = out - C1 * y * sh[1] + C1 * z * sh[2] - C1 * x * sh[3]
    if len(sh) > 4:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out = (out + C2[0] * xy * sh[4] + C2[1] * yz * sh[5] + C2[2] * (2 * zz - xx - yy) * sh[6]
               + C2[3] * xz * sh[7] + C2[4] * (xx - yy) * sh[8])
        if len(sh) > 9:
            out = (out + C3[0] * y * (3 * xx - yy) * sh[9] + C3[1] * xy * z * sh[10]
                   + C3[2] * y * (4 * zz - xx - yy) * sh[11] + C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * sh[12]
                   + C3[4] * x * (4 * zz - xx - yy) * sh[13] + C3[5] * z * (xx - yy) * sh[14]
                   + C3[6] * x * (xx - 3 * yy) * sh[15])
    return np.maximum(out + 0.5, 0.0)


def quat_matrix(q: np.ndarray) -> np.ndarray:  # wxyz -> 3x3
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def reference_render(g: Gaussians, cam: Camera, background=None):
    """-> (rgba [H, W, 4] straight alpha, expected depth [H, W]) in float64, one Gaussian at a time."""
    means = g.means.double().numpy()
    quats = g.quats.double().numpy()
    scales = g.log_scales.double().exp().numpy()
    opac = 1 / (1 + np.exp(-g.opacity_logits.double().numpy()))
    sh = g.sh.double().numpy()
    R, t = cam.world_to_camera[:3, :3], cam.world_to_camera[:3, 3]
    fx, fy, cx, cy = cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]
    W, H = cam.width, cam.height
    center = cam.center
    items = []
    for i in range(len(means)):
        p = R @ means[i] + t
        if p[2] <= 0.01:
            continue  # behind the near plane
        Mq = quat_matrix(quats[i]) @ np.diag(scales[i])
        cov = R @ Mq @ Mq.T @ R.T
        # gsplat clamps the Jacobian's x/z, y/z to the image plus 0.3 of the half field of view
        lim_x = (W - cx) / fx + 0.15 * W / fx, cx / fx + 0.15 * W / fx
        lim_y = (H - cy) / fy + 0.15 * H / fy, cy / fy + 0.15 * H / fy
        u = min(lim_x[0], max(-lim_x[1], p[0] / p[2]))
        v = min(lim_y[0], max(-lim_y[1], p[1] / p[2]))
        J = np.array([[fx / p[2], 0, -fx * u / p[2]], [0, fy / p[2], -fy * v / p[2]]])
        cov2 = J @ cov @ J.T + 0.3 * np.eye(2)
        mean2 = np.array([fx * p[0] / p[2] + cx, fy * p[1] / p[2] + cy])
        color = reference_sh(sh[i], (means[i] - center) / np.linalg.norm(means[i] - center))
        items.append((p[2], i, np.linalg.inv(cov2), mean2, opac[i], color))
    items.sort(key=lambda it: (it[0], it[1]))
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    T = np.ones((H, W))
    rgb = np.zeros((H, W, 3))
    depth = np.zeros((H, W))
    done = np.zeros((H, W), bool)
    for z, _, conic, m, o, color in items:
        dx, dy = xs - m[0], ys - m[1]
        power = -0.5 * (conic[0, 0] * dx * dx + 2 * conic[0, 1] * dx * dy + conic[1, 1] * dy * dy)
        alpha = np.minimum(0.999, o * np.exp(power))
        active = (alpha >= 1 / 255) & ~done
        next_T = T * (1 - alpha)
        stop = active & (next_T <= 1e-4)
        use = active & ~stop
        w = np.where(use, alpha * T, 0.0)
        rgb += w[..., None] * color
        depth += w * z
        T = np.where(use, next_T, T)
        done |= stop
    a = 1 - T
    if background is not None:
        out_rgb = rgb + T[..., None] * np.asarray(background)
        return np.concatenate([out_rgb, np.ones((H, W, 1))], -1), np.where(a > 0, depth / np.maximum(a, 1e-300), 0)
    straight = np.where(a[..., None] > 0, rgb / np.maximum(a, 1e-300)[..., None], 0)
    return np.concatenate([straight, a[..., None]], -1), np.where(a > 0, depth / np.maximum(a, 1e-300), 0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def look_at_camera(width=64, height=48, eye=(0.0, -4.0, 0.5), fov=50.0) -> Camera:
    """A camera at `eye` looking at the origin, Blender Z up."""
    eye = np.asarray(eye, float)
    fwd = -eye / np.linalg.norm(eye)
    right = np.cross(fwd, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])
    w2c = np.eye(4)
    w2c[:3, :3] = R
    w2c[:3, 3] = -R @ eye
    return Camera.from_fov(width, height, fov, world_to_camera=w2c)


def random_scene(n: int, seed: int, degree: int = 0, spread: float = 1.0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=gen) - 0.5) * 2 * spread
    quats = torch.randn(n, 4, generator=gen)
    log_scales = torch.log(0.02 + 0.15 * torch.rand(n, 3, generator=gen))
    logits = torch.randn(n, generator=gen) * 2
    sh = torch.randn(n, (degree + 1) ** 2, 3, generator=gen) * 0.8
    sh[:, 1:] *= 0.4
    return Gaussians(means=means, quats=quats, log_scales=log_scales, opacity_logits=logits, sh=sh)


def hard_cases() -> Gaussians:
    """Large, thin, partly off-screen, nearly opaque, nearly transparent and behind-the-camera Gaussians."""
    means = torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.5, 0.1], [-1.6, 0.0, 0.4], [1.2, 0.2, -0.9],
                          [0.0, -1.0, 0.0], [0.2, -5.0, 0.5], [0.0, 1.0, 0.0], [-0.4, -0.2, -0.3]])
    log_scales = torch.log(torch.tensor([[1.2, 1.0, 0.9], [0.8, 0.01, 0.02], [0.6, 0.6, 0.6], [0.02, 0.9, 0.02],
                                         [0.05, 0.05, 0.05], [0.3, 0.3, 0.3], [2.0, 2.0, 2.0], [0.001, 0.001, 0.001]]))
    quats = torch.tensor([[1.0, 0, 0, 0], [0.9, 0.3, 0.2, 0.1], [0.7, 0, 0.7, 0], [0.6, 0.2, -0.5, 0.3],
                          [1.0, 0, 0, 0], [1.0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5], [1.0, 0, 0, 0]])
    opac = torch.tensor([0.6, 0.95, 0.9, 0.99, 0.999, 0.9, 0.3, 0.002])
    logits = torch.log(opac / (1 - opac))
    sh = torch.randn(8, 1, 3, generator=torch.Generator().manual_seed(3))
    return Gaussians(means=means, quats=quats, log_scales=log_scales, opacity_logits=logits, sh=sh)


def compare(g: Gaussians, cam: Camera, device: str, background=None, min_db: float = 40.0):
    ours = render(g.to(device), cam, backend="torch", background=background)
    ref_rgba, ref_depth = reference_render(g, cam, background)
    rgba = ours.rgba.cpu().numpy()
    assert rgba.shape == (cam.height, cam.width, 4)
    assert psnr(rgba[..., :3], ref_rgba[..., :3]) > min_db
    assert psnr(rgba[..., 3], ref_rgba[..., 3]) > min_db
    return ours, ref_rgba, ref_depth


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_random_scenes_match_reference(device, degree):
    g = random_scene(150, seed=degree, degree=degree)
    ours, ref, _ = compare(g, look_at_camera(), device)
    assert ref[..., 3].max() > 0.9  # the scene is actually visible


@pytest.mark.parametrize("device", DEVICES)
def test_hard_cases_match_reference(device):
    ours, ref, _ = compare(hard_cases(), look_at_camera(80, 60, fov=60), device)
    assert ref[..., 3].max() > 0.95


def test_dense_scene_terminates_like_reference():
    """Many opaque layers: pixels reach the T <= 1e-4 stop, exercising the exclusion rule."""
    g = random_scene(400, seed=7, spread=0.4)
    g = g.replace(opacity_logits=torch.full((400,), 4.0))
    _, ref, _ = compare(g, look_at_camera(40, 40), "cpu")
    assert (ref[..., 3] > 0.9998).mean() > 0.05  # the stop rule (T ~ 1e-4) is really reached


def test_background_matches_reference():
    ours, _, _ = compare(random_scene(120, seed=5), look_at_camera(), "cpu", background=(0.2, 0.4, 0.9))
    assert torch.all(ours.rgba[..., 3] == 1)


def test_depth_matches_reference():
    ours, ref, ref_depth = compare(random_scene(120, seed=9), look_at_camera(), "cpu")
    covered = ref[..., 3] > 0.05
    err = np.abs(ours.depth.numpy()[covered] - ref_depth[covered])
    assert err.max() < 1e-3 * ref_depth[covered].max()
    assert np.all(ours.depth.numpy()[ref[..., 3] == 0] == 0)


def test_tile_edges_and_odd_sizes():
    """Image sizes that are not tile multiples; Gaussians straddling tile borders."""
    _, ref, _ = compare(random_scene(80, seed=11), look_at_camera(37, 29, fov=45), "cpu")
    assert ref[..., 3].max() > 0.9  # something was drawn


def test_nothing_in_view_is_transparent():
    g = random_scene(50, seed=1)
    towards = look_at_camera(32, 24, eye=(0.0, -4.0, 0.0))
    turn = np.diag([-1.0, 1.0, -1.0, 1.0])  # half a turn about the camera's y axis: now facing away
    cam = Camera(32, 24, towards.K, turn @ towards.world_to_camera)
    out = render(g, cam, backend="torch")
    assert out.rgba.shape == (24, 32, 4)
    assert torch.count_nonzero(out.rgba) == 0
    empty = g.subset(torch.zeros(50, dtype=torch.bool))
    assert torch.count_nonzero(render(empty, look_at_camera(), backend="torch").rgba) == 0


def test_preview_scale_renders_scaled_camera():
    g = random_scene(100, seed=2)
    cam = look_at_camera(64, 48)
    half = render(g, cam, backend="torch", scale=0.5)
    assert half.rgba.shape == (24, 32, 4)
    assert half.camera.width == 32
    direct = render(g, cam.scaled(0.5), backend="torch")
    assert torch.equal(half.rgba, direct.rgba)


def test_backend_choice():
    assert resolve_backend("torch") == "torch"
    with pytest.raises(ConfigError):
        resolve_backend("vulkan")
    if not torch.cuda.is_available():
        assert resolve_backend("auto") == "torch"
        with pytest.raises(RenderBackendError, match="CUDA"):
            render(random_scene(5, 0), look_at_camera(), backend="gsplat")
    with pytest.raises(ConfigError):
        render(random_scene(5, 0), look_at_camera(), backend="torch", background=(2.0, 0, 0))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA for gsplat")
def test_gsplat_matches_torch_backend():
    for seed, g in enumerate([random_scene(2000, seed=4, degree=3), hard_cases()]):
        cam = look_at_camera(160, 120)
        a = render(g.to("cuda"), cam, backend="gsplat")
        b = render(g, cam, backend="torch")
        assert psnr(a.rgba.cpu().numpy(), b.rgba.numpy()) > 40
        covered = b.alpha > 0.5
        assert torch.allclose(a.depth.cpu()[covered], b.depth[covered], rtol=1e-3)


def test_camera_json_round_trip(tmp_path):
    cam = look_at_camera(64, 48)
    again = Camera.from_json(cam.to_json())
    assert again.width == cam.width and again.height == cam.height
    assert np.array_equal(again.K, cam.K) and np.array_equal(again.world_to_camera, cam.world_to_camera)
    cam.save(tmp_path / "c.json")
    loaded = Camera.load(tmp_path / "c.json")
    assert np.array_equal(loaded.world_to_camera, cam.world_to_camera)
    g = random_scene(60, seed=8)
    assert torch.equal(render(g, cam, backend="torch").rgba, render(g, loaded, backend="torch").rgba)
    with pytest.raises(CameraError):
        Camera.from_json('{"width": 4, "height": 4, "K": [[1, 0, 0], [0, 1, 0]], "world_to_camera": []}')


def test_garden_points_project_inside_image(shared_data):
    """Convention check on real data: gsplat's test scene (OpenCV world-to-camera, K)
    puts most of its points inside every camera's image, in front of the camera."""
    data = np.load(shared_data / "splats" / "test_garden.npz")
    points = data["means3d"]
    for viewmat, K in zip(data["viewmats"], data["Ks"]):
        cam = Camera(648, 420, K, viewmat)
        uv, z = cam.project(points)
        inside = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < 648) & (uv[:, 1] >= 0) & (uv[:, 1] < 420)
        assert inside.mean() > 0.4 and (z > 0).mean() > 0.8  # a flipped axis gives under 0.15


def test_gsplat_is_imported_lazily():
    """The core (and Blender) must load without touching gsplat's CUDA extension."""
    import subprocess
    import sys

    code = "import sys, uplift.core.render; r = uplift.core.render; print('gsplat' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_cpu_threads_setting_is_restored():
    before = torch.get_num_threads()
    g = random_scene(40, seed=6)
    one = render(g, look_at_camera(), backend="torch", cpu_threads=1)
    assert torch.get_num_threads() == before
    default = render(g, look_at_camera(), backend="torch", cpu_threads=0)
    assert torch.allclose(one.rgba, default.rgba, atol=1e-6)
    with pytest.raises(ConfigError):
        render(g, look_at_camera(), backend="torch", cpu_threads=-1)


def test_projection_matches_gsplat_torch_reference():
    """gsplat ships pure-torch references of its kernels; its EWA projection runs on the CPU."""
    _torch_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    from uplift.core.quaternion import to_matrix
    from uplift.core.render.projection import project_gaussians

    g = random_scene(300, seed=12, spread=1.5)
    cam = look_at_camera(80, 60, fov=55)
    w2c = torch.tensor(cam.world_to_camera, dtype=torch.float32)
    K = torch.tensor(cam.K, dtype=torch.float32)
    ours = project_gaussians(g.means, g.quats, g.scales, g.opacities, w2c, K, 80, 60)
    M = to_matrix(g.quats) * g.scales[:, None, :]
    radii, means2d, depths, conics, _ = _torch_impl._fully_fused_projection(
        g.means, M @ M.transpose(1, 2), w2c[None], K[None], 80, 60, eps2d=0.3, near_plane=0.01)
    kept = (radii[0] > 0).any(-1)
    # gsplat's reference bounds with 3.33 sigma regardless of opacity; ours also culls alpha < 1/255
    assert set(ours.ids.tolist()) <= set(kept.nonzero().squeeze(1).tolist())
    assert len(ours) > 100
    assert torch.allclose(ours.means2d, means2d[0, ours.ids], atol=1e-3)
    assert torch.allclose(ours.depths, depths[0, ours.ids], rtol=1e-5)
    assert torch.allclose(ours.conics, conics[0, ours.ids], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_matches_gsplat_torch_reference(degree):
    _torch_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    from uplift.core.render.sh import sh_to_rgb

    g = random_scene(200, seed=degree, degree=degree)
    center = torch.tensor([0.3, -4.0, 1.0])
    ours = sh_to_rgb(g.sh, g.means, center)
    theirs = torch.clamp_min(_torch_impl._spherical_harmonics(degree, g.means - center, g.sh) + 0.5, 0.0)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_depth_order_is_a_stable_argsort_including_ties():
    from uplift.core.render.torch_backend import depth_order

    gen = torch.Generator().manual_seed(3)
    depths = torch.rand(5000, generator=gen) * 50 + 0.01
    depths[::7] = depths[3]  # many exact ties
    expected = torch.sort(depths, stable=True)[1]
    assert torch.equal(depth_order(depths), expected)


@pytest.mark.parametrize("tile", [(8, 4), (16, 8), (4, 4)])
def test_other_tile_shapes_match_the_default(monkeypatch, tile):
    """The tile size is a speed choice only: every shape draws the same image."""
    from uplift.core.render import torch_backend

    g = random_scene(200, seed=11)
    cam = look_at_camera(50, 38)
    default = render(g, cam, backend="torch").rgba
    rasterize = torch_backend.rasterize
    monkeypatch.setattr(torch_backend, "rasterize", lambda *a, **k: rasterize(*a, **{**k, "tile": tile}))
    assert torch.allclose(render(g, cam, backend="torch").rgba, default, atol=1e-5)


def test_ellipse_tile_culling_drops_nothing_visible(monkeypatch):
    """Culling tiles outside each Gaussian's alpha >= 1/255 ellipse must not change the image:
    with the margin made huge, every tile of the bounding box is kept."""
    from uplift.core.render import torch_backend

    g = random_scene(300, seed=13, degree=1)
    cam = look_at_camera(70, 50)
    culled = render(g, cam, backend="torch").rgba
    monkeypatch.setattr(torch_backend, "_LEVEL_MARGIN", 1e6)
    unculled = render(g, cam, backend="torch").rgba
    assert torch.allclose(culled, unculled, atol=1e-6)
