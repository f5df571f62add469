"""Run Blender (the bpy module) in a fresh subprocess with the extension installed.

Each run gets its own BLENDER_USER_RESOURCES (so no real user preferences are read or
written), installs the zip that `scripts/build_extension.py` built (the same one
`make extension` ships) into the `user_default` extensions repository and enables it as
`bl_ext.user_default.uplift`. The script's last line of output `RESULT <json>` is returned.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULE = "bl_ext.user_default.uplift"

PREAMBLE = """
import json, sys
import bpy, addon_utils
ZIP = {zip!r}
result = bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
assert result == {{"FINISHED"}}, result
assert {module!r} in bpy.context.preferences.addons, "the extension did not enable"
import importlib
ext = importlib.import_module({module!r})
out = {{"blender_version": list(bpy.app.version[:2])}}
import time as _time
_t0 = _time.monotonic()
def step(name):
    print(f"[{{_time.monotonic() - _t0:7.1f}} s] {{name}}", file=sys.stderr, flush=True)
def emit():
    print("RESULT " + json.dumps(out))
"""


def compositor_nodes(blender_version) -> set[str]:
    """Node types `compositor.build` must create on that Blender: 5.0+ builds a node group with
    a Group Output and shader Mix nodes, 4.x the scene's own tree with a Composite node."""
    if tuple(blender_version) >= (5, 0):
        return {"CompositorNodeAlphaOver", "ShaderNodeMix", "NodeGroupOutput"}
    return {"CompositorNodeAlphaOver", "CompositorNodeMixRGB", "CompositorNodeComposite"}


def build_extension(out_dir: Path) -> Path:
    empty_vendor = out_dir / "no-vendor"
    empty_vendor.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "build_extension.py"), "--out", str(out_dir),
                           "--vendor", str(empty_vendor)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    return next(out_dir.glob("uplift-*.zip"))


def package_shim(folder: Path) -> Path:
    """A folder whose `uplift` is this checkout's addon/, for PYTHONPATH in an environment
    that did not install the package (the older Blender lines)."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "uplift"
    if not link.exists():
        link.symlink_to(REPO / "addon", target_is_directory=True)
    return folder


def write_demo_blend(keep: Path, blend: Path, python: str, workdir: Path, photo: Path | None = None,
                     control_count: int = 16) -> Path:
    """`demo_scene.write_demo_blend` over a `--keep` folder, as `make demo` calls it (the plain
    `uplift` package in a bpy process) with the interpreter of one Blender line."""
    code = (f"from uplift.blender.demo_scene import write_demo_blend\n"
            f"write_demo_blend({str(keep)!r}, {str(blend)!r}, photo_path={None if photo is None else str(photo)!r}, "
            f"control_count={control_count})\n")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, BLENDER_USER_RESOURCES=str(workdir / "res"),
                                   PYTHONPATH=str(package_shim(workdir / "shim"))))
    assert done.returncode == 0, done.stdout + done.stderr
    return blend


def run_blender(script: str, zip_path: Path, workdir: Path, python: str, timeout: float = 600,
                prefix: str = "") -> dict:
    """Run `script` (after the preamble; it sets `out` entries and calls `emit()`) with the
    interpreter `python` (one Blender line: see conftest's `blender_python`)."""
    resources = workdir / "blender-user"
    resources.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(resources), BLENDER_USER_CONFIG=str(resources / "config"),
               PYTHONUNBUFFERED="1")
    source = prefix + PREAMBLE.format(zip=str(zip_path), module=MODULE) + textwrap.dedent(script)
    path = workdir / "script.py"
    path.write_text(source)
    # Output goes to files (not pipes) so a long run can be followed with `tail -f workdir/stderr.txt`.
    with open(workdir / "stdout.txt", "w") as stdout, open(workdir / "stderr.txt", "w") as stderr:
        code = subprocess.run([python, str(path)], stdout=stdout, stderr=stderr, env=env, cwd=workdir,
                              timeout=timeout).returncode
    out_text, err_text = (workdir / "stdout.txt").read_text(), (workdir / "stderr.txt").read_text()
    lines = [line for line in out_text.splitlines() if line.startswith("RESULT ")]
    assert code == 0 and lines, (
        f"Blender script failed (exit {code})\n--- stdout ---\n{out_text[-6000:]}"
        f"\n--- stderr ---\n{err_text[-6000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def tiny_wheel(folder: Path, name: str, source: str) -> Path:
    """A real pure-Python wheel of one module `name` (its __init__ is `source`), built without
    pip or the network: what `make extension` bundles and Install Dependencies' tests install."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-0.1-py3-none-any.whl"
    info = f"{name}-0.1.dist-info"
    files = {
        f"{name}/__init__.py": source,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in files.items():
            zf.writestr(member, text)
        zf.writestr(f"{info}/RECORD", "".join(f"{m},,\n" for m in files) + f"{info}/RECORD,,\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`uplift serve` with the embedded backends on an ephemeral loopback port."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uplift.cli.main", "serve", "--port", str(self.port), "--device", "cpu"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uplift serve exited with {self.process.returncode}; see {log}")
            try:
                with urllib.request.urlopen(self.url + "/v1/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"uplift serve did not answer within 120 s; see {log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()
