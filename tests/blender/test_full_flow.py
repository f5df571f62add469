"""The whole artist workflow in headless Blender against a live `uplift serve` on loopback.

One Blender subprocess walks the flow (load → segment → lift → controls → move a control →
fill → compose & export → compositor render → save/reopen → move another control) and
reports measurements; the assertions are here. Timers do not run headless, so the live
handler's queued work is run with `handlers.flush()` (the drain the timer would call).
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from uplift_bpy_harness import compositor_nodes, run_blender

pytestmark = [pytest.mark.bpy, pytest.mark.slow]

DOG_BOX = (0, 215, 430, 534)     # the bulldog, bottom-left of dog.jpg (800x534)
BOWL_BOX = (490, 136, 660, 262)  # the bowl held up on the right

FLOW = r"""
import hashlib
from pathlib import Path
import numpy as np
M = "bl_ext.user_default.uplift"
handlers = importlib.import_module(M + ".blender.handlers")
scene_io = importlib.import_module(M + ".blender.scene_io")
images = importlib.import_module(M + ".blender.images")
state = importlib.import_module(M + ".blender.state")
prefs = bpy.context.preferences.addons[M].preferences
prefs.server_url = SERVER
prefs.control_count = 48
prefs.preview_scale = 0.25
prefs.render_backend = "torch"
prefs.device = "cpu"
for ob in list(bpy.data.objects):
    bpy.data.objects.remove(ob)
scene = bpy.context.scene
photo_hash = hashlib.sha256(Path(PHOTO).read_bytes()).hexdigest()

def render_pixels(root):
    return images.read_rgba(root.uplift.render_image)

def window_diff(a, b, uv, radius):
    h, w = a.shape[:2]
    u, v = int(np.clip(uv[0], 0, w - 1)), int(np.clip(uv[1], 0, h - 1))
    sl = (slice(max(v - radius, 0), v + radius + 1), slice(max(u - radius, 0), u + radius + 1))
    return float(np.abs(a[sl] - b[sl]).mean())

def project(root, local):
    cam = scene_io.camera_of(scene)
    world = np.array(root.matrix_world) @ np.append(local, 1.0)
    uv, _ = cam.project(world[None, :3])
    return uv[0]

# 1. Load Photo
step('1. Load Photo')
bpy.ops.uplift.load_photo(filepath=PHOTO)
out["resolution"] = [scene.render.resolution_x, scene.render.resolution_y]
panels = importlib.import_module(M + ".blender.panels")
out["steps"] = [panels.workflow_step(bpy.context)[0]]
out["camera_is_scene_camera"] = scene.camera == scene.uplift.camera
out["background_layers"] = [(l.image.name, l.display_depth) for l in scene.camera.data.background_images]

# 2. Select Object with a box
step('2. Select Object')
bpy.ops.uplift.select_object(mode="BOX", box=DOG_BOX)
mask = images.read_rgba(scene.uplift.mask_image)[..., 0] > 0.5
out["mask_pixels"] = int(mask.sum())
x0, y0, x1, y1 = DOG_BOX
out["mask_inside_box"] = float(mask[y0:y1, x0:x1].sum() / max(mask.sum(), 1))
out["steps"].append(panels.workflow_step(bpy.context)[0])
# Refine with a click: a background point at the box's top-right corner (the floor) is added to the prompt.
bpy.ops.uplift.select_object(mode="POINT", point=(DOG_BOX[2] - 5, DOG_BOX[1] + 5), label=0)
refined = images.read_rgba(scene.uplift.mask_image)[..., 0] > 0.5
out["prompt_after_click"] = [list(scene.uplift.prompt_box), [(p.x, p.y, p.label) for p in scene.uplift.prompt_points]]
out["refined_excludes_click"] = not bool(refined[DOG_BOX[1] + 5, DOG_BOX[2] - 5])
out["refined_pixels"] = int(refined.sum())
bpy.ops.uplift.test_connection()
out["connection"] = dict(importlib.import_module(M + ".blender.preferences").connection_status)
out["overlay_shown"] = any(l.image == scene.uplift.overlay_image for l in scene.camera.data.background_images)

