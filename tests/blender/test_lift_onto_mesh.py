"""Lift onto Mesh in headless Blender, on every Blender line: Fit to Photo, Next Fit and Lift
on a mesh object; the one-line refusals; and the CLI giving the same lifted object.

The photo is `mesh_scene.box_scene`'s (a box rendered through a 60 degree camera, the default
of a photo without EXIF, so Load Photo builds the same camera); its mask is set as Select
Object leaves it. Background jobs run to completion headless (EXEC: prepare, work, apply).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: mesh_scene

from uplift_bpy_harness import run_blender  # noqa: E402

pytestmark = [pytest.mark.bpy]  # ~20 s a line on 2 CPU cores (the fit ~6 s)

FIT_COUNT = 3

SCRIPT = r"""
import numpy as np
from pathlib import Path
from mathutils import Matrix
M = "bl_ext.user_default.uplift"
scene_io = importlib.import_module(M + ".blender.scene_io")
images = importlib.import_module(M + ".blender.images")
mesh_source = importlib.import_module(M + ".blender.mesh_source")
exr = importlib.import_module(M + ".core.exr")
prefs = bpy.context.preferences.addons[M].preferences
prefs.device = "cpu"
prefs.render_backend = "torch"
for ob in list(bpy.data.objects):
    bpy.data.objects.remove(ob)
scene = bpy.context.scene
work = Path(WORK)

def refusal(op, **kw):
    try:
        result = op(**kw)
    except RuntimeError as exc:
        return str(exc)
    return f"ran: {sorted(result)}"

def activate(ob):
    for other in bpy.context.selected_objects:
        other.select_set(False)
    if ob is not None:
        ob.select_set(True)
    bpy.context.view_layer.objects.active = ob

def mesh_object(name, vertices, faces):
    data = bpy.data.meshes.new(name)
    data.from_pydata(vertices, [], faces)
    ob = bpy.data.objects.new(name, data)
    scene.collection.objects.link(ob)
    return ob

def triangulated_box(name, matrix, baked=False):
    import bmesh
    bpy.ops.mesh.primitive_cube_add(size=1.0)
    ob = bpy.context.active_object
    ob.name = name
    bm = bmesh.new()
    bm.from_mesh(ob.data)
    bmesh.ops.triangulate(bm, faces=bm.faces[:])  # all triangles: an exporter keeps them as they are
    bm.to_mesh(ob.data)
    bm.free()
    if baked:  # into the mesh data (float32), the object's matrix the identity
        ob.data.transform(Matrix(matrix))
    else:
        ob.matrix_world = Matrix(matrix)
    return ob

out["refused"] = {}
step("refusals before a photo")
out["refused"]["no photo"] = refusal(bpy.ops.uplift.fit_to_photo)
out["refused"]["next without fit"] = refusal(bpy.ops.uplift.next_fit)
bpy.ops.uplift.load_photo(filepath=str(work / "photo.png"))
out["refused"]["no mask"] = refusal(bpy.ops.uplift.fit_to_photo)
scene.uplift.mask_image = images.packed_image("Uplift Selection Mask", (work / "mask.png").read_bytes(), ".png",
                                              colorspace="Non-Color")
activate(None)
out["refused"]["nothing selected"] = refusal(bpy.ops.uplift.fit_to_photo)
activate(scene.uplift.camera)
out["refused"]["a camera"] = refusal(bpy.ops.uplift.fit_to_photo)
activate(mesh_object("Empty", [], []))
out["refused"]["empty mesh"] = refusal(bpy.ops.uplift.fit_to_photo)
activate(mesh_object("Flat", [(0, 4, 0), (1, 4, 0), (2, 4, 0)], [(0, 1, 2)]))
out["refused"]["zero area"] = refusal(bpy.ops.uplift.fit_to_photo)
out["state_after_refusals"] = [scene.uplift.fit_mesh is None, scene.uplift.fit_total]

# Material colours: a constant Base Color (linear in Blender, sRGB in the surface) and an image texture.
step("material colours")
plain = triangulated_box("Painted", np.eye(4))
material = bpy.data.materials.new("Red")
if bpy.app.version < (5, 0):
    material.use_nodes = True  # always on (and deprecated) from 5.0
