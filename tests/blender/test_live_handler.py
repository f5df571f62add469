"""The live handler's logic on a synthetic object (no server, no camera: nothing renders).

Timers do not run headless; `handlers.flush()` runs what the drain timer would.
"""
from __future__ import annotations

import pytest

from uplift_bpy_harness import run_blender

pytestmark = pytest.mark.bpy

# The extension's live-loop modules, in an empty scene.
PREAMBLE = r"""
import numpy as np
import torch
M = "bl_ext.user_default.uplift"
handlers = importlib.import_module(M + ".blender.handlers")
lifted = importlib.import_module(M + ".blender.lifted")
scene_io = importlib.import_module(M + ".blender.scene_io")
state = importlib.import_module(M + ".blender.state")
Gaussians = importlib.import_module(M + ".core.gaussians").Gaussians
for ob in list(bpy.data.objects):
    bpy.data.objects.remove(ob)
"""

SCRIPT = PREAMBLE + r"""
scene = bpy.context.scene

def bar(offset, seed):
    # A 2 x 0.4 x 0.4 bar of Gaussians along X, in world space.
    g = torch.Generator().manual_seed(seed)
    n = 1500
    means = torch.rand(n, 3, generator=g) * torch.tensor([2.0, 0.4, 0.4]) + torch.tensor(offset)
    return Gaussians.from_colors(means, torch.rand(n, 3, generator=g), torch.full((n, 3), 0.02), torch.full((n,), 0.9))

settings = state.DeformSettings(24, 8, 4, 3, "cpu", "torch")
a = lifted.create_object(scene, bar([0.0, 3.0, 0.0], 0), None, settings)
b = lifted.create_object(scene, bar([0.0, 3.0, 2.0], 1), None, settings)
lifted.create_controls(a, settings)
lifted.create_controls(b, settings)
bpy.context.view_layer.update()
handlers.flush()
ca, cb = scene_io.controls_of(a), scene_io.controls_of(b)
rest_a = np.array([ca[i].location for i in range(len(ca))])
rest_b = np.array([cb[i].location for i in range(len(cb))])
out["counts"] = [len(ca), len(cb)]
out["roots_local_centre"] = float(np.abs(rest_a.mean(0)).max())
out["no_handles_rest"] = float(np.abs(np.array([ca[i].location for i in range(len(ca))]) - rest_a).max())

# Pin both ends of bar a, then lift one end: the middle bends, b stays.
left, right = int(np.argmin(rest_a[:, 0])), int(np.argmax(rest_a[:, 0]))
ca[left].uplift.pinned = True
ca[right].location = rest_a[right] + np.array([0.0, 0.0, 0.5])
bpy.context.view_layer.update()
out["pending_uids"] = sorted(handlers._pending)
out["uid_a"] = a.uplift.uid
handlers.flush()
now_a = np.array([ca[i].location for i in range(len(ca))])
out["right_pinned"] = ca[right].uplift.pinned
out["left_kept"] = float(np.abs(now_a[left] - rest_a[left]).max())
out["right_at_target"] = float(np.abs(now_a[right] - (rest_a[right] + [0, 0, 0.5])).max())
middle = int(np.argmin(np.abs(rest_a[:, 0] - rest_a[:, 0].mean())))
out["middle_rise"] = float(now_a[middle, 2] - rest_a[middle, 2])
out["b_untouched"] = float(np.abs(np.array([cb[i].location for i in range(len(cb))]) - rest_b).max())
proxy = scene_io.proxy_of(a)
co = importlib.import_module(M + ".blender.proxy").positions(proxy)  # a point mesh, or native splats on 5.3+
out["proxy_moved"] = float(np.abs(co - scene_io.load_gaussians(a).means.numpy()).max())

# Our own writes do not come back as edits.
bpy.context.view_layer.update()
out["pending_after_own_writes"] = len(handlers._pending)
out["pinned_count"] = sum(c.uplift.pinned for c in ca.values())

# The camera is converted only when its key changes, not on every update.
conversions = []
camera_of = scene_io.camera_of
scene_io.camera_of = lambda sc: conversions.append(1) or camera_of(sc)
for step_z in (0.01, 0.02):
    ca[right].location = np.array(ca[right].location) + np.array([0.0, 0.0, step_z])
    bpy.context.view_layer.update()
    handlers.flush()
scene_io.camera_of = camera_of
out["camera_conversions"] = len(conversions)

# Moving the root only re-renders (no solve); nothing to render without a camera, controls stay.
a.location.x += 1.0
bpy.context.view_layer.update()
req = handlers._pending.get(a.uplift.uid)
out["root_move_solve"] = None if req is None else bool(req.solve)
handlers.flush()

# Release the lifted end: it follows the ARAP solution again, which relaxes the bend
# (with one handle left any rigid pose is a minimum, so compare shape, not position).
def distortion(points):
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    d_rest = np.linalg.norm(rest_a[:, None] - rest_a[None], axis=-1)
    return float(np.abs(d - d_rest).mean())
bent = np.array([ca[i].location for i in range(len(ca))])
ca[right].uplift.pinned = False
bpy.context.view_layer.update()
handlers.flush()
relaxed = np.array([ca[i].location for i in range(len(ca))])
out["released_moved"] = float(np.abs(relaxed[right] - bent[right]).max())
out["distortion"] = [distortion(bent), distortion(relaxed)]

# A deleted control is no handle; the rest keeps working.
bpy.data.objects.remove(ca[left])
ca = scene_io.controls_of(a)
other = next(i for i in ca if i != right)
ca[other].location = np.array(ca[other].location) + np.array([0.0, 0.0, 0.2])
bpy.context.view_layer.update()
handlers.flush()
out["after_delete_ok"] = bool(ca[other].uplift.pinned) and handlers.last_error["text"] == ""

# Iteration and render-backend preferences are taken in place: same session, same deformer.
prefs = bpy.context.preferences.addons[M].preferences
session_a = state.get(a.uplift.uid)
deformer_a = session_a.deformer
prefs.arap_iterations = prefs.arap_iterations + 2
prefs.render_backend = "torch"
out["prefs_kept_session"] = (scene_io.session_for(a) is session_a and session_a.deformer is deformer_a
                             and deformer_a.config.iterations == prefs.arap_iterations
                             and session_a.settings.iterations == prefs.arap_iterations)

# Deleting a root drops its session and its layer on the next update (no explicit collect).
for ob in [b, *b.children]:
    bpy.data.objects.remove(ob)
bpy.context.view_layer.update()
out["sessions"] = sorted(state.uids())

# Real undo / redo of a drag: the empties come back, nothing gets pinned by it, the solve follows.
bpy.ops.ed.undo_push(message="before drag")
ca = scene_io.controls_of(a)
pinned_before = sorted(i for i, c in ca.items() if c.uplift.pinned)
locations_before = {i: tuple(c.location) for i, c in ca.items()}
free_i = next(i for i, c in ca.items() if not c.uplift.pinned)
ca[free_i].location = np.array(ca[free_i].location) + np.array([0.0, 0.0, 0.3])
bpy.context.view_layer.update()
handlers.flush()
bpy.ops.ed.undo_push(message="drag")
bpy.ops.ed.undo()
bpy.context.view_layer.update()
handlers.flush()
ca = scene_io.controls_of(scene_io.roots(bpy.context.scene)[0])
out["undo_pins_restored"] = sorted(i for i, c in ca.items() if c.uplift.pinned) == pinned_before
out["undo_locations_restored"] = max(float(np.abs(np.array(c.location) - locations_before[i]).max()) for i, c in ca.items())
bpy.ops.ed.redo()
bpy.context.view_layer.update()
handlers.flush()
ca = scene_io.controls_of(scene_io.roots(bpy.context.scene)[0])
out["redo_pinned"] = bool(ca[free_i].uplift.pinned)
out["redo_error"] = handlers.last_error["text"]
a = scene_io.roots(bpy.context.scene)[0]

# Disable and re-enable mid-edit: one handler, fresh modules, the edit carries on.
bpy.ops.preferences.addon_disable(module=M)
bpy.ops.preferences.addon_enable(module=M)
handlers = importlib.import_module(M + ".blender.handlers")
scene_io = importlib.import_module(M + ".blender.scene_io")
out["handlers_after_reenable"] = len([f for f in bpy.app.handlers.depsgraph_update_post
                                      if getattr(f, "__module__", "").startswith(M)])
ca = scene_io.controls_of(a)
free = [i for i, c in ca.items() if not c.uplift.pinned]
before = np.array([ca[i].location for i in free])
# As in the UI: the empty is selected before it is dragged (that update rebuilds the session).
ca[other].select_set(True)
bpy.context.view_layer.update()
handlers.flush()
ca[other].location = np.array(ca[other].location) + np.array([0.0, 0.0, 0.2])
bpy.context.view_layer.update()
out["ran_after_reenable"] = handlers.flush()
out["free_moved_after_reenable"] = float(np.abs(np.array([ca[i].location for i in free]) - before).max())
emit()
"""


