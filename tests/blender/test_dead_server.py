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


BUSY_SCRIPT = r"""
M = "bl_ext.user_default.uplift"
prefs = bpy.context.preferences.addons[M].preferences
prefs.server_url = BUSY
scene = bpy.context.scene
bpy.ops.uplift.load_photo(filepath=PHOTO)
masks_before = scene.uplift.mask_image is not None
try:
    bpy.ops.uplift.select_object(mode="BOX", box=(10, 10, 200, 200))
    out["select_error"] = ""
except RuntimeError as exc:
    out["select_error"] = str(exc)
out["mask_unchanged"] = (scene.uplift.mask_image is not None) == masks_before
emit()
"""


def test_a_full_server_reads_as_server_busy(extension_zip, blender_python, shared_data, tmp_path):
    """Every worker taken (one job holds the only slot, no queue): the operator reports
    'server busy' in one line after the client's retries, and changes nothing."""
    import threading

    import numpy as np

    from uplift.core.image_io import encode_png
    from uplift.services.backends.grabcut import GrabCutSegmenter
    from uplift.services.client import UpliftClient
    from uplift.services.config import ServerConfig
    from uplift.services.local import LocalServices
    from uplift.services.server import create_app, start_background

    release, started = threading.Event(), threading.Event()

    class HeldSegmenter(GrabCutSegmenter):
        name = "held"

        def segment(self, image, points, labels, box):
            started.set()
            release.wait(120)
            return super().segment(image, points, labels, box)

    config = ServerConfig(queue_size=0)
    server = start_background(create_app(config, LocalServices(config, segmenter=HeldSegmenter())))
    image = encode_png(np.full((32, 32, 3), 128, np.uint8))
    holder = threading.Thread(target=lambda: UpliftClient(server.url, retries=0).segment(image, box=[4, 4, 20, 20]))
    holder.start()
    try:
        assert started.wait(30)
        header = f"BUSY = {server.url!r}\nPHOTO = {str(shared_data / 'photos' / 'dog.jpg')!r}\n"
        out = run_blender(header + BUSY_SCRIPT, extension_zip, tmp_path, blender_python)
    finally:
        release.set()
        holder.join(60)
        server.stop()
    assert out["select_error"].count("server busy") == 1 and "Traceback" not in out["select_error"], out["select_error"]
    assert out["mask_unchanged"]