bsdf = next(n for n in material.node_tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
bsdf.inputs["Base Color"].default_value = (0.5, 0.2, 0.05, 1.0)
plain.data.materials.append(material)
surface = mesh_source.surface_mesh(plain, bpy.context.evaluated_depsgraph_get())
out["constant_color"] = [surface.face_colors.min(0).tolist(), surface.face_colors.max(0).tolist(),
                         exr.linear_to_srgb(np.array([0.5, 0.2, 0.05])).tolist()]
texture = bpy.data.images.new("Checker", 4, 4)
pixels = np.zeros((4, 4, 4), np.float32)
pixels[..., 3] = 1
pixels[:, :2, 1] = 1.0   # left half green, right half blue (rows bottom-up: same for both)
pixels[:, 2:, 2] = 1.0
texture.pixels.foreach_set(pixels.ravel())
node = material.node_tree.nodes.new("ShaderNodeTexImage")
node.image = texture
material.node_tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
surface = mesh_source.surface_mesh(plain, bpy.context.evaluated_depsgraph_get())
out["texture"] = [len(surface.textures), list(surface.textures[0].shape), surface.uv.shape[0] == surface.vertices.shape[0],
                  int((surface.face_texture == 0).sum()), surface.face_colors is None]
# A colour attribute (vertex paint): per corner on one box, per point on another; the texture still wins.
corner = plain.data.color_attributes.new("Paint", "BYTE_COLOR", "CORNER")
corner.data.foreach_set("color_srgb", np.tile([1.0, 0.5, 0.0, 1.0], len(corner.data)).astype(np.float32))
plain.data.color_attributes.active_color = corner
surface = mesh_source.surface_mesh(plain, bpy.context.evaluated_depsgraph_get())
out["corner_paint"] = [list(surface.vertex_colors.shape), surface.vertex_colors.min(0).tolist(),
                       surface.vertex_colors.max(0).tolist(), len(surface.textures)]
unpainted = triangulated_box("Unpainted", np.eye(4))
point = unpainted.data.color_attributes.new("Scan", "FLOAT_COLOR", "POINT")
values = np.zeros((len(point.data), 4), np.float32)
values[:, 3] = 1.0
values[:, 2] = np.array([v.co.z > 0 for v in unpainted.data.vertices], np.float32)  # blue on top
point.data.foreach_set("color_srgb", values.ravel())
unpainted.data.color_attributes.active_color = point
surface = mesh_source.surface_mesh(unpainted, bpy.context.evaluated_depsgraph_get())
top = surface.vertices[:, 2] > 0
out["point_paint"] = [bool(np.allclose(surface.vertex_colors[top], [0, 0, 1], atol=1e-4)),  # float linear <-> sRGB: 3e-5
                      bool(np.allclose(surface.vertex_colors[~top], 0, atol=1e-4)),
                      surface.has_colors]
bpy.data.objects.remove(unpainted)
bpy.data.objects.remove(plain)

# Fit to Photo a box of the right shape, turned and away from where the photo shows it.
step("Fit to Photo")
box = triangulated_box("Box", MATRIX_UNPOSED, baked=True)  # the exporter then writes Blender's own floats
scene.uplift.fit_count = FIT_COUNT
activate(box)
out["fit_result"] = sorted(bpy.ops.uplift.fit_to_photo())
props = scene.uplift
out["fit_mesh"] = props.fit_mesh.name if props.fit_mesh else None
out["fit_total"], out["fit_index"] = props.fit_total, props.fit_index
overlay = props.fit_overlay_image
out["overlay_layer"] = overlay is not None and any(l.image == overlay and l.display_depth == "FRONT"
                                                   for l in scene.camera.data.background_images)
mask = images.read_rgba(props.mask_image)[..., 0] > 0.5
shown = images.read_rgba(overlay)[..., 3] > 0
out["overlay_iou"] = float((shown & mask).sum() / max((shown | mask).sum(), 1))
placements = [mesh_source.chosen_placement(scene).matrix.tolist()]
step("Next Fit")
for _ in range(FIT_COUNT):
    out.setdefault("next_results", []).append(sorted(bpy.ops.uplift.next_fit()))
    placements.append(mesh_source.chosen_placement(scene).matrix.tolist())
    out.setdefault("next_indices", []).append(props.fit_index)
out["placements"] = placements
out["overlay_after_cycle"] = bool(((images.read_rgba(props.fit_overlay_image)[..., 3] > 0) == shown).all())

# The same inputs for the CLI: the mesh through Blender's own PLY exporter, mask, camera.
activate(box)
bpy.ops.wm.ply_export(filepath=str(work / "box.ply"), export_selected_objects=True, apply_modifiers=True,
                      export_uv=False, export_normals=False, export_colors="NONE", export_triangulated_mesh=False,
                      ascii_format=False)
(work / "camera.json").write_text(scene_io.camera_of(scene).to_json())

step("Lift")
bpy.ops.ed.undo_push(message="fitted")
out["lift_result"] = sorted(bpy.ops.uplift.lift())

def lifted_world():
    root = scene_io.roots(scene)[0]
    g = scene_io.load_gaussians(root)
    return root, g.means.double().numpy() + np.array(root.location), g.base_colors.double().numpy()

root, means, colors = lifted_world()
np.save(work / "blender_means.npy", means)
np.save(work / "blender_colors.npy", colors)
out["lifted"] = len(means)
box = bpy.data.objects.get("Box")
out["source_kept_hidden"] = [box is not None, box.hide_get(), box.hide_render]
out["fit_cleared"] = [props.fit_mesh is None, props.fit_total, props.fit_overlay_image is None, props.mask_image is None]

step("undo")
bpy.ops.ed.undo_push(message="lifted")
bpy.ops.ed.undo()
scene = bpy.context.scene
props = scene.uplift
box = bpy.data.objects.get("Box")
out["after_undo"] = [len(scene_io.roots(scene)), box.hide_get(), props.fit_mesh.name if props.fit_mesh else None,
                     props.fit_total, props.fit_index]
out["lift_again"] = sorted(bpy.ops.uplift.lift())
_, again, _ = lifted_world()
out["lift_again_same"] = [len(again), float(np.abs(again - means).max()) if len(again) == len(means) else None]

# Use Mesh As Placed: a box lined up through the camera keeps its pose.
step("as placed")
scene.uplift.mask_image = images.packed_image("Uplift Selection Mask", (work / "mask.png").read_bytes(), ".png",
                                              colorspace="Non-Color")
posed = triangulated_box("Posed", MATRIX_POSED)
scene.uplift.use_mesh_as_placed = True
activate(posed)
out["placed_fit"] = [sorted(bpy.ops.uplift.fit_to_photo()), scene.uplift.fit_total,
                     mesh_source.chosen_placement(scene).is_identity()]
shown = images.read_rgba(scene.uplift.fit_overlay_image)[..., 3] > 0
out["placed_overlay_iou"] = float((shown & mask).sum() / max((shown | mask).sum(), 1))
out["refused"]["one fit"] = refusal(bpy.ops.uplift.next_fit)
fitted_at = posed.location.x
posed.location.x += 0.5
bpy.context.view_layer.update()
out["refused"]["moved since fit"] = refusal(bpy.ops.uplift.lift)
posed.location.x = fitted_at
bpy.context.view_layer.update()
out["placed_lift"] = sorted(bpy.ops.uplift.lift())
root = [r for r in scene_io.roots(scene)][-1]
world = scene_io.load_gaussians(root).means.double().numpy() + np.array(root.location)
sides = np.linalg.norm(np.array(MATRIX_POSED)[:3, :3], axis=0)
turn = np.array(MATRIX_POSED)[:3, :3] / sides
local = (world - np.array(MATRIX_POSED)[:3, 3]) @ turn           # in the box's frame, world units
depth_inside = (sides / 2 - np.abs(local)).min(1)                 # how far inside the nearest face
camera = scene_io.camera_of(scene)
_, z = camera.project(world)
pixel = z / (0.5 * (camera.K[0, 0] + camera.K[1, 1]))             # a photo pixel's size at each splat's depth
out["placed_on_box"] = [float(depth_inside.min()), float((depth_inside / pixel).max())]
out["posed_hidden"] = posed.hide_get()

# As Placed + Refine: a box lined up a little off (turned 8 degrees, moved about 3 px) snaps to the mask.
step("as placed, refined")
import json
import math
scene.uplift.mask_image = images.packed_image("Uplift Selection Mask", (work / "mask.png").read_bytes(), ".png",
                                              colorspace="Non-Color")
rough = triangulated_box("Rough", MATRIX_POSED)
rough.rotation_euler.z += math.radians(8.0)
rough.location.x += 0.08
bpy.context.view_layer.update()
activate(rough)
bpy.ops.uplift.fit_to_photo()
placed_iou = json.loads(scene.uplift.fit_hypotheses)[0]["iou"]
scene.uplift.use_mesh_refine = True
out["refined_result"] = sorted(bpy.ops.uplift.fit_to_photo())
out["refined_fit"] = [placed_iou, json.loads(scene.uplift.fit_hypotheses)[0]["iou"],
                      mesh_source.chosen_placement(scene).is_identity(), scene.uplift.fit_total]
scene.uplift.use_mesh_refine = False
bpy.data.objects.remove(rough)

# A fitted mesh deleted before Lift: refused, not lifted by other means.
scene.uplift.mask_image = images.packed_image("Uplift Selection Mask", (work / "mask.png").read_bytes(), ".png",
                                              colorspace="Non-Color")
doomed = triangulated_box("Doomed", MATRIX_POSED)
activate(doomed)
bpy.ops.uplift.fit_to_photo()
bpy.data.objects.remove(doomed)
out["refused"]["deleted since fit"] = refusal(bpy.ops.uplift.lift)
out["roots_at_end"] = len(scene_io.roots(scene))
emit()
"""


def box_matrix(R: np.ndarray, sides, location) -> list:
    M = np.eye(4)
    M[:3, :3] = R @ np.diag(sides)
    M[:3, 3] = location
    return M.tolist()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from mesh_scene import box_scene
    from uplift.core.image_io import save_png
    from uplift.core.transforms import axis_angle_matrix

    scene = box_scene()
    folder = tmp_path_factory.mktemp("mesh-photo")
    save_png(folder / "photo.png", scene.image)
    save_png(folder / "mask.png", scene.mask)
    # The box scene's pose: yaw 30 after pitch -15 about its centre (its 8 corners' mean).
    R = axis_angle_matrix(np.array([0, 0, 1.0]), np.radians(30)) @ axis_angle_matrix(np.array([1.0, 0, 0]), np.radians(-15))
    centre = np.asarray(scene.posed.vertices).mean(0)
    matrix_posed = box_matrix(R, [1.0, 0.6, 0.8], centre)
    corners = np.array(np.meshgrid([-0.5, 0.5], [-0.5, 0.5], [-0.5, 0.5])).reshape(3, -1).T
    expected = corners @ np.array(matrix_posed)[:3, :3].T + centre
    assert np.abs(np.sort(expected, 0) - np.sort(np.asarray(scene.posed.vertices), 0)).max() < 1e-9
    unposed = box_matrix(axis_angle_matrix(np.array([0.3, -0.5, 1.0]) / np.linalg.norm([0.3, -0.5, 1.0]),
                                           np.radians(70)), [2.0, 1.2, 1.6], [-3.0, 1.0, 2.0])
    return folder, matrix_posed, unposed, scene


@pytest.fixture(scope="module")
def flow(extension_zip, blender_python, inputs, tmp_path_factory):
    folder, matrix_posed, unposed, _ = inputs
    work = tmp_path_factory.mktemp("mesh-flow")
    for name in ("photo.png", "mask.png"):
        (work / name).write_bytes((folder / name).read_bytes())
    header = (f"WORK = {str(work)!r}\nFIT_COUNT = {FIT_COUNT}\nMATRIX_POSED = {matrix_posed!r}\n"
              f"MATRIX_UNPOSED = {unposed!r}\n")
    return run_blender(header + SCRIPT, extension_zip, work, blender_python), work


def test_refusals_are_one_line_without_traceback(flow):
    out, _ = flow
    refused = out["refused"]
    expected = {
        "no photo": "Load a photo first",
        "next without fit": "Fit a mesh to the photo first",
        "no mask": "Select the object in the photo first",
        "nothing selected": "Select the mesh to fit",
        "a camera": "is not a mesh",
        "empty mesh": "has no triangles",
        "zero area": "zero area",
        "one fit": "found only one fit",
        "moved since fit": "changed since Fit to Photo",
        "deleted since fit": "the fitted mesh is gone",
    }
    for case, words in expected.items():
        assert words in refused[case], (case, refused[case])
        assert "Traceback" not in refused[case] and "\n" not in refused[case].strip(), (case, refused[case])
    assert out["state_after_refusals"] == [True, 0]


def test_material_colours(flow):
    out, _ = flow
    low, high, expected = out["constant_color"]
    assert np.allclose(low, expected) and np.allclose(high, expected)
    count, shape, per_corner, textured, no_constant = out["texture"]
    assert count == 1 and shape == [4, 4, 3] and per_corner and textured == 12 and no_constant


def test_colour_attributes(flow):
    """Vertex paint reaches the lifter as sRGB per triangle corner, from a per-corner byte attribute
    (a byte per channel: 0.5 reads back as 128/255) and a per-point float one."""
    out, _ = flow
    shape, low, high, textures = out["corner_paint"]
    assert shape == [36, 3] and textures == 1  # 12 triangles x 3 corners; the image texture stays
    assert np.allclose(low, [1.0, 0.5, 0.0], atol=1 / 255) and np.allclose(high, [1.0, 0.5, 0.0], atol=1 / 255)
    assert out["point_paint"] == [True, True, True]


def test_fit_next_fit_and_lift(flow):
    out, _ = flow
    assert out["fit_result"] == ["FINISHED"] and out["fit_mesh"] == "Box"
    assert out["fit_total"] == FIT_COUNT and out["fit_index"] == 0
    assert out["overlay_layer"] and out["overlay_iou"] > 0.8  # the fitted silhouette over the photo
    assert out["next_results"] == [["FINISHED"]] * FIT_COUNT
    assert out["next_indices"] == [*range(1, FIT_COUNT), 0]  # cycles and wraps round
    placements = [np.array(p) for p in out["placements"]]
    assert all(np.abs(a - b).max() > 1e-3 for a, b in zip(placements[:-1], placements[1:FIT_COUNT]))
    assert np.array_equal(placements[0], placements[-1]) and out["overlay_after_cycle"]
    assert out["lift_result"] == ["FINISHED"] and out["lifted"] >= 2000
    assert out["source_kept_hidden"] == [True, True, True]
    assert out["fit_cleared"] == [True, 0, True, True]


def test_undo_of_lift_restores_the_fit(flow):
    out, _ = flow
    assert out["after_undo"] == [0, False, "Box", FIT_COUNT, 0]
    assert out["lift_again"] == ["FINISHED"]
    count, difference = out["lift_again_same"]
    assert count == out["lifted"] and difference < 1e-6


def test_refine_snaps_a_mesh_as_placed_to_the_photo(flow):
    out, _ = flow
    placed, refined, identity, total = out["refined_fit"]
    assert out["refined_result"] == ["FINISHED"] and total == 1 and not identity
    assert refined > max(0.9, placed + 0.05), (placed, refined)


def test_use_mesh_as_placed_keeps_its_pose(flow):
    out, _ = flow
    assert out["placed_fit"] == [["FINISHED"], 1, True]
    assert out["placed_overlay_iou"] > 0.85  # the box's triangles through the camera cover the mask
    assert out["placed_lift"] == ["FINISHED"] and out["posed_hidden"]
    assert out["roots_at_end"] == 2  # the lift of the box and of the posed box; nothing after the deletion
    # Every splat on the box's surface, none outside, moved inside by at most the lifter's inset
    # (mesh_lift.SILHOUETTE_INSET_PX = 0.5 photo px at the depth before the move, ~0.5 % from the
    # depth here; float32 storage: 1e-5 units).
    inside, most_pixels = out["placed_on_box"]
    assert inside > -1e-5 and most_pixels < 0.5 * 1.01, (inside, most_pixels)


def test_cli_gives_the_same_lifted_object(flow, inputs, blender_python, tmp_path):
    """`uplift lift --mesh` on Blender's own PLY export of the mesh, the same photo, mask, camera
    and number of fits gives the Gaussians Lift made in Blender: the same count, positions within
    1e-5 world units and colours within 1e-4. The box's pose is baked into its float32 vertices,
    so the exporter writes exactly what the operator reads; what remains is the lifted object's
    float32 storage relative to its root (measured 1.5e-8): 1e-5 is float32 rounding of
    coordinates ~4 with margin and 1/4000 of the splat spacing (1.25 photo pixels at the box's
    depth, ~0.03), so a different fit or sampling fails. (With the pose in the object's matrix instead,
    the exporter's float32 product differs by ~1e-7 and the placement's optimiser, stopping at
    its own tolerance, turns that into ~5e-4: the world matrix is checked by the as-placed test.)
    The CLI runs with the Blender line's own Python and packages (the fit of a symmetric box
    ranks near-equal hypotheses: another numpy or scipy may order them otherwise); every line
    installs trimesh, so a line without it fails here."""
    import os
    import subprocess

    from uplift.core.ply import read_ply
    from uplift_bpy_harness import REPO, package_shim

    _, work = flow
    done = subprocess.run([blender_python, "-m", "uplift.cli.main", "lift", str(work / "photo.png"), "--mask", str(work / "mask.png"),
                           "--camera", str(work / "camera.json"), "--mesh", str(work / "box.ply"), "--fit", str(FIT_COUNT),
                           "--device", "cpu", "-o", str(work / "cli.ply")], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(package_shim(tmp_path / "shim"))))
    assert done.returncode == 0, done.stdout + done.stderr
    g = read_ply(work / "cli.ply")
    blender_means = np.load(work / "blender_means.npy")
    assert len(g) == len(blender_means)
    assert np.abs(g.means.double().numpy() - blender_means).max() < 1e-5
    assert np.abs(g.base_colors.double().numpy() - np.load(work / "blender_colors.npy")).max() < 1e-4