# 3. Lift
step('3. Lift')
bpy.ops.uplift.lift()
roots = scene_io.roots(scene)
root = roots[0]
out["roots"] = len(roots)
out["steps"].append(panels.workflow_step(bpy.context)[0])
out["gaussians"] = len(scene_io.load_gaussians(root))
proxy = scene_io.proxy_of(root)
proxy_module = importlib.import_module(M + ".blender.proxy")
out["proxy_points"] = len(proxy_module.positions(proxy))
out["proxy_native"] = importlib.import_module(M + ".blender.native_splats").is_native(proxy)

def proxy_pose_error(root):
    # How far the proxy (native splats on 5.3+) is from the live loop's posed Gaussians.
    posed = state.get(root.uplift.uid).deformed
    return float(np.abs(proxy_module.positions(scene_io.proxy_of(root)) - posed.means.numpy()).max())
out["overlay_after_lift"] = scene.uplift.overlay_image is not None
handlers.flush(full=True)
out["render_after_lift"] = root.uplift.render_image is not None
first = render_pixels(root)
out["render_size"] = list(first.shape)
# The render sits where the mask was: most of its alpha is inside the selected region.
alpha = first[..., 3] > 0.5
out["render_alpha_in_mask"] = float((alpha & mask).sum() / max(alpha.sum(), 1))
# Reprojection: at rest the live render shows the photo's own pixels.
photo_px = importlib.import_module(M + ".core.image_io").load_image(PHOTO) / 255.0
solid = (first[..., 3] > 0.9) & mask
out["render_psnr_in_mask"] = float(-10 * np.log10(np.mean((first[..., :3][solid] - photo_px[solid]) ** 2)))

# 4. Create Controls
step('4. Create Controls')
bpy.ops.uplift.create_controls()
controls = scene_io.controls_of(root)
out["controls"] = len(controls)
out["steps"].append(panels.workflow_step(bpy.context)[0])
handlers.flush(full=True)
before = render_pixels(root)
out["controls_keep_render"] = float(np.abs(before - first).max())

# 5. Move the right-most control up (Blender +Z) by a fifth of the object's size.
step('5. Move')
rest = np.array([controls[i].location for i in range(len(controls))])
uvs = np.array([project(root, p) for p in rest])
moved = int(np.argmax(uvs[:, 0]))
far = int(np.argmin(uvs[:, 0]))
size = float(np.ptp(rest, axis=0).max())
# Anchor the far half (ARAP with one handle alone is a rigid move): select those empties, Pin Controls.
for ob in bpy.context.selected_objects:
    ob.select_set(False)
anchored = [i for i in range(len(controls)) if uvs[i, 0] < np.median(uvs[:, 0])]
for i in anchored:
    controls[i].select_set(True)
bpy.ops.uplift.pin_control()
out["pinned_by_operator"] = sum(controls[i].uplift.pinned for i in anchored) == len(anchored)
handlers.flush()
free_before = np.array([controls[i].location for i in range(len(controls))])
controls[moved].location = rest[moved] + np.array([0.0, 0.0, 0.2 * size])
bpy.context.view_layer.update()
out["queued_after_move"] = len(handlers._pending)
out["ran"] = handlers.flush(full=True)
out["proxy_pose_error"] = proxy_pose_error(root)
after = render_pixels(root)
out["moved_pinned"] = controls[moved].uplift.pinned
free_after = np.array([controls[i].location for i in range(len(controls))])
others = [i for i in range(len(controls)) if i != moved and i not in anchored]
out["free_controls_moved"] = float(np.abs(free_after[others] - free_before[others]).max())
out["moved_kept"] = float(np.abs(free_after[moved] - (rest[moved] + [0, 0, 0.2 * size])).max())
radius = 25
out["diff_near"] = window_diff(after, before, uvs[moved], radius)
out["diff_far"] = window_diff(after, before, uvs[far], radius)
out["diff_total"] = float(np.abs(after - before).mean())
# Our own writes to the free empties must not re-trigger the handler.
step('Our own writes')
bpy.context.view_layer.update()
out["queued_after_own_writes"] = len(handlers._pending)

# A moved camera re-renders without re-solving.
shown = render_pixels(root)
scene.camera.location.x += 0.02 * size
bpy.context.view_layer.update()
request = handlers._pending.get(root.uplift.uid)
out["camera_move_request"] = None if request is None else [bool(request.solve), request.scale]
handlers.flush(full=True)
out["camera_move_changed"] = float(np.abs(render_pixels(root) - shown).mean())
scene.camera.location.x -= 0.02 * size
bpy.context.view_layer.update()
handlers.flush(full=True)
out["camera_back_same"] = float(np.abs(render_pixels(root) - shown).max())

