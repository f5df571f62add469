"""Render ▸ Render Animation of an edited photo: keyed controls -> an image sequence through the tree."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from test_demo_scene import demo_blend
from uplift_bpy_harness import REPO, run_blender

pytestmark = pytest.mark.bpy

SCRIPT = r"""
import numpy as np
bpy.ops.wm.open_mainfile(filepath=BLEND)
M = "bl_ext.user_default.uplift"
scene_io = importlib.import_module(M + ".blender.scene_io")
handlers = importlib.import_module(M + ".blender.handlers")
animation = importlib.import_module(M + ".blender.animation")
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.samples = 1
scene.render.image_settings.file_format = "PNG"
scene.render.image_settings.color_mode = "RGB"
root = scene_io.roots(scene)[0]
controls = scene_io.controls_of(root)
rest = {i: np.array(c.location) for i, c in controls.items()}
xs = np.array([rest[i][0] for i in sorted(rest)])
keyed = int(np.argmax(xs))
for i in np.argsort(xs)[: len(xs) // 2]:      # the far half stays where it is
    controls[int(i)].uplift.pinned = True
ob = controls[keyed]
ob.uplift.pinned = True
ob.keyframe_insert("location", frame=1)
ob.location = rest[keyed] + np.array([0.0, 0.0, 0.12])
ob.keyframe_insert("location", frame=9)
scene.frame_start, scene.frame_end = 1, 9
scene.frame_set(1)
handlers.flush(full=True)

# Scrubbing asks the live loop for an update.
scene.frame_set(5)
out["scrub_pending"] = len(handlers._pending)
handlers.flush(full=True)
out["scrub_moved"] = float(np.abs(np.array(ob.location) - rest[keyed]).max())
out["live_error"] = handlers.last_error["text"]

step("animation")
scene.render.filepath = OUT + "/seq_####"
bpy.ops.render.render(animation=True)
out["error"] = animation.last_error["text"]

step("stills in reverse")
for f in range(9, 0, -1):
    scene.frame_set(f)
    scene.render.filepath = OUT + f"/still_{f:04d}"
    bpy.ops.render.render(write_still=True)

step("composites")
region = None
for f in range(1, 10):
    scene.frame_set(f)
    c = animation.render_frame(scene)
    region = c.region if region is None else region | c.region
    np.save(OUT + f"/final_{f:04d}.npy", c.final)
np.save(OUT + "/swept.npy", region)
photo = importlib.import_module(M + ".core.image_io").load_image(scene_io.photo_bytes(scene))
np.save(OUT + "/photo.npy", photo)

step("no keys")
ob.animation_data_clear()
ob.location = rest[keyed] + np.array([0.0, 0.0, 0.03])  # no frame of the keyed sequence holds this
scene.frame_start, scene.frame_end = 1, 3
scene.render.filepath = OUT + "/still_scene_####"
bpy.ops.render.render(animation=True)
out["error_nokeys"] = animation.last_error["text"]

step("keyed root")
root.keyframe_insert("location", frame=1)
root.location.x += 0.1
root.keyframe_insert("location", frame=3)
scene.render.filepath = OUT + "/root_####"
bpy.ops.render.render(animation=True)
out["error_root"] = animation.last_error["text"]
emit()
"""


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_keyed_control_renders_a_stable_sequence(extension_zip, blender_python, tmp_path):
    blend = demo_blend(tmp_path, blender_python)
    out_dir = tmp_path / "frames"
    out_dir.mkdir()
    out = run_blender(f"BLEND = {str(blend)!r}\nOUT = {str(out_dir)!r}\n" + SCRIPT, extension_zip, tmp_path,
                      blender_python)
    assert out["error"] == "" and out["error_nokeys"] == "" and out["live_error"] == "", out
    assert out["scrub_pending"] == 1 and out["scrub_moved"] > 0.01, out

    seq = [_png(out_dir / f"seq_{f:04d}.png") for f in range(1, 10)]
    stills = [_png(out_dir / f"still_{f:04d}.png") for f in range(1, 10)]
    finals = [np.load(out_dir / f"final_{f:04d}.npy").astype(np.int16) for f in range(1, 10)]
    swept = np.load(out_dir / "swept.npy")
    photo = np.load(out_dir / "photo.npy").astype(np.int16)

    # The tree's output is the pipeline's composite (alpha over in float vs uint8 rounding: 1 level).
    for frame, final in zip(seq, finals):
        assert np.abs(frame - final).max() <= 1
    # The object moves steadily: every frame differs from the last, and ever more from frame 1.
    # (The keys ease in, so frame 1 -> 2 moves least; the reprojected photo keeps barely moved pixels exact.)
    steps = [np.abs(b - a).mean() for a, b in zip(seq, seq[1:])]
    assert min(steps) > 0.002 and max(steps) > 0.1, steps
    from_first = [np.abs(f - seq[0]).mean() for f in seq[1:]]
    assert all(b > a for a, b in zip(from_first, from_first[1:])), from_first
    # Outside the swept, dilated region every frame is the photo itself.
    import cv2

    outside = cv2.dilate(swept.astype(np.uint8), np.ones((3, 3), np.uint8)) == 0
    assert 0.2 < outside.mean() < 1.0
    for frame in seq:
        assert np.array_equal(frame[outside], photo[outside])
    # A still of any frame (rendered alone, in reverse order, cold-started) equals that frame: the
    # converged ARAP poses agree to the solver's tolerance; a pixel whose alpha sits on the silhouette
    # threshold may still flip its seam, so allow 0.1% of pixels off by more than 2 levels.
    for f, (a, b) in enumerate(zip(seq, stills), start=1):
        d = np.abs(a - b)
        assert (d.max(-1) > 2).mean() <= 1e-3 and d.mean() < 0.01, (f, d.max(), d.mean())

    # No keys: the same image on every frame, so no flicker in the seam ring either.
    still_scene = [_png(out_dir / f"still_scene_{f:04d}.png") for f in range(1, 4)]
    assert np.array_equal(still_scene[0], still_scene[1]) and np.array_equal(still_scene[1], still_scene[2])
    assert np.abs(still_scene[0] - seq[4]).mean() > 0.01  # the un-keyed pose was rendered, not a stale layer

    # A keyed root moves the whole object: frame 1 is the held pose, frame 3 shifted.
    assert out["error_root"] == ""
    roots = [_png(out_dir / f"root_{f:04d}.png") for f in (1, 3)]
    assert np.array_equal(roots[0], still_scene[0]) and np.abs(roots[1] - roots[0]).mean() > 0.05


KEY_AND_SAVE = r"""
import numpy as np
bpy.ops.wm.open_mainfile(filepath=BLEND)
scene_io = importlib.import_module("bl_ext.user_default.uplift.blender.scene_io")
root = scene_io.roots(bpy.context.scene)[0]
controls = scene_io.controls_of(root)
ob = max(controls.values(), key=lambda c: c.location.x)
ob.uplift.pinned = True
ob.keyframe_insert("location", frame=1)
ob.location.z += 0.12
ob.keyframe_insert("location", frame=9)
bpy.ops.wm.save_as_mainfile(filepath=BLEND)
emit()
"""


def test_cli_renders_a_keyed_blend_headless(extension_zip, tmp_path):
    blend = demo_blend(tmp_path, sys.executable)  # `uplift animate` runs bpy in the main environment
    run_blender(f"BLEND = {str(blend)!r}\n" + KEY_AND_SAVE, extension_zip, tmp_path, sys.executable)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "res"))
    cli = [sys.executable, "-m", "uplift.cli.main", "animate", str(blend)]
    done = subprocess.run(cli + ["--frames", "1-9", "-o", str(tmp_path / "out" / "f_####.png")],
                          capture_output=True, text=True, cwd=REPO, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    frames = sorted((tmp_path / "out").glob("f_*.png"))
    assert [f.name for f in frames] == [f"f_{i:04d}.png" for i in range(1, 10)]
    seq = [_png(f) for f in frames]
    assert seq[0].shape == (120, 160, 3)
    assert np.abs(seq[8] - seq[0]).mean() > 0.05     # the keyed control moved the object
    assert np.array_equal(seq[0][:, :20], seq[8][:, :20])  # far from it, nothing changed
    bad = subprocess.run(cli + ["--frames", "9-1", "-o", str(tmp_path / "x_####.png")],
                         capture_output=True, text=True, cwd=REPO, env=env)
    assert bad.returncode == 2 and "comes before the first" in bad.stderr
    no_hash = subprocess.run(cli + ["-o", str(tmp_path / "x.png")], capture_output=True, text=True, cwd=REPO,
                             env=env)
    assert no_hash.returncode == 2 and "####" in no_hash.stderr
