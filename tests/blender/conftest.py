"""Fixtures for the extension's tests (they run Blender in subprocesses; see uplift_bpy_harness.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from blender_lines import LINES, require  # noqa: E402
from uplift_bpy_harness import Server, build_extension  # noqa: E402


@pytest.fixture(scope="module", params=LINES, ids=[line.id for line in LINES])
def blender_python(request) -> str:
    """The interpreter that runs the headless-Blender subprocesses, once per Blender line."""
    return require(request.param)


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> Path:
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("bpy is not installed")
    return build_extension(tmp_path_factory.mktemp("extension"))


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("server") / "serve.log")
    yield server
    server.stop()
