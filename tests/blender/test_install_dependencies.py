"""Install Dependencies in headless Blender, on every Blender line, against a local wheelhouse
the test builds (never the network): refused while online access is off, a pip failure
reported in one line, a successful install that imports and rejoins sys.path at the next
register, and an Extra Python Packages folder of another Python refused."""
from __future__ import annotations

import pytest

from uplift_bpy_harness import run_blender, tiny_wheel

pytestmark = pytest.mark.bpy

SCRIPT = r"""
from pathlib import Path
M = "bl_ext.user_default.uplift"
deps = importlib.import_module(M + ".blender.dependencies")
prefs = bpy.context.preferences.addons[M].preferences
system = bpy.context.preferences.system
# One more requirement that only the wheelhouse has: Blender's own packages stay untouched.
deps.REQUIREMENTS = deps.REQUIREMENTS + (deps.Requirement("upliftdeptest", "upliftdeptest", "this test"),)
out["missing_before"] = [r.module for r in deps.missing(refresh=True)]
target = deps.site_packages()
out["target"] = target
prefs.install_offline = True

def install():
    try:
        return [sorted(bpy.ops.uplift.install_dependencies()), ""]
    except RuntimeError as exc:
        return [["raised"], str(exc)]

system.use_online_access = False
prefs.install_find_links = WHEELS
out["offline"] = install()
out["installed_while_offline"] = Path(target, "upliftdeptest").exists()

system.use_online_access = True
prefs.install_find_links = EMPTY_WHEELS
out["pip_failure"] = install()

prefs.install_find_links = WHEELS
out["success"] = install()
import upliftdeptest
out["answer"] = upliftdeptest.ANSWER
out["missing_after"] = [r.module for r in deps.missing(refresh=True)]
out["again"] = install()  # nothing left to install

# The next start: the folder joins sys.path at register.
sys.path.remove(target)
bpy.ops.preferences.addon_disable(module=M)
bpy.ops.preferences.addon_enable(module=M)
out["rejoined"] = target in sys.path

deps = importlib.import_module(M + ".blender.dependencies")
prefs = bpy.context.preferences.addons[M].preferences
prefs.extra_python_path = OTHER_PYTHON
out["other_refused"] = [OTHER_PYTHON in sys.path, deps.extra_folder_problem["text"]]
prefs.extra_python_path = SAME_PYTHON
out["same_used"] = [SAME_PYTHON in sys.path, deps.extra_folder_problem["text"]]
out["python"] = f"{sys.version_info[0]}.{sys.version_info[1]}"
emit()
"""


def test_install_dependencies(extension_zip, blender_python, tmp_path):
    wheels, empty = tmp_path / "wheels", tmp_path / "no-wheels"
    tiny_wheel(wheels, "upliftdeptest", "ANSWER = 42\n")
    empty.mkdir()
    other = tmp_path / "venv311" / "lib" / "python3.9" / "site-packages"  # no supported Blender runs 3.9
    other.mkdir(parents=True)
    (other / "fake.cpython-39-x86_64-linux-gnu.so").write_bytes(b"")
    same = tmp_path / "plain-site-packages"
    (same / "purepkg").mkdir(parents=True)
    header = (f"WHEELS = {str(wheels)!r}\nEMPTY_WHEELS = {str(empty)!r}\nOTHER_PYTHON = {str(other)!r}\n"
              f"SAME_PYTHON = {str(same)!r}\n")
    out = run_blender(header + SCRIPT, extension_zip, tmp_path, blender_python)

    assert out["missing_before"] == ["upliftdeptest"]
    assert "/extensions/" in out["target"] and out["target"].endswith("site-packages")
    result, error = out["offline"]
    assert result == ["raised"] and "Allow Online Access" in error and "Preferences > System > Network" in error
    assert not out["installed_while_offline"]
    result, error = out["pip_failure"]
    assert result == ["raised"] and "Install failed: pip found no upliftdeptest" in error, error
    assert "Traceback" not in error and error.count("\n") <= 1
    assert out["success"] == [["FINISHED"], ""]
    assert out["answer"] == 42 and out["missing_after"] == []
    assert out["again"] == [["FINISHED"], ""]
    assert out["rejoined"]
    in_path, problem = out["other_refused"]
    assert not in_path and "Python 3.9" in problem and f"runs Python {out['python']}" in problem
    assert out["same_used"] == [True, ""]