# Undo restores empties: the handler takes them as they are rather than pinning them.
step('Undo restores')
controls[others[0]].location = free_before[others[0]]
handlers.on_undo_redo(scene)
bpy.context.view_layer.update()
out["pinned_after_undo"] = controls[others[0]].uplift.pinned
handlers.flush()

# Real undo of a drag restores the exact pose and picture (empties hold positions and ARAP rotations).
handlers.flush(full=True)
posed = render_pixels(root)
bpy.ops.ed.undo_push(message="posed")
controls = scene_io.controls_of(root)
extra = next(i for i in others if not controls[i].uplift.pinned)
controls[extra].location = np.array(controls[extra].location) + np.array([0.1 * size, 0.0, 0.0])
bpy.context.view_layer.update()
handlers.flush(full=True)
out["extra_drag_changed"] = float(np.abs(render_pixels(root) - posed).mean())
bpy.ops.ed.undo_push(message="dragged")
bpy.ops.ed.undo()
bpy.context.view_layer.update()
handlers.flush(full=True)
root = scene_io.roots(bpy.context.scene)[0]
scene = bpy.context.scene
controls = scene_io.controls_of(root)
out["undo_render_diff"] = float(np.abs(render_pixels(root) - posed).max())
out["undo_extra_pinned"] = controls[extra].uplift.pinned

# 6. Fill Background
step('6. Fill Background')
bpy.ops.uplift.fill_background()
layers = list(scene.camera.data.background_images)
out["steps"].append(panels.workflow_step(bpy.context)[0])
out["plate_is_back_layer"] = [l.image for l in layers if l.display_depth == "BACK"] == [scene.uplift.plate_image]
out["photo_layer_gone"] = not any(l.image == scene.uplift.photo_image for l in layers)
plate = images.read_rgba(scene.uplift.plate_image)[..., :3]
photo = images.read_rgba(scene.uplift.photo_image)[..., :3]
out["plate_changed_in_mask"] = float(np.abs(plate - photo)[mask].mean())
out["plate_same_far_away"] = float(np.abs(plate - photo)[:100, 700:].mean())
out["photo_unchanged"] = hashlib.sha256(Path(PHOTO).read_bytes()).hexdigest() == photo_hash and \
    hashlib.sha256(bytes(scene.uplift.photo_image.packed_file.data)).hexdigest() == photo_hash

# 7. Compose & Export (the .blend is not saved yet: exports go to the extension's user folder)
step('7. Compose')
bpy.ops.uplift.compose_export()
folder = Path(scene.uplift.export_dir)
out["export_dir"] = str(folder)
out["steps"].append(panels.workflow_step(bpy.context)[0])
out["files"] = sorted(p.name for p in folder.iterdir())
tree = importlib.import_module(M + ".blender.compositor").scene_tree(scene)
out["tree_nodes"] = sorted(n.bl_idname for n in tree.nodes)
scene.render.engine = "CYCLES"
scene.cycles.samples = 1
scene.cycles.device = "CPU"
scene.render.image_settings.file_format = "PNG"
scene.render.image_settings.color_mode = "RGB"
scene.render.filepath = str(Path(WORK) / "compositor.png")
step("compositor render")
bpy.ops.render.render(write_still=True)
step("compositor rendered")
exr = bpy.data.images.load(str(folder / "layers.exr"))
len(exr.pixels)  # loads the file
out["exr_type"] = exr.type

# 8. Save, reopen, move another control
step('8. Save')
out["pinned_before_save"] = sorted(i for i, c in controls.items() if c.uplift.pinned)
blend = Path(WORK) / "edit.blend"
bpy.ops.wm.save_as_mainfile(filepath=str(blend))
bpy.ops.wm.open_mainfile(filepath=str(blend))
scene = bpy.context.scene
root = scene_io.roots(scene)[0]
controls = scene_io.controls_of(root)
out["reopened_controls"] = len(controls)
out["reopened_pinned"] = sorted(i for i, c in controls.items() if c.uplift.pinned)
out["sessions_after_reopen"] = len(state.uids())
handlers.flush(full=True)
before2 = images.read_rgba(root.uplift.render_image)
# Another free control, the one furthest from the first handle; the anchored far end must stay put.
free = [i for i in range(len(controls)) if not controls[i].uplift.pinned]
second = max(free, key=lambda i: np.linalg.norm(uvs[i] - uvs[moved]))
out["second_is_free"] = not controls[second].uplift.pinned
target2 = np.array(controls[second].location) + np.array([0.0, 0.0, -0.2 * size])
controls[second].location = target2
bpy.context.view_layer.update()
handlers.flush(full=True)
after2 = images.read_rgba(root.uplift.render_image)
out["reopened_proxy"] = [importlib.import_module(M + ".blender.native_splats").is_native(scene_io.proxy_of(root)),
                         proxy_pose_error(root)]
