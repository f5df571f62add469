"""The compositor tree alone: built from synthetic layers, rendered by Cycles, equal to the numpy composite."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from uplift_bpy_harness import compositor_nodes, run_blender

pytestmark = pytest.mark.bpy

SCRIPT = r"""
compositor = importlib.import_module("bl_ext.user_default.uplift.blender.compositor")
scene = bpy.context.scene
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
# The artist's own compositing, which a build must not delete.
if hasattr(scene, "compositing_node_group"):  # 5.x: a node group of their own
    artist = bpy.data.node_groups.new("Artist Grade", "CompositorNodeTree")
    artist.nodes.new("CompositorNodeBlur").label = "artist"
    scene.compositing_node_group = artist
else:  # 4.x: nodes in the scene's one tree
    scene.use_nodes = True
    scene.node_tree.nodes.new("CompositorNodeBlur").label = "artist"
compositor.build(scene, FOLDER)
tree = compositor.build(scene, FOLDER)  # twice: the second replaces the first's nodes
out["tree"] = tree.name
out["nodes"] = sorted(n.bl_idname for n in tree.nodes)
out["image_nodes"] = sum(n.bl_idname == "CompositorNodeImage" for n in tree.nodes)
out["composite_nodes"] = sum(n.bl_idname == "CompositorNodeComposite" for n in tree.nodes)
if hasattr(scene, "compositing_node_group"):
    group = bpy.data.node_groups.get("Artist Grade")
    out["artist_kept"] = group is not None and group.use_fake_user and any(n.label == "artist" for n in group.nodes)
else:
    out["artist_kept"] = any(n.label == "artist" for n in tree.nodes)
scene.render.engine = "CYCLES"
scene.cycles.samples = 1
scene.render.image_settings.file_format = "PNG"
scene.render.image_settings.color_mode = "RGB"
scene.render.filepath = OUT
bpy.ops.render.render(write_still=True)
try:
    compositor.build(scene, FOLDER + "/missing")
    out["missing_error"] = ""
except Exception as exc:
    out["missing_error"] = f"{type(exc).__name__}: {exc}"
emit()
"""


def test_tree_reproduces_the_numpy_composite(extension_zip, blender_python, tmp_path):
    rng = np.random.default_rng(1)
    h, w = 48, 64
    plate = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    obj = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    obj[:, : w // 3, 3] = 0          # fully transparent, fully opaque and partial alpha regions
    obj[:, 2 * w // 3:, 3] = 255
    seam_fill = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    photo = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    seam = np.zeros((h, w), dtype=bool)
    seam[10:20, 5:60] = True
    region = np.zeros((h, w), dtype=bool)
    region[5:40, 3:62] = True
    for name, array in (("photo", photo), ("plate", plate), ("object", obj), ("seam_fill", seam_fill),
                        ("seam_mask", seam.astype(np.uint8) * 255), ("region", region.astype(np.uint8) * 255)):
        Image.fromarray(array).save(tmp_path / f"{name}.png")
    a = obj[..., 3:4] / 255.0
    over = np.clip(np.rint((obj[..., :3] / 255.0 * a + plate / 255.0 * (1 - a)) * 255), 0, 255)
    expected = np.where(region[..., None], np.where(seam[..., None], seam_fill, over), photo)

    out_png = tmp_path / "render.png"
    out = run_blender(f"FOLDER = {str(tmp_path)!r}\nOUT = {str(out_png)!r}\n" + SCRIPT, extension_zip, tmp_path, blender_python)
    if tuple(out["blender_version"]) >= (5, 0):
        assert out["tree"] == "Uplift Composite"
    assert compositor_nodes(out["blender_version"]) <= set(out["nodes"])
    assert out["artist_kept"], "the artist's compositor nodes were deleted"
    assert out["image_nodes"] == 6 and out["composite_nodes"] <= 1
    rendered = np.asarray(Image.open(out_png).convert("RGB"), dtype=np.float64)
    assert np.abs(rendered - expected).max() <= 2
    assert "ImageFormatError" in out["missing_error"] and "plate.png" in out["missing_error"]
