"""The extension as Blender installs it: manifest, zip, enable/disable cycles, no torch."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from uplift_bpy_harness import REPO, run_blender, tiny_wheel

pytestmark = pytest.mark.bpy


def blender_ext_tool(python: str) -> Path:
    """The extension command-line tool shipped inside the bpy of `python`'s environment."""
    venv = Path(python).parent.parent
    found = sorted(venv.glob("lib/python3.*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    assert found, f"blender_ext.py not found in the bpy under {venv}"
    return found[-1]


def test_manifest_validates_with_blenders_tool(extension_zip, blender_python):
    staged = extension_zip.parent / "validate"
    staged.mkdir(exist_ok=True)
    (staged / "blender_manifest.toml").write_text((REPO / "blender_manifest.toml").read_text())
    (staged / "__init__.py").write_text("")
    done = subprocess.run([blender_python, str(blender_ext_tool(blender_python)), "validate", str(staged)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zip_has_the_manifest_beside_the_package(extension_zip):
    names = set(zipfile.ZipFile(extension_zip).namelist())
    assert "blender_manifest.toml" in names
    assert "__init__.py" in names
    assert "blender/operators/lift.py" in names
    assert "core/viewport_math.py" in names
    assert not any("__pycache__" in n for n in names)


def test_enable_disable_twice_leaves_nothing_behind(extension_zip, blender_python, tmp_path):
    out = run_blender("""
        import addon_utils
        def ours(handlers):
            return [f for f in handlers if getattr(f, "__module__", "").startswith("bl_ext.user_default.uplift")]
        out["handlers_enabled"] = len(ours(bpy.app.handlers.depsgraph_update_post))
        out["load_post_enabled"] = len(ours(bpy.app.handlers.load_post))
        out["cycles"] = []
        for cycle in range(2):
            bpy.ops.preferences.addon_disable(module="bl_ext.user_default.uplift")
            off = {
                "enabled": "bl_ext.user_default.uplift" in bpy.context.preferences.addons,
                "depsgraph": len(ours(bpy.app.handlers.depsgraph_update_post)),
                "load_post": len(ours(bpy.app.handlers.load_post)),
                "undo_post": len(ours(bpy.app.handlers.undo_post)),
                "scene_prop": hasattr(bpy.types.Scene, "uplift"),
                "operator": hasattr(bpy.types, "UPLIFT_OT_lift"),
                "panel": hasattr(bpy.types, "UPLIFT_PT_main"),
            }
            bpy.ops.preferences.addon_enable(module="bl_ext.user_default.uplift")
            on = {
                "enabled": "bl_ext.user_default.uplift" in bpy.context.preferences.addons,
                "depsgraph": len(ours(bpy.app.handlers.depsgraph_update_post)),
                "scene_prop": hasattr(bpy.types.Scene, "uplift"),
                "operator": hasattr(bpy.types, "UPLIFT_OT_lift"),
            }
            out["cycles"].append({"off": off, "on": on})
        prefs = bpy.context.preferences.addons["bl_ext.user_default.uplift"].preferences
        out["defaults"] = [prefs.control_count, prefs.arap_iterations, prefs.server_url]
        emit()
    """, extension_zip, tmp_path, blender_python)
    assert out["handlers_enabled"] == 1 and out["load_post_enabled"] == 1
    for cycle in out["cycles"]:
        assert cycle["off"] == {"enabled": False, "depsgraph": 0, "load_post": 0, "undo_post": 0,
                                "scene_prop": False, "operator": False, "panel": False}
        assert cycle["on"] == {"enabled": True, "depsgraph": 1, "scene_prop": True, "operator": True}
    assert out["defaults"][:2] == [512, 3]


def test_registers_without_torch_and_says_what_is_missing(extension_zip, blender_python, tmp_path):
    script = """
        ext_prefs = importlib.import_module("bl_ext.user_default.uplift.blender.dependencies")
        out["missing"] = [r.package for r in ext_prefs.missing(refresh=True)]
        out["message"] = ext_prefs.missing_message()
        out["hint"] = ext_prefs.install_hint()
        out["lift_poll"] = bpy.ops.uplift.lift.poll()
        try:
            bpy.ops.uplift.create_controls()
            out["error"] = ""
        except RuntimeError as exc:
            out["error"] = str(exc)
        out["torch_imported"] = sys.modules.get("torch") is not None
        emit()
    """
    # Block torch before anything imports it: the preamble then installs and enables the extension.
    blocked = "import sys\nsys.modules['torch'] = None\n"
    out = run_blender(script, extension_zip, tmp_path, blender_python, prefix=blocked)
    assert out["missing"] == ["torch"]
    assert "torch" in out["message"] and "preferences" in out["message"]
    assert "pip install" in out["hint"] and '"torch"' in out["hint"]
    assert out["lift_poll"] is False
    assert "torch" in out["error"]
    assert out["torch_imported"] is False


def test_vendor_wheels_are_bundled_and_installed(blender_python, tmp_path):
    wheel = tiny_wheel(tmp_path / "vendor", "upliftvendortest", "ANSWER = 42\n")
    out_dir = tmp_path / "dist"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "build_extension.py"), "--out", str(out_dir),
                           "--vendor", str(wheel.parent)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    zip_path = next(out_dir.glob("uplift-*.zip"))
    with zipfile.ZipFile(zip_path) as zf:
        assert f"wheels/{wheel.name}" in zf.namelist()
        assert f'"./wheels/{wheel.name}"' in zf.read("blender_manifest.toml").decode()
    out = run_blender("""
        import upliftvendortest
        out["answer"] = upliftvendortest.ANSWER
        emit()
    """, zip_path, tmp_path, blender_python)
    assert out["answer"] == 42