out["reopen_diff_near"] = window_diff(after2, before2, uvs[second], radius)
out["reopen_diff_far"] = window_diff(after2, before2, uvs[far], radius)
bpy.ops.uplift.compose_export()
out["saved_export_dir"] = scene.uplift.export_dir
out["saved_export_files"] = sorted(p.name for p in Path(scene.uplift.export_dir).iterdir())
out["reopen_first_handle_kept"] = float(np.abs(np.array(controls[moved].location) - (rest[moved] + [0, 0, 0.2 * size])).max())

# 9. A second object keeps its own state
step('9. A second')
bpy.ops.uplift.select_object(mode="BOX", box=BOWL_BOX)
bpy.ops.uplift.lift()
bowl = next(r for r in scene_io.roots(scene) if r != root)
bpy.context.view_layer.objects.active = bowl
bpy.ops.uplift.create_controls()
handlers.flush()
dog_before = images.read_rgba(root.uplift.render_image)
bowl_controls = scene_io.controls_of(bowl)
bowl_controls[0].location = np.array(bowl_controls[0].location) + np.array([0.0, 0.0, 0.05])
bpy.context.view_layer.update()
out["second_object_queued"] = sorted(handlers._pending)
out["uids"] = [root.uplift.uid, bowl.uplift.uid]
handlers.flush()
out["dog_unchanged_by_bowl_edit"] = float(np.abs(images.read_rgba(root.uplift.render_image) - dog_before).max())
out["render_layers"] = len([l for l in scene.camera.data.background_images if l.image and l.image.get("uplift_uid")])

# Deleting an object drops its state and its layer
step('Deleting an object')
for ob in [bowl, *bowl.children]:
    bpy.data.objects.remove(ob)
bpy.context.view_layer.update()
handlers.collect(scene)
out["render_layers_after_delete"] = len([l for l in scene.camera.data.background_images
                                        if l.image and l.image.get("uplift_uid")])
out["sessions_after_delete"] = sorted(state.uids())

