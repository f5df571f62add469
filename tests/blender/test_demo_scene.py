"""demo_scene.write_demo_blend: a keep folder → a .blend that opens ready to keep editing."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from PIL import Image

from uplift_bpy_harness import run_blender, write_demo_blend

pytestmark = pytest.mark.bpy


def make_keep_folder(folder):
    from uplift.core.camera import Camera
    from uplift.core.gaussians import Gaussians
    from uplift.core.ply import write_ply

    folder.mkdir()
    cam = Camera.from_fov(160, 120)
    cam.save(folder / "camera.json")
    g = torch.Generator().manual_seed(0)
    n = 800
    means = torch.rand(n, 3, generator=g) * torch.tensor([0.6, 0.2, 0.4]) + torch.tensor([-0.3, 2.0, -0.2])
    write_ply(folder / "edited.ply", Gaussians.from_colors(means, torch.rand(n, 3, generator=g),
                                                          torch.full((n, 3), 0.02), torch.full((n,), 0.9)))
    rng = np.random.default_rng(0)
    plate = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(plate).save(folder / "plate.png")
    Image.fromarray(rng.integers(0, 256, (120, 160, 4), dtype=np.uint8)).save(folder / "object.png")
    mask = np.zeros((120, 160), np.uint8)
    mask[30:90, 40:120] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    Image.fromarray(np.roll(mask, 3, axis=0)).save(folder / "seam_mask.png")
    photo = plate.copy()  # as `uplift edit` keeps it: the plate differs from the photo only in the hole
    photo[mask > 0] = rng.integers(0, 256, (int((mask > 0).sum()), 3), dtype=np.uint8)
    Image.fromarray(photo).save(folder / "photo.png")
    for name in ("final", "seam_fill"):
        Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    Image.fromarray(np.roll(mask, 5, axis=1)).save(folder / "region.png")
    return folder


def demo_blend(tmp_path, blender_python):
    """A .blend with a lifted object of 16 controls over a 160x120 photo, written as `make demo`
    writes it: the plain `uplift` package in a bpy process of that Blender line."""
    return write_demo_blend(make_keep_folder(tmp_path / "keep"), tmp_path / "demo.blend", blender_python, tmp_path)


def test_demo_blend_opens_with_everything(extension_zip, blender_python, tmp_path):
    blend = demo_blend(tmp_path, blender_python)
    assert blend.exists()

    out = run_blender(f"BLEND = {str(blend)!r}\n" + r"""
import numpy as np
bpy.ops.wm.open_mainfile(filepath=BLEND)
M = "bl_ext.user_default.uplift"
scene_io = importlib.import_module(M + ".blender.scene_io")
handlers = importlib.import_module(M + ".blender.handlers")
images = importlib.import_module(M + ".blender.images")
scene = bpy.context.scene
root = scene_io.roots(scene)[0]
controls = scene_io.controls_of(root)
out["camera"] = scene.camera.name
out["resolution"] = [scene.render.resolution_x, scene.render.resolution_y]
out["plate_layer"] = scene.camera.data.background_images[0].image == scene.uplift.plate_image
out["controls"] = len(controls)
out["tree_nodes"] = len(importlib.import_module(M + ".blender.compositor").scene_tree(scene).nodes)
out["render_layer"] = root.uplift.render_image is not None
handlers.flush(full=True)
before = images.read_rgba(root.uplift.render_image)
controls[0].location = np.array(controls[0].location) + np.array([0.0, 0.0, 0.1])
bpy.context.view_layer.update()
out["pending"] = len(handlers._pending)
out["ran"] = handlers.flush(full=True)
out["render_changed"] = float(np.abs(images.read_rgba(root.uplift.render_image) - before).max())
out["alpha"] = [float(before[..., 3].sum()), float(images.read_rgba(root.uplift.render_image)[..., 3].sum())]
out["size"] = list(root.uplift.render_image.size)
out["pinned"] = [c.uplift.pinned for c in controls.values()][:3]
out["err"] = handlers.last_error["text"]
emit()
""", extension_zip, tmp_path, blender_python)
    assert out["camera"] == "Uplift Camera" and out["resolution"] == [160, 120]
    assert out["plate_layer"] and out["controls"] == 16 and out["tree_nodes"] >= 7
    assert out["render_layer"] and out["render_changed"] > 0.05, str(out)
