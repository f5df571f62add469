"""Installing the extension's Python packages with Blender's own Python (standard library only).

The "Install Dependencies" button runs `sys.executable -m pip install --target FOLDER ...`,
so the packages match the Python and numpy of the Blender that runs it. This module is
the part that needs no Blender: the command, the environment, the one-line reading of
pip's failures, the check that a package folder was built for this Python, and
`PipRun`, which runs pip in a subprocess (off the UI thread) and can be cancelled.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ConfigError

TORCH_VARIANTS = ("cpu", "cuda")
# Where pip finds torch builds of each variant (added to the package index, not replacing it).
DEFAULT_TORCH_INDEX = {
    "cpu": "https://download.pytorch.org/whl/cpu",
    "cuda": "https://download.pytorch.org/whl/cu128",
}
WINDOWS_MAX_PATH = 260


@dataclass(frozen=True)
class InstallPlan:
    """What to install where, and from which sources."""
    target: Path                    # the extension's site-packages folder
    packages: tuple[str, ...]       # pip requirement strings
    torch_variant: str = "cpu"      # one of TORCH_VARIANTS
    torch_index_url: str = ""       # "" = DEFAULT_TORCH_INDEX[torch_variant]
    find_links: tuple[str, ...] = ()  # local folders (or URLs) of wheels
    no_index: bool = False          # only `find_links`: nothing is downloaded
    constraints: tuple[str, ...] = field(default_factory=tuple)  # e.g. "numpy==2.2.6": keep Blender's numpy

    def __post_init__(self):
        if self.torch_variant not in TORCH_VARIANTS:
            raise ConfigError(f"torch variant must be one of {', '.join(TORCH_VARIANTS)}, got {self.torch_variant!r}")
        if not self.packages:
            raise ConfigError("nothing to install: the package list is empty")
        if self.no_index and not self.find_links:
            raise ConfigError("installing without an index needs a folder of wheels (find-links)")


def requirement_name(requirement: str) -> str:
    """The project name of a requirement string: `torch>=2; sys_platform != "x"` -> torch."""
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return found.group(1).lower() if found else ""


def pip_command(plan: InstallPlan, python: str, constraints_file: Path | None = None) -> list[str]:
    """The pip command line for `plan`, run by `python` (Blender's `sys.executable`)."""
    command = [python, "-s", "-m", "pip", "install", "--target", str(plan.target), "--upgrade",
               "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    if plan.no_index:
        command.append("--no-index")
    elif "torch" in {requirement_name(p) for p in plan.packages}:
        command += ["--extra-index-url", plan.torch_index_url or DEFAULT_TORCH_INDEX[plan.torch_variant]]
    for link in plan.find_links:
        command += ["--find-links", link]
    if constraints_file is not None:
        command += ["--constraint", str(constraints_file)]
    return command + list(plan.packages)


def pip_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for pip and the import check: no user site-packages (a stray one
    would shadow what we install), no PYTHONPATH/PIP_* settings from the shell that
    started Blender."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.startswith("PIP_") and k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def verify_command(python: str, target: Path, modules: tuple[str, ...]) -> list[str]:
    """Import `modules` from `target` in a fresh interpreter (what the next Blender start sees)."""
    code = f"import sys; sys.path.append({str(target)!r}); " + "; ".join(f"import {m}" for m in modules)
    return [python, "-s", "-c", code]


_PATTERNS = (
    # (regex on pip's output, message builder); the first match wins
    (re.compile(r"No module named pip\b"),
     lambda m, t: "this Blender's Python has no pip (run its Python with `-m ensurepip`, or use a blender.org build)"),
    (re.compile(r"(Permission denied|\[Errno 13\]|\[WinError 5\]|Access is denied)", re.I),
     lambda m, t: f"the folder {t} is not writable (a Microsoft Store or system-wide Blender?): "
                  "set 'Extra Python Packages' to a folder you own and install there"),
    (re.compile(r"(Long Path support|\[Errno 2\] No such file or directory: '([^']{200,})')", re.I),
     lambda m, t: f"a path is longer than Windows allows ({WINDOWS_MAX_PATH} characters): enable long paths "
                  "in Windows, or install into a shorter folder"),
    (re.compile(r"No matching distribution found for (\S+)"),
     lambda m, t: f"pip found no {m.group(1)} for Python {sys.version_info[0]}.{sys.version_info[1]} on this "
                  "platform in the configured index or folder"),
    (re.compile(r"(Failed to establish a new connection|Temporary failure in name resolution|"
                r"Could not fetch URL|Network is unreachable)", re.I),
     lambda m, t: "pip could not reach the package index (check the network, or install from a folder of wheels)"),
    (re.compile(r"(No space left on device|\[Errno 28\])", re.I),
     lambda m, t: f"the disk holding {t} is full"),
)


def explain_failure(output: str, returncode: int, target: Path | str) -> str:
    """One readable line for a failed pip run."""
    for pattern, build in _PATTERNS:
        found = pattern.search(output)
        if found:
            return f"Install failed: {build(found, target)}"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    last = (errors or lines or [f"pip exited with status {returncode}"])[-1]
    return f"Install failed (pip exit {returncode}): {last.removeprefix('ERROR:').strip()}"


def progress_text(line: str) -> str | None:
    """A short status from one line of pip's output, or None for lines not worth showing."""
    line = line.strip()
    for prefix, verb in (("Collecting ", "Collecting"), ("Downloading ", "Downloading"),
                         ("Processing ", "Processing"), ("Installing collected packages:", "Installing")):
        if line.startswith(prefix):
            rest = line[len(prefix):].strip()
            name = rest.rsplit("/", 1)[-1].split(" ")[0] if verb != "Installing" else rest
            return f"{verb} {name}"[:120]
    if line.startswith("Successfully installed"):
        return "Installed"
    return None


_PYTHON_DIR = re.compile(r"^python(3)\.(\d+)$")
_EXTENSION_TAG = re.compile(r"\.(?:cpython-|cp)3(\d+)[^.]*\.(?:so|pyd)$")


def folder_python_version(folder: Path | str, max_depth: int = 3, max_entries: int = 20000) -> tuple[int, int] | None:
    """The Python version a package folder was built for, if it says: a `python3.X` part in
    its own path or its layout (`lib/python3.X/site-packages`), or compiled modules tagged
    cpython-3XY / cp3XY. None when nothing says (pure-Python packages fit any Python 3)."""
    folder = Path(folder)
    for part in folder.parts:
        found = _PYTHON_DIR.match(part)
        if found:
            return 3, int(found.group(2))
    seen = 0
    root_depth = len(folder.parts)
    for dirpath, dirnames, filenames in os.walk(folder):
        depth = len(Path(dirpath).parts) - root_depth
        for name in dirnames:
            found = _PYTHON_DIR.match(name)
            if found:
                return 3, int(found.group(2))
        for name in filenames:
            found = _EXTENSION_TAG.search(name)
            if found:
                return 3, int(found.group(1))
        seen += len(filenames) + len(dirnames)
        if depth >= max_depth or seen > max_entries:
            dirnames[:] = []
    return None


def folder_mismatch(folder: Path | str, python: tuple[int, int] = sys.version_info[:2]) -> str:
    """Why `folder` cannot be used by this Python ("" when it can)."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"'Extra Python Packages' folder {folder} does not exist"
    built = folder_python_version(folder)
    if built is not None and built != tuple(python):
        return (f"{folder} holds packages for Python {built[0]}.{built[1]}, but this Blender runs Python "
                f"{python[0]}.{python[1]}: use a Python {python[0]}.{python[1]} site-packages, or Install Dependencies")
    return ""


class PipRun:
    """One subprocess (pip, then the import check) read on a thread; poll `done`, `status`,
    `error` from the UI thread; `cancel()` stops it."""

    def __init__(self, plan: InstallPlan, python: str, verify_modules: tuple[str, ...]):
        self.plan, self.python, self.verify_modules = plan, python, verify_modules
        self.status = "Starting pip"
        self.error = ""           # one line when it failed
        self.cancelled = False
        self.output: list[str] = []
        self.done = threading.Event()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="uplift-pip")

    def start(self) -> "PipRun":
        self._thread.start()
        return self

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def _spawn(self, command: list[str]) -> subprocess.Popen | None:
        with self._lock:
            if self.cancelled:
                return None
            self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                             errors="replace", env=pip_environment(), stdin=subprocess.DEVNULL)
            return self._process

    def _run(self) -> None:
        try:
            self._install()
        except OSError as exc:  # the interpreter itself could not start, the folder could not be made...
            self.error = explain_failure(str(exc), -1, self.plan.target)
        except Exception as exc:  # noqa: BLE001 - a failure must never read as success
            self.error = f"Install Dependencies failed: {type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def _install(self) -> None:
        target = Path(self.plan.target)
        target.mkdir(parents=True, exist_ok=True)
        constraints = None
        if self.plan.constraints:
            constraints = target.parent / "uplift-constraints.txt"
            constraints.write_text("\n".join(self.plan.constraints) + "\n")
        process = self._spawn(pip_command(self.plan, self.python, constraints))
        if process is None:
            return
        for line in process.stdout:
            self.output.append(line.rstrip("\n"))
            self.status = progress_text(line) or self.status
        code = process.wait()
        if self.cancelled:
            self.error = "Install cancelled"
            return
        if code != 0:
            self.error = explain_failure("\n".join(self.output), code, target)
            return
        self.status = "Checking the installed packages import"
        check = self._spawn(verify_command(self.python, target, self.verify_modules))
        if check is None:
            return
        text, _ = check.communicate()
        if self.cancelled:
            self.error = "Install cancelled"
        elif check.returncode != 0:
            last = [line for line in text.splitlines() if line.strip()] or ["no output"]
            self.error = f"Installed, but importing failed in a fresh Python: {last[-1].strip()}"
        else:
            self.status = "Installed and verified"
