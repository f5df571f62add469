"""The Blender lines the extension's tests run on.

Tests that take `blender_python` run once per Blender line: each line is a Python
environment with its own `bpy` (the main `.venv` follows the current LTS, 5.2; `.venv-b42` the
4.2 LTS; `.venv-b53` the newest release, 5.3, with native Gaussian splats).
`UPLIFT_BLENDER_PYTHONS="5.2=.venv/bin/python,4.2=.venv-b42/bin/python,5.3=.venv-b53/bin/python"`
lists them (paths relative to the repository; `make test` sets it); unset, the main interpreter
and the extra lines' environments that are present. A line that is not there is skipped, except in CI (`CI=true`),
where it fails: the matrix must not shrink silently.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from uplift_bpy_harness import REPO

LINES_VARIABLE = "UPLIFT_BLENDER_PYTHONS"
EXTRA_LINES = {"4.2": ".venv-b42", "5.3": ".venv-b53"}  # beside the main .venv's line (Makefile: B42, B53)


@dataclass(frozen=True)
class BlenderLine:
    version: str   # "major.minor" of the bpy this line must have
    python: Path   # the interpreter whose environment holds that bpy

    @property
    def id(self) -> str:
        return f"blender{self.version}"


def bpy_version(python: Path) -> str | None:
    """major.minor of the bpy installed in `python`'s environment, read from its dist-info
    (importing bpy to ask would take seconds per interpreter)."""
    venv = python.parent.parent
    for info in sorted(venv.glob("lib/python3.*/site-packages/bpy-*.dist-info")):
        return ".".join(info.name[len("bpy-"):].split("-")[0].split(".")[:2])
    return None


def parse_lines(text: str) -> list[BlenderLine]:
    lines = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        version, sep, path = entry.partition("=")
        if not sep or not version or not path:
            raise pytest.UsageError(f"{LINES_VARIABLE}: expected VERSION=PYTHON entries, got {entry!r}")
        lines.append(BlenderLine(version.strip(), (REPO / path.strip()) if not Path(path.strip()).is_absolute()
                                 else Path(path.strip())))
    return lines


def configured_lines() -> list[BlenderLine]:
    if os.environ.get(LINES_VARIABLE):
        return parse_lines(os.environ[LINES_VARIABLE])
    main = Path(os.path.abspath(sys.executable))
    lines = [BlenderLine(bpy_version(main) or "main", main)]
    for version, folder in EXTRA_LINES.items():
        python = REPO / folder / "bin" / "python"
        if python.exists() or os.environ.get("CI") == "true":
            lines.append(BlenderLine(version, python))
    return lines


LINES = configured_lines()
MAIN_PYTHON = Path(os.path.abspath(sys.executable))


def require(line: BlenderLine) -> str:
    """The interpreter of `line`; skips (fails in CI) when the line is not installed as listed."""
    found = bpy_version(line.python) if line.python.exists() else None
    if found is None or (line.version != "main" and found != line.version):
        problem = (f"Blender {line.version} line not available: {line.python} "
                   + ("has no bpy" if line.python.exists() and found is None else
                      f"has bpy {found}" if found else "does not exist")
                   + " (make blender-env, or set " + LINES_VARIABLE + ")")
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return str(line.python)
