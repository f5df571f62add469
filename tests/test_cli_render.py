"""`uplift render` end to end: real PLY and camera files, the console entry point."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from uplift.cli.main import main
from uplift.core.camera import Camera
from uplift.core.gaussians import Gaussians
from uplift.core.image_io import to_uint8
from uplift.core.ply import read_ply, write_ply
from uplift.core.render import render


@pytest.fixture()
def scene(tmp_path):
    gen = torch.Generator().manual_seed(0)
    n = 300
    means = torch.rand(n, 3, generator=gen) * torch.tensor([1.0, 0.5, 1.0]) + torch.tensor([-0.5, 3.0, -0.5])
    g = Gaussians.from_colors(means, torch.rand(n, 3, generator=gen), torch.full((n, 3), 0.04), torch.full((n,), 0.8))
    ply = tmp_path / "in.ply"
    write_ply(ply, g)
    cam = Camera.from_fov(96, 64, 60.0)
    cam_path = tmp_path / "camera.json"
    cam.save(cam_path)
    return ply, cam_path, cam


def test_render_writes_rgba_png_and_depth(scene, tmp_path, capsys):
    ply, cam_path, cam = scene
    out, depth = tmp_path / "out.png", tmp_path / "depth.npy"
    assert main(["render", str(ply), "--camera", str(cam_path), "-o", str(out), "--depth", str(depth),
                 "--backend", "torch"]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (64, 96, 4) and img.dtype == np.uint8
    expected = render(read_ply(ply), cam, backend="torch")
    assert np.abs(img.astype(int) - to_uint8(np.clip(expected.rgba.numpy(), 0, 1)).astype(int)).max() <= 1
    assert 0 < img[..., 3].mean() < 255  # some coverage, transparent elsewhere
    d = np.load(depth)
    assert d.shape == (64, 96) and d.dtype == np.float32
    assert np.all((d[img[..., 3] > 128] > 2.5) & (d[img[..., 3] > 128] < 4.0))


def test_background_and_scale(scene, tmp_path):
    ply, cam_path, _ = scene
    out = tmp_path / "bg.png"
    assert main(["render", str(ply), "--camera", str(cam_path), "-o", str(out), "--background", "0,0,1",
                 "--scale", "0.5", "--backend", "torch"]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (32, 48, 4)
    assert np.all(img[..., 3] == 255)
    assert tuple(img[0, 0]) == (0, 0, 255, 255)


def test_nothing_in_view_gives_transparent_image(scene, tmp_path):
    ply, _, cam = scene
    away = Camera(cam.width, cam.height, cam.K, np.diag([-1.0, 1.0, -1.0, 1.0]) @ cam.world_to_camera)
    cam_path = tmp_path / "away.json"
    away.save(cam_path)
    out = tmp_path / "empty.png"
    assert main(["render", str(ply), "--camera", str(cam_path), "-o", str(out), "--backend", "torch"]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (64, 96, 4) and not img.any()


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"width": 10, "height": 10, "K": [[1, 0, 5], [0, 1, 5], [0, 0, 1]]}), "lacks world_to_camera"),
    (json.dumps({"width": 10, "height": 10, "K": "eye", "world_to_camera": [[1, 0, 0, 0]] * 4}), "K"),
])
def test_malformed_camera_is_a_clear_error(scene, tmp_path, capsys, content, message):
    ply, _, _ = scene
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "never.png"
    assert main(["render", str(ply), "--camera", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "uplift render: error:" in err and message in err and "Traceback" not in err
    assert not out.exists()


def test_gsplat_without_cuda_is_a_clear_error(scene, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: gsplat can run")
    ply, cam_path, _ = scene
    assert main(["render", str(ply), "--camera", str(cam_path), "-o", str(tmp_path / "x.png"), "--backend", "gsplat"]) == 2
    assert "CUDA" in capsys.readouterr().err


def test_output_never_overwrites_an_input(scene, capsys):
    ply, cam_path, _ = scene
    before = ply.read_bytes()
    assert main(["render", str(ply), "--camera", str(cam_path), "-o", str(ply), "--backend", "torch"]) == 2
    assert "must be a .png" in capsys.readouterr().err
    assert main(["render", str(ply), "--camera", str(cam_path), "-o", str(cam_path.with_suffix(".png")),
                 "--depth", str(ply), "--backend", "torch"]) == 2
    assert "also an input" in capsys.readouterr().err
    assert ply.read_bytes() == before


def test_console_script_runs(scene, tmp_path):
    ply, cam_path, _ = scene
    out = tmp_path / "cli.png"
    proc = subprocess.run([sys.executable, "-m", "uplift.cli.main", "render", str(ply), "--camera", str(cam_path),
                           "-o", str(out), "--backend", "torch"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()


def _cli_subprocess(args: list[str], block_bpy: bool) -> subprocess.CompletedProcess:
    """`uplift render` in a fresh process (bpy, when imported, stays out of the test process)."""
    prefix = "import sys; sys.modules['bpy'] = None; " if block_bpy else "import sys; "
    code = prefix + f"from uplift.cli.main import main; sys.exit(main({args!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_viewport_backend_without_bpy_is_a_one_line_error(scene, tmp_path):
    ply, cam_path, _ = scene
    done = _cli_subprocess(["render", str(ply), "--camera", str(cam_path), "-o", str(tmp_path / "out.png"),
                            "--backend", "viewport"], block_bpy=True)
    assert done.returncode != 0
    assert "viewport renderer needs Blender's bpy module" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.png").exists()


def test_viewport_backend_renders_like_torch(scene, tmp_path):
    pytest.importorskip("bpy", reason="the viewport backend needs the bpy module")
    ply, cam_path, cam = scene
    probe = subprocess.run([sys.executable, "-c", "from uplift.blender.splat_draw import unavailable_reason as r; "
                            "print('REASON', r())"], capture_output=True, text=True, timeout=300)
    reason = next(line[7:] for line in probe.stdout.splitlines() if line.startswith("REASON "))
    if reason != "None":
        pytest.skip(f"gpu.init() is unavailable here, so the viewport backend cannot run: {reason}")
    out = tmp_path / "out.png"
    done = _cli_subprocess(["render", str(ply), "--camera", str(cam_path), "-o", str(out), "--backend", "viewport"],
                           block_bpy=False)
    assert done.returncode == 0, done.stderr[-3000:]
    img = np.asarray(Image.open(out)).astype(int)
    expected = to_uint8(np.clip(render(read_ply(ply), cam, backend="torch").rgba.numpy(), 0, 1)).astype(int)
    assert img.shape == expected.shape and 0 < img[..., 3].mean() < 255
    # 8-bit straight alpha: colour is only defined where there is coverage.
    covered = expected[..., 3] > 32
    assert np.abs(img[..., 3] - expected[..., 3]).max() <= 2
    assert np.abs(img[covered, :3] - expected[covered, :3]).max() <= 2


def test_photo_reprojection_at_rest_shows_the_photo(scene, tmp_path, capsys):
    """IN.ply == REST.ply, a surface seen by the photo's own camera: opaque pixels are the photo's."""
    _, cam_path, cam = scene
    gen = torch.Generator().manual_seed(1)
    n = 400
    means = torch.rand(n, 3, generator=gen) * torch.tensor([1.2, 0.0, 0.8]) + torch.tensor([-0.6, 3.0, -0.4])
    ply = tmp_path / "surface.ply"
    write_ply(ply, Gaussians.from_colors(means, torch.rand(n, 3, generator=gen), torch.full((n, 3), 0.04),
                                         torch.full((n,), 0.9)))
    photo = np.random.default_rng(0).integers(0, 256, size=(cam.height, cam.width, 3), dtype=np.uint8)
    photo_path = tmp_path / "photo.png"
    Image.fromarray(photo).save(photo_path)
    out = tmp_path / "out.png"
    assert main(["render", str(ply), "--camera", str(cam_path), "-o", str(out), "--backend", "torch",
                 "--photo", str(photo_path), "--rest", str(ply), "--photo-camera", str(cam_path)]) == 0
    rgba = np.asarray(Image.open(out))
    # Opaque pixels away from the silhouette are the photo's; the band at the silhouette takes the
    # object's colour from inside (the photo's edge pixels mix in what is behind the object).
    from uplift.core.render.reprojection import EDGE_INSET

    solid = cv2.erode((rgba[..., 3] == 255).astype(np.uint8), np.ones((3, 3), np.uint8),
                      iterations=EDGE_INSET + 1).astype(bool)
    assert solid.mean() > 0.02
    error = np.abs(rgba[..., :3][solid].astype(int) - photo[solid])
    assert np.median(error) <= 1 and error.mean() < 2
    plain = tmp_path / "plain.png"
    assert main(["render", str(ply), "--camera", str(cam_path), "-o", str(plain), "--backend", "torch"]) == 0
    assert np.abs(np.asarray(Image.open(plain))[..., :3][solid].astype(int) - photo[solid]).mean() > 20


def test_photo_without_rest_is_a_clear_error(scene, tmp_path, capsys):
    ply, cam_path, _ = scene
    assert main(["render", str(ply), "--camera", str(cam_path), "-o", str(tmp_path / "o.png"),
                 "--photo", str(ply)]) != 0
    assert "--rest" in capsys.readouterr().err
