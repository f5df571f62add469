"""The core, the services' client side, the pipeline and the CLI import with bpy absent."""
import pkgutil
import subprocess
import sys

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BPY_FREE_PACKAGES = ("uplift.core", "uplift.services", "uplift.pipeline", "uplift.cli")
# Server-side modules may import fastapi/torch, but still never bpy.


def test_bpy_free_packages_import_without_bpy():
    code = f"""
import sys, importlib, pkgutil
sys.modules['bpy'] = None  # any `import bpy` now raises ImportError
import uplift
names = []
for pkg_name in {BPY_FREE_PACKAGES!r}:
    pkg = importlib.import_module(pkg_name)
    names.append(pkg_name)
    for info in pkgutil.walk_packages(pkg.__path__, pkg_name + '.'):
        importlib.import_module(info.name)
        names.append(info.name)
assert 'uplift.core.arap' in names, names
print(len(names))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 10


def test_client_uses_only_the_standard_library():
    code = """
import sys
sys.modules['bpy'] = None
before = set(sys.modules)
import uplift.services.client, uplift.services.protocol, uplift.services.errors
third_party = sorted({m.split('.')[0] for m in set(sys.modules) - before}
                     - set(sys.stdlib_module_names) - {'uplift'})
print(','.join(third_party))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"client pulls in non-stdlib modules: {out.stdout}"
