"""Blender 5.3's native Gaussian splats (blender/native_splats.py): what a live update costs.

Rows, at 300k splats: the main thread's write of a pose into the native cloud ('position',
'rotation', 'scale' by `foreach_set`, aim <= 10 ms), the worker's making of those arrays from
the posed Gaussians, and Blender's own depsgraph evaluation of the changed cloud (it runs
after every edit whatever wrote it; reported, not ours). Needs bpy 5.3: the main environment
follows the 5.2 LTS, so the rows run in the 5.3 line's interpreter (`.venv-b53`, `make test`
builds it) in a subprocess, and are skipped without it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import Row

SECTION = "native"
COUNT = 300_000
REPO = Path(__file__).resolve().parents[1]
NAMES = (f"native splats: write a pose, {COUNT // 1000}k (main thread)",
         f"native splats: pose arrays, {COUNT // 1000}k (worker)",
         f"native splats: depsgraph update after a write, {COUNT // 1000}k (Blender)")

MEASURE = r"""
import json, statistics, sys, time
import bpy
sys.path.insert(0, REPO)
import uplift
uplift.register()
from bench.render import object_scene
from uplift.blender import native_splats
from uplift.core.native_splats import posed_attributes
from uplift.core.transforms import Similarity, apply_similarity
import numpy as np

def median_ms(fn, repeats, clock=time.perf_counter):
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times) * 1e3

rest = object_scene(COUNT)
posed = apply_similarity(rest, Similarity(np.eye(3), np.array([0.0, 0.0, 0.1]), 1.1))
root = bpy.data.objects.new("root", None)
bpy.context.scene.collection.objects.link(root)
ob = native_splats.create(root, rest, bpy.context.scene.collection)
arrays = posed_attributes(posed)
write = median_ms(lambda: native_splats.write_pose(ob, arrays), 15)
write_cpu = median_ms(lambda: native_splats.write_pose(ob, arrays), 15, time.process_time)
make = median_ms(lambda: posed_attributes(posed), 7)
def write_and_evaluate():
    native_splats.write_pose(ob, arrays)
    bpy.context.view_layer.update()
evaluated = median_ms(write_and_evaluate, 7) - write
print("RESULT " + json.dumps([write, write_cpu, make, evaluated]))
"""


def _python() -> Path | None:
    """An interpreter with bpy 5.3+: this one, else the 5.3 line's environment."""
    try:
        import bpy

        if tuple(bpy.app.version) >= (5, 3, 0):
            return Path(sys.executable)
    except ImportError:
        pass
    line = REPO / ".venv-b53" / "bin" / "python"
    return line if line.exists() else None


def rows() -> list[Row]:
    python = _python()
    if python is None:
        return [Row(SECTION, name, None, "ms", "needs bpy 5.3 (make blender53)") for name in NAMES]
    code = MEASURE.replace("REPO", repr(str(REPO))).replace("COUNT", str(COUNT))
    with tempfile.TemporaryDirectory() as shim:  # this checkout's addon/ as the package `uplift`
        (Path(shim) / "uplift").symlink_to(REPO / "addon", target_is_directory=True)
        env = dict(os.environ, PYTHONPATH=shim)
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                              timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [Row(SECTION, name, None, "ms", f"failed: {reason}") for name in NAMES]
    write, write_cpu, make, evaluated = json.loads(lines[-1][len("RESULT "):])
    load = f"load {os.getloadavg()[0]:.1f}, {python}"
    return [Row(SECTION, NAMES[0], write, "ms", f"3 x foreach_set + update_tag, median of 15 (CPU {write_cpu:.1f} ms); aim <= 10 ms; {load}"),
            Row(SECTION, NAMES[1], make, "ms", "posed_attributes: normalise, exp, float32 copies; median of 7"),
            Row(SECTION, NAMES[2], evaluated, "ms", "view_layer.update() after the write, minus the write; median of 7")]