# Deleting the camera: the object still poses (nothing to render through), no error.
bpy.data.objects.remove(scene.camera)
controls = scene_io.controls_of(root)
free = [i for i in range(len(controls)) if not controls[i].uplift.pinned]
before3 = np.array([controls[i].location for i in free])
controls[free[0]].location = np.array(controls[free[0]].location) + np.array([0.0, 0.0, 0.1 * size])
bpy.context.view_layer.update()
out["ran_without_camera"] = handlers.flush(full=True)
out["error_without_camera"] = handlers.last_error["text"]
out["posed_without_camera"] = float(np.abs(np.array([controls[i].location for i in free[1:]]) - before3[1:]).max())
emit()
"""


@pytest.fixture(scope="module")
def flow(extension_zip, blender_python, live_server, shared_data, tmp_path_factory):
    work = tmp_path_factory.mktemp("flow")
    header = (f"SERVER = {live_server.url!r}\nPHOTO = {str(shared_data / 'photos' / 'dog.jpg')!r}\n"
              f"WORK = {str(work)!r}\nDOG_BOX = {DOG_BOX!r}\nBOWL_BOX = {BOWL_BOX!r}\n")
    return run_blender(header + FLOW, extension_zip, work, blender_python), work


def test_panel_follows_the_steps(flow):
    out, _ = flow
    # after: load photo, select, lift, controls, fill, export
    assert out["steps"] == [2, 3, 4, 5, 6, 7]


def test_load_photo_sets_up_the_camera(flow):
    out, _ = flow
    assert out["resolution"] == [800, 534]
    assert out["camera_is_scene_camera"]
    assert [depth for _, depth in out["background_layers"]] == ["BACK"]


def test_box_selection_and_lift(flow):
    out, _ = flow
    assert out["mask_pixels"] > 20000 and out["mask_inside_box"] > 0.99
    assert out["overlay_shown"] and not out["overlay_after_lift"]
    box, points = out["prompt_after_click"]
    assert box == list(DOG_BOX) and points == [[DOG_BOX[2] - 5, DOG_BOX[1] + 5, 0]]
    assert out["refined_excludes_click"] and out["refined_pixels"] > 20000
    assert out["connection"]["ok"] and "Uplift server" in out["connection"]["text"]
    assert out["roots"] == 1 and out["gaussians"] > 1000 and out["proxy_points"] == out["gaussians"]
    # Blender 5.3+: the lifted object is a native Gaussian-splat cloud, posed by the live loop, also after reopening.
    native = tuple(out["blender_version"]) >= (5, 3)
    assert out["proxy_native"] == native and out["reopened_proxy"][0] == native, out
    assert out["proxy_pose_error"] < 1e-5 and out["reopened_proxy"][1] < 1e-5, out
    assert out["render_after_lift"] and out["render_size"] == [534, 800, 4]
    assert out["render_alpha_in_mask"] > 0.9
    assert out["render_psnr_in_mask"] >= 35.0  # the photo's pixels, reprojected
    assert out["controls"] == 48
    assert out["controls_keep_render"] < 1e-3  # controls alone do not deform anything


def test_moving_a_control_deforms_near_it_only(flow):
    out, _ = flow
    assert out["queued_after_move"] == 1 and out["ran"] >= 1
    assert out["pinned_by_operator"]
    assert out["moved_pinned"] and out["moved_kept"] < 1e-5
    assert out["free_controls_moved"] > 1e-4  # the cage follows the ARAP solution
    assert out["diff_near"] > 10 * max(out["diff_far"], 1e-4), out
    assert out["diff_far"] < 0.01
    assert out["queued_after_own_writes"] == 0
    assert out["pinned_after_undo"] is False
    assert out["extra_drag_changed"] > 1e-4 and out["undo_render_diff"] < 1e-3 and not out["undo_extra_pinned"]
    assert out["camera_move_request"] == [False, 0.25]
    assert out["camera_move_changed"] > 1e-3 and out["camera_back_same"] < 1e-4


def test_fill_background_keeps_the_photo(flow):
    out, _ = flow
    assert out["plate_is_back_layer"] and out["photo_layer_gone"]
    assert out["plate_changed_in_mask"] > 0.02 and out["plate_same_far_away"] < 1e-6
    assert out["photo_unchanged"]


def test_compose_export_files_and_compositor_render(flow):
    out, work = flow
    assert {"plate.png", "object.png", "seam_mask.png", "seam_fill.png", "final.png", "layers.exr"} <= set(out["files"])
    assert "/extensions/" in out["export_dir"]  # unsaved .blend: the extension's user folder
    assert compositor_nodes(out["blender_version"]) <= set(out["tree_nodes"])
    assert out["exr_type"] == "MULTILAYER"  # Blender reads our EXR as a multilayer file
    from pathlib import Path

    folder = Path(out["export_dir"])
    final = np.asarray(Image.open(folder / "final.png").convert("RGB"), dtype=np.int16)
    rendered = np.asarray(Image.open(work / "compositor.png").convert("RGB"), dtype=np.int16)
    assert np.abs(final - rendered).max() <= 2
    seam = np.asarray(Image.open(folder / "seam_mask.png")) > 0
    obj = np.asarray(Image.open(folder / "object.png"))
    assert seam.any() and obj[..., 3].any()


def test_save_reopen_and_keep_editing(flow):
    out, work = flow
    assert out["reopened_controls"] == 48 and out["reopened_pinned"] == out["pinned_before_save"]
    assert out["reopen_first_handle_kept"] < 1e-5 and out["second_is_free"]
    # A saved .blend exports beside itself.
    assert out["saved_export_dir"] == str(work / "edit_uplift")
    assert {"final.png", "layers.exr"} <= set(out["saved_export_files"])
    assert out["reopen_diff_near"] > 10 * max(out["reopen_diff_far"], 1e-4), out


def test_objects_keep_separate_state(flow):
    out, _ = flow
    assert out["second_object_queued"] == [out["uids"][1]]
    assert out["dog_unchanged_by_bowl_edit"] == 0.0
    assert out["render_layers"] == 2
    assert out["render_layers_after_delete"] == 1
    assert out["sessions_after_delete"] == [out["uids"][0]]
    assert out["ran_without_camera"] >= 1 and out["error_without_camera"] == ""
    assert out["posed_without_camera"] > 1e-4
