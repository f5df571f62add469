"""Export Posed Splats round trip: a posed lifted object, its root moved, turned and scaled,
exported to .ply and .spz; Blender 5.3's own PLY importer (`bpy.ops.wm.ply_import`) reads the
.ply back as a Gaussian-splat point cloud with the same world positions, linear scales,
rotations and colours. The expected values come from Blender's own matrices (mathutils), not
from the exporter's maths. Blender's importer reads splats from 5.3 on, so the test runs on
the 5.3 line only.

Tolerances: float32 throughout (positions 1e-5 of the object's size; scales relative 1e-5;
unit quaternions 1e-5; colours 1e-6); the .spz copy within `splat_io.SPZ_TOLERANCE`."""
from __future__ import annotations

from pathlib import Path

import pytest

from blender_lines import bpy_version
from test_live_handler import PREAMBLE as LIVE_LOOP_PREAMBLE  # the live-loop modules, an empty scene
from uplift_bpy_harness import run_blender

pytestmark = pytest.mark.bpy

SCRIPT = LIVE_LOOP_PREAMBLE + r"""
from mathutils import Euler, Quaternion, Vector
splat_io = importlib.import_module(M + ".core.splat_io")
scene = bpy.context.scene

gen = torch.Generator().manual_seed(0)
n = 1200
means = torch.rand(n, 3, generator=gen) * torch.tensor([2.0, 0.4, 0.4]) + torch.tensor([0.0, 3.0, 0.0])
quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=1)
sh = torch.randn(n, 4, 3, generator=gen) * 0.5
g = Gaussians(means, quats, torch.rand(n, 3, generator=gen) * 2 - 5, torch.randn(n, generator=gen) * 2, sh)
settings = state.DeformSettings(24, 8, 4, 3, "cpu", "torch")
root = lifted.create_object(scene, g, None, settings)
lifted.create_controls(root, settings)
handlers.flush()
controls = scene_io.controls_of(root)
right = max(controls, key=lambda i: controls[i].location.x)
controls[right].location = Vector(controls[right].location) + Vector((0.0, 0.0, 0.5))  # a pose
root.location = Vector((1.0, -2.0, 0.5))
root.rotation_euler = Euler((0.3, -0.2, 1.1))
root.scale = Vector((1.5, 1.5, 1.5))
bpy.context.view_layer.update()
scene.uplift.active_root = root

paths = {ext: str(Path(WORK) / f"posed{ext}") for ext in (".ply", ".spz")}
out["results"] = {ext: sorted(bpy.ops.uplift.export_posed_splats(filepath=p)) for ext, p in paths.items()}
step("exported")

# Expected, from Blender's matrices: world = root.matrix_world @ the session's posed local splats.
session = state.get(root.uplift.uid)
local = session.deformed
world = root.matrix_world
loc, rot, scl = world.decompose()
exp_pos = np.array([world @ Vector(p) for p in local.means.double().tolist()])
exp_scale = local.log_scales.double().exp().numpy() * scl.x
exp_rot = np.array([tuple(rot @ Quaternion(q).normalized()) for q in local.quats.double().tolist()])
exp_dc = local.sh[:, 0].double().numpy()   # the DC term does not turn
exp_op = torch.sigmoid(local.opacity_logits.double()).numpy()
rest_pos = np.array([world @ Vector(p) for p in session.gaussians.means.double().tolist()])
out["pose_moved"] = float(np.abs(exp_pos - rest_pos).max())
size = float(np.ptp(exp_pos, axis=0).max())

def sign_matched(q, ref):
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return q * np.where((q * ref).sum(1, keepdims=True) < 0, -1.0, 1.0)

ours = splat_io.read_splat_file(paths[".ply"])
out["ply_ours"] = {
    "pos": float(np.abs(ours.means.double().numpy() - exp_pos).max()) / size,
    "scale": float(np.abs(ours.scales.double().numpy() / exp_scale - 1).max()),
    "rot": float(np.abs(sign_matched(ours.quats.double().numpy(), exp_rot) - exp_rot).max()),
}
spz = splat_io.read_splat_file(paths[".spz"])
tol = splat_io.SPZ_TOLERANCE
out["spz_within"] = {
    "means": float(np.abs(spz.means.double().numpy() - exp_pos).max()) <= tol["means"] + 1e-5 * size,
    "log_scales": float(np.abs(spz.log_scales.double().numpy() - np.log(exp_scale)).max()) <= tol["log_scales"] + 1e-5,
    "opacity": float(np.abs(spz.opacities.double().numpy() - exp_op).max()) <= tol["opacity"] + 1e-6,
}

if bpy.app.version >= (5, 3, 0):
    before = set(bpy.data.objects.keys())
    out["import"] = sorted(bpy.ops.wm.ply_import(filepath=paths[".ply"]))
    ob = bpy.data.objects[(set(bpy.data.objects.keys()) - before).pop()]
    pc = ob.data
    out["type"] = [ob.type, pc.type]
    def attribute(name, key, width):
        a = pc.attributes[name]
        values = np.zeros(len(a.data) * width, dtype=np.float32)
        a.data.foreach_get(key, values)
        return values.reshape(-1, width).astype(np.float64)
    position = attribute("position", "vector", 3)
    scale = attribute("scale", "vector", 3)
    rotation = attribute("rotation", "value", 4)
    base = attribute("radiance:base", "vector", 4)
    out["blender"] = {
        "count": len(position),
        "pos": float(np.abs(position - exp_pos).max()) / size,
        "scale": float(np.abs(scale / exp_scale - 1).max()),
        "rot": float(np.abs(sign_matched(rotation, exp_rot) - exp_rot).max()),
        "dc": float(np.abs(base[:, :3] - exp_dc).max()),
        "opacity": float(np.abs(base[:, 3] - exp_op).max()),
        "matrix_identity": float(np.abs(np.array(ob.matrix_world) - np.eye(4)).max()),
    }
emit()
"""


def test_export_posed_splats_round_trips_through_blenders_ply_importer(extension_zip, blender_python, tmp_path):
    version = bpy_version(Path(blender_python))
    if tuple(int(x) for x in version.split(".")) < (5, 3):
        pytest.skip(f"Blender {version} has no Gaussian-splat PLY importer (bpy.ops.wm.ply_import reads splats "
                    "as POINTCLOUD 'GAUSSIAN_SPLAT' from 5.3 on)")
    out = run_blender(f"WORK = {str(tmp_path)!r}\nfrom pathlib import Path\n" + SCRIPT, extension_zip, tmp_path,
                      blender_python)
    assert out["results"] == {".ply": ["FINISHED"], ".spz": ["FINISHED"]}
    assert out["pose_moved"] > 0.1  # the pose, not the rest, was exported
    assert all(v < 1e-5 for v in out["ply_ours"].values()), out["ply_ours"]
    assert all(out["spz_within"].values()), out["spz_within"]
    assert out["import"] == ["FINISHED"] and out["type"] == ["POINTCLOUD", "GAUSSIAN_SPLAT"]
    blender = out["blender"]
    assert blender["count"] == 1200 and blender["matrix_identity"] == 0.0
    assert blender["pos"] < 1e-5 and blender["scale"] < 1e-5 and blender["rot"] < 1e-5, blender
    assert blender["dc"] < 1e-6 and blender["opacity"] < 1e-6, blender