def test_handler_logic(extension_zip, blender_python, tmp_path):
    out = run_blender(SCRIPT, extension_zip, tmp_path, blender_python)
    assert out["counts"] == [24, 24]
    assert out["roots_local_centre"] < 0.3     # controls live in the root's local frame, round its centre
    assert out["no_handles_rest"] < 1e-6
    assert out["pending_uids"] == [out["uid_a"]]
    assert out["right_pinned"] and out["left_kept"] < 1e-6 and out["right_at_target"] < 1e-6
    assert 0.05 < out["middle_rise"] < 0.5
    assert out["b_untouched"] == 0.0
    assert out["proxy_moved"] > 0.05
    assert out["pending_after_own_writes"] == 0
    assert out["pinned_count"] == 2
    assert out["camera_conversions"] == 0
    assert out["root_move_solve"] is False
    assert out["released_moved"] > 1e-3
    assert out["distortion"][1] < out["distortion"][0]
    assert out["after_delete_ok"]
    assert out["sessions"] == [out["uid_a"]]
    assert out["prefs_kept_session"]
    assert out["undo_pins_restored"] and out["undo_locations_restored"] < 1e-6
    assert out["redo_pinned"] and out["redo_error"] == ""
    assert out["handlers_after_reenable"] == 1
    assert out["ran_after_reenable"] == 1 and out["free_moved_after_reenable"] > 1e-3


