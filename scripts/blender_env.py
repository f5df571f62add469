"""Build a Python environment matching one Blender line (`make blender-env`, and the extra
lines `make test` runs the Blender tests on).

    python scripts/blender_env.py --python 3.11 [--out .venv-b42]
    python scripts/blender_env.py --python 3.13 --line 5.3 [--out .venv-b53] [--share .venv]
    python scripts/blender_env.py --python /path/to/python3.13
    python scripts/blender_env.py --python /path/to/blender      # uses the Python inside that Blender

The Python's version picks the line: 3.11 -> 4.2 LTS (requirements-blender42.txt, numpy<2),
3.13 -> 5.2 LTS (requirements-blender52.txt, numpy 2) unless `--line 5.3` asks for
requirements-blender53.txt (bpy 5.3, native Gaussian splats). Standard library only.

`--share VENV` layers the new environment over another one on the same Python: a .pth file puts
VENV's site-packages after the environment's own, so pip installs only what differs (bpy) and the
several GB of torch and its CUDA libraries exist once on disk. The environment's own packages come
first on sys.path, so its bpy shadows VENV's; pip leaves VENV untouched ("outside environment").
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Blender line -> (its Python, the requirements of its environment).
LINES = {"4.2": ((3, 11), "requirements-blender42.txt"), "5.2": ((3, 13), "requirements-blender52.txt"),
         "5.3": ((3, 13), "requirements-blender53.txt")}
DEFAULT_LINE = {(3, 11): "4.2", (3, 13): "5.2"}  # a Python's line unless --line says otherwise: the LTS


def find_python(spec: str) -> Path:
    """An interpreter from a version ("3.11"), an interpreter path, or a Blender executable/folder."""
    if re.fullmatch(r"3\.\d+", spec):
        found = sorted((Path.home() / ".pyenv" / "versions").glob(f"{spec}.*/bin/python"))
        on_path = shutil.which(f"python{spec}")
        if found or on_path:
            return found[-1] if found else Path(on_path)
        sys.exit(f"blender_env: no Python {spec} found (looked in ~/.pyenv/versions and PATH)")
    path = Path(spec).expanduser()
    if not path.exists():
        sys.exit(f"blender_env: {path} does not exist")
    folder = path if path.is_dir() else path.parent
    bundled = sorted(folder.glob("[0-9].[0-9]*/python/bin/python3*"))  # <blender>/<version>/python/bin/
    if bundled and (path.is_dir() or path.name.startswith("blender")):
        return bundled[-1]
    if path.is_dir():
        sys.exit(f"blender_env: no Blender Python under {path}")
    return path


def python_version(python: Path) -> tuple[int, int]:
    out = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"blender_env: {python} does not run: {out.stderr.strip().splitlines()[-1:]}")
    major, minor = map(int, out.stdout.split())
    return major, minor


def requirements_for(version: tuple[int, int], line: str | None = None) -> str:
    """The requirements file of Blender `line` (default: the LTS line of that Python), checking
    that the line runs on a Python of `version`."""
    line = line or DEFAULT_LINE.get(version)
    if line is None:
        supported = ", ".join(f"{a}.{b}" for a, b in DEFAULT_LINE)
        sys.exit(f"blender_env: Python {version[0]}.{version[1]} matches no supported Blender line ({supported})")
    if line not in LINES:
        sys.exit(f"blender_env: no Blender line {line} (supported: {', '.join(LINES)})")
    needed, requirements = LINES[line]
    if needed != version:
        sys.exit(f"blender_env: Blender {line} needs Python {needed[0]}.{needed[1]}, "
                 f"not {version[0]}.{version[1]}")
    return requirements


SHARED_PTH = "uplift_shared_site.pth"


def site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def share_site(out: Path, base: Path, version: tuple[int, int]) -> Path:
    """Put the site-packages of environment `base` after `out`'s own (see the module's doc)."""
    base_python = base / "bin" / "python"
    if not base_python.exists():
        sys.exit(f"blender_env: --share {base}: no environment there (build it first)")
    if python_version(base_python) != version:
        sys.exit(f"blender_env: --share {base} runs Python {'.'.join(map(str, python_version(base_python)))}, "
                 f"not {version[0]}.{version[1]}")
    shared = site_packages(base_python).resolve()
    (site_packages(out / "bin" / "python") / SHARED_PTH).write_text(f"{shared}\n")
    return shared


def build(python: Path, out: Path, line: str | None = None, share: Path | None = None) -> float:
    version = python_version(python)
    requirements = requirements_for(version, line)
    start = time.monotonic()
    if not (out / "bin" / "python").exists():
        subprocess.run([str(python), "-m", "venv", str(out)], check=True)
    if share is not None:
        share_site(out, share, version)
    subprocess.run([str(out / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                    "-r", str(REPO / requirements)], check=True, env=dict(os.environ, PYTHONNOUSERSITE="1"))
    (out / ".installed").write_text(requirements + "\n")
    return time.monotonic() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="3.11, 3.13, a Python interpreter or a Blender")
    parser.add_argument("--line", choices=sorted(LINES), help="Blender line (default: that Python's LTS line)")
    parser.add_argument("--out", type=Path, help="environment folder (default .venv-blenderX.Y)")
    parser.add_argument("--share", type=Path, metavar="VENV",
                        help="reuse the packages of this environment (same Python); install only what differs")
    args = parser.parse_args(argv)
    python = find_python(args.python)
    major, minor = python_version(python)
    requirements = requirements_for((major, minor), args.line)
    out = args.out or REPO / (f".venv-blender{args.line}" if args.line else f".venv-blender{major}.{minor}")
    seconds = build(python, out, args.line, args.share)
    print(f"blender_env: {out} ready (Python {major}.{minor}, {requirements}) in {seconds:.0f} s")


if __name__ == "__main__":
    main()
