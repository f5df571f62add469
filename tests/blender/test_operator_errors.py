"""No exception leaves an Uplift operator as a traceback, on every Blender line.

For every registered Uplift operator, a call it makes early is made to raise a plain
RuntimeError (a bug, not an UpliftError); running the operator (execute and invoke) must
give one ERROR report naming it, CANCELLED, and leave the scene's data as it was.
"""
from __future__ import annotations

import pytest

from uplift_bpy_harness import run_blender

pytestmark = pytest.mark.bpy

# operator -> (module under the extension, attribute) that the operator calls before changing anything
BREAK = {
    "uplift.load_photo": ("blender.operators.load_photo", "UPLIFT_OT_load_photo._load"),
    "uplift.select_object": ("blender.operators.select_object", "UPLIFT_OT_select_object._next_prompt"),
    "uplift.lift": ("blender.jobs", "server_client"),
    "uplift.fit_to_photo": ("blender.mesh_source", "mesh_object"),
    "uplift.next_fit": ("blender.mesh_source", "stored_fits"),
    "uplift.create_controls": ("blender.lifted", "create_controls"),
    "uplift.pin_control": ("blender.operators.pin_control", "selected_controls"),
    "uplift.release_control": ("blender.operators.release_control", "set_pinned"),
    "uplift.fill_background": ("blender.scene_io", "photo_bytes"),
    "uplift.compose_export": ("blender.handlers", "flush"),
    "uplift.export_posed_splats": ("blender.scene_io", "active_root"),
    "uplift.test_connection": ("blender.jobs", "server_client"),
    "uplift.install_dependencies": ("blender.dependencies", "missing"),
    "uplift.cancel_install": ("blender.dependencies", "running_install"),
}

SCRIPT = r"""
M = "bl_ext.user_default.uplift"
blender = importlib.import_module(M + ".blender")
reporting = importlib.import_module(M + ".blender.reporting")
bpy.context.preferences.system.use_online_access = True
scene = bpy.context.scene
operators = [cls for cls in blender._classes() if issubclass(cls, bpy.types.Operator)]
out["registered"] = sorted(cls.bl_idname for cls in operators)
out["unguarded"] = sorted(cls.bl_idname for cls in operators if not reporting.is_guarded(cls))

def snapshot():
    return [sorted(bpy.data.objects.keys()), sorted(bpy.data.images.keys()), sorted(bpy.data.node_groups.keys()),
            sorted(bpy.data.meshes.keys()), scene.uplift.export_dir, scene.camera is None]

def boom(*args, **kwargs):
    raise RuntimeError("boom from the test")

out["runs"] = {}
for cls in operators:
    if cls.bl_idname not in BREAK:
        continue
    module_name, attribute = BREAK[cls.bl_idname]
    owner = importlib.import_module(M + "." + module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original, original_poll = owner.__dict__[name], cls.__dict__.get("poll")
    setattr(owner, name, boom)
    cls.poll = classmethod(lambda c, context: True)
    try:
        for mode in ("EXEC_DEFAULT", "INVOKE_DEFAULT"):
            before = snapshot()
            category, prefix, *rest = cls.bl_idname.partition(".")
            op = getattr(getattr(bpy.ops, category), rest[-1])
            try:
                result, error = sorted(op(mode)), ""
            except RuntimeError as exc:
                result, error = ["raised"], str(exc)
            out["runs"][cls.bl_idname + " " + mode] = [result, error, snapshot() == before]
    finally:
        setattr(owner, name, original)
        if original_poll is not None:
            cls.poll = original_poll
        else:
            del cls.poll
emit()
"""


def test_every_operator_reports_unexpected_errors(extension_zip, blender_python, tmp_path):
    out = run_blender(f"BREAK = {BREAK!r}\n" + SCRIPT, extension_zip, tmp_path, blender_python)
    assert out["unguarded"] == []
    assert sorted(BREAK) == out["registered"], "a new operator needs an entry in BREAK"
    assert len(out["runs"]) == 2 * len(BREAK)
    for name, (result, error, unchanged) in out["runs"].items():
        # Blender turns an ERROR report into RuntimeError("Error: ...") for scripts; an escaped
        # exception would read "Error: Python: Traceback ..." instead.
        assert result == ["raised"], (name, result)
        assert error.startswith("Error: unexpected RuntimeError: boom from the test"), (name, error)
        assert "Traceback" not in error, (name, error)
        assert unchanged, name