CONTROLS_SCRIPT = PREAMBLE + r"""
g = torch.Generator().manual_seed(0)
gaussians = Gaussians.from_colors(torch.rand(800, 3, generator=g), torch.rand(800, 3, generator=g),
                                  torch.full((800, 3), 0.02), torch.full((800,), 0.9))
settings = state.DeformSettings(16, 8, 4, 3, "cpu", "torch")
root = lifted.create_object(bpy.context.scene, gaussians, None, settings)
out["before_controls"] = len(scene_io.controls_of(root))  # cached while there are none
lifted.create_controls(root, settings)
first = scene_io.controls_of(root)
out["after_create"] = len(first)
out["cached"] = scene_io.controls_of(root) is first
bpy.data.objects.remove(first[3])
after_delete = scene_io.controls_of(root)
out["after_delete"] = sorted(after_delete) == [i for i in range(16) if i != 3]
after_delete[5].parent = None
out["after_unparent"] = 5 not in scene_io.controls_of(root)
lifted.create_controls(root, settings)
out["after_rebuild"] = sorted(scene_io.controls_of(root)) == list(range(16))
emit()
"""


def test_the_controls_map_follows_the_empties(extension_zip, blender_python, tmp_path):
    """`scene_io.controls_of` keeps its map between calls (a full scan of the file costs 2 ms with
    512 controls) and rebuilds it when the controls are created, deleted, unparented or rebuilt."""
    out = run_blender(CONTROLS_SCRIPT, extension_zip, tmp_path, blender_python)
    assert out["before_controls"] == 0 and out["after_create"] == 16 and out["cached"]
    assert out["after_delete"] and out["after_unparent"] and out["after_rebuild"]
