"""A server that is not there: each server step reports a clear error and changes nothing."""
from __future__ import annotations

import pytest

from uplift_bpy_harness import free_port, run_blender

pytestmark = pytest.mark.bpy

SCRIPT = r"""
M = "bl_ext.user_default.uplift"
scene_io = importlib.import_module(M + ".blender.scene_io")
prefs = bpy.context.preferences.addons[M].preferences
prefs.server_url = DEAD
scene = bpy.context.scene
bpy.ops.uplift.load_photo(filepath=PHOTO)

def snapshot():
    return {"objects": sorted(o.name for o in bpy.data.objects), "images": sorted(i.name for i in bpy.data.images),
            "texts": sorted(t.name for t in bpy.data.texts), "mask": scene.uplift.mask_image is not None,
            "layers": [l.image.name for l in scene.camera.data.background_images],
            "box": list(scene.uplift.prompt_box)}

before = snapshot()
try:
    bpy.ops.uplift.select_object(mode="BOX", box=(10, 10, 200, 200))
    out["select_error"] = ""
except RuntimeError as exc:
    out["select_error"] = str(exc)
out["unchanged_after_select"] = snapshot() == before

try:
    bpy.ops.uplift.test_connection()
    out["test_error"] = ""
except RuntimeError as exc:
    out["test_error"] = str(exc)
status = importlib.import_module(M + ".blender.preferences").connection_status
out["status"] = dict(status)

# A server off this machine is refused while Blender's online access is off.
prefs.server_url = "http://192.0.2.1:8765"
try:
    bpy.ops.uplift.select_object(mode="BOX", box=(10, 10, 200, 200))
    out["remote_error"] = ""
except RuntimeError as exc:
    out["remote_error"] = str(exc)
out["online_access"] = bpy.app.online_access
out["unchanged_after_remote"] = snapshot() == before
emit()
"""


def test_dead_server_reports_and_leaves_the_scene_alone(extension_zip, blender_python, shared_data, tmp_path):
    header = f"DEAD = 'http://127.0.0.1:{free_port()}'\nPHOTO = {str(shared_data / 'photos' / 'dog.jpg')!r}\n"
    out = run_blender(header + SCRIPT, extension_zip, tmp_path, blender_python)
    assert "nothing listens" in out["select_error"] and "uplift serve" in out["select_error"]
    assert out["unchanged_after_select"]
    assert "nothing listens" in out["test_error"]
    assert out["status"]["ok"] is False and "nothing listens" in out["status"]["text"]
    assert out["online_access"] is False
    assert "not on this machine" in out["remote_error"] and out["unchanged_after_remote"]
