"""Build the installable extension zip (`make extension`).

Stages blender_manifest.toml at the top of a copy of addon/ (plus any wheels found in
vendor/, declared in the staged manifest's `wheels` list), validates it with Blender's
own `blender_ext.py validate`, then builds with `blender_ext.py build`. The result is
`<out>/uplift-<version>.zip` with the manifest at the zip's top level next to
`__init__.py`, which Blender installs as the extension `uplift`.
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def blender_ext_tool() -> Path:
    """Blender's extension command-line tool, shipped inside the bpy package."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("build_extension: the bpy package is not installed (run `make venv`)")
    for root in spec.submodule_search_locations:
        found = sorted(Path(root).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    sys.exit("build_extension: blender_ext.py was not found inside the bpy package")


def stage(dest: Path, vendor: Path) -> list[str]:
    """Copy addon/ + manifest (+ wheels) into `dest`; returns the wheel paths declared."""
    shutil.copytree(REPO / "addon", dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    wheels = sorted(vendor.glob("*.whl")) if vendor.is_dir() else []
    manifest = (REPO / "blender_manifest.toml").read_text()
    declared = []
    if wheels:
        (dest / "wheels").mkdir()
        for wheel in wheels:
            shutil.copy2(wheel, dest / "wheels" / wheel.name)
            declared.append(f"./wheels/{wheel.name}")
        listing = "wheels = [\n" + "".join(f'  "{w}",\n' for w in declared) + "]\n"
        # Top-level keys must precede the first [table].
        head, sep, tail = manifest.partition("\n[")
        manifest = head + "\n" + listing + sep + tail
    (dest / "blender_manifest.toml").write_text(manifest)
    return declared


def run(tool: Path, *args: str) -> None:
    result = subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        sys.exit(f"build_extension: `blender_ext.py {args[0]}` failed")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="folder for the zip (default dist/)")
    parser.add_argument("--vendor", type=Path, default=REPO / "vendor", help="folder of wheels to bundle")
    args = parser.parse_args(argv)
    tool = blender_ext_tool()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="uplift-ext-") as tmp:
        staged = Path(tmp) / "uplift"
        wheels = stage(staged, args.vendor)
        run(tool, "validate", str(staged))
        import tomllib

        manifest = tomllib.loads((staged / "blender_manifest.toml").read_text())
        zip_path = args.out.resolve() / f"{manifest['id']}-{manifest['version']}.zip"
        run(tool, "build", "--source-dir", str(staged), "--output-filepath", str(zip_path))
    print(f"built {zip_path} ({len(wheels)} bundled wheels)")
    return zip_path


if __name__ == "__main__":
    main()
