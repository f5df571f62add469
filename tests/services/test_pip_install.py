"""Install Dependencies' Blender-free part: the pip command, reading pip's failures, the
Python-version check of a package folder, and real pip runs against a local wheelhouse."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from uplift.core.errors import ConfigError
from uplift.services.pip_install import (
    DEFAULT_TORCH_INDEX,
    InstallPlan,
    PipRun,
    explain_failure,
    folder_mismatch,
    folder_python_version,
    pip_command,
    pip_environment,
    progress_text,
    requirement_name,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "blender"))
from uplift_bpy_harness import tiny_wheel  # noqa: E402

HERE = sys.version_info[:2]
OTHER = (3, HERE[1] - 2)


def plan(tmp_path, **kw):
    return InstallPlan(**{"target": tmp_path / "site", "packages": ("torch", "pillow"), **kw})


def test_command_uses_the_given_python_target_and_torch_index(tmp_path):
    for variant in ("cpu", "cuda"):
        command = pip_command(plan(tmp_path, torch_variant=variant), "/blender/python")
        assert command[:5] == ["/blender/python", "-s", "-m", "pip", "install"]
        assert command[command.index("--target") + 1] == str(tmp_path / "site")
        assert command[command.index("--extra-index-url") + 1] == DEFAULT_TORCH_INDEX[variant]
        assert command[-2:] == ["torch", "pillow"]
    custom = pip_command(plan(tmp_path, torch_index_url="https://mirror.example/torch"), "py")
    assert custom[custom.index("--extra-index-url") + 1] == "https://mirror.example/torch"


def test_offline_plan_uses_only_the_folder_and_no_torch_index(tmp_path):
    command = pip_command(plan(tmp_path, find_links=("/wheels",), no_index=True), "py", tmp_path / "c.txt")
    assert "--no-index" in command and "--extra-index-url" not in command
    assert command[command.index("--find-links") + 1] == "/wheels"
    assert command[command.index("--constraint") + 1] == str(tmp_path / "c.txt")
    assert "--extra-index-url" not in pip_command(plan(tmp_path, packages=("scipy",)), "py")


def test_plan_validation(tmp_path):
    with pytest.raises(ConfigError, match="torch variant"):
        plan(tmp_path, torch_variant="rocm")
    with pytest.raises(ConfigError, match="empty"):
        plan(tmp_path, packages=())
    with pytest.raises(ConfigError, match="find-links"):
        plan(tmp_path, no_index=True)


def test_requirement_names():
    assert requirement_name("torch") == "torch"
    assert requirement_name("Torch>=2.1; sys_platform != 'darwin'") == "torch"
    assert requirement_name("opencv-python-headless<4.12") == "opencv-python-headless"
    assert requirement_name("pillow[extra]") == "pillow"


def test_environment_drops_user_site_and_shell_settings():
    env = pip_environment({"PATH": "/bin", "PYTHONPATH": "/x", "PIP_USER": "1", "PIP_INDEX_URL": "u"})
    assert env == {"PATH": "/bin", "PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("output, expected", [
    ("/usr/bin/python3.13: No module named pip\n", "has no pip"),
    ("ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied: '/opt/x'\n", "not writable"),
    ("ERROR: Could not install packages due to an OSError: [WinError 5] Access is denied: 'C:\\\\Program Files'\n",
     "not writable"),
    ("HINT: This error might have occurred since this system does not have Windows Long Path support enabled.\n",
     "longer than Windows allows"),
    ("ERROR: Could not find a version that satisfies the requirement torch (from versions: none)\n"
     "ERROR: No matching distribution found for torch\n", "pip found no torch"),
    ("WARNING: Retrying ... Failed to establish a new connection: [Errno 111]\n", "could not reach the package index"),
    ("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device\n", "is full"),
])
def test_known_failures_read_as_one_line(output, expected):
    line = explain_failure(output, 1, "/target")
    assert expected in line and "\n" not in line and line.startswith("Install failed")


def test_unknown_failure_reports_the_last_error_line():
    output = "Collecting x\nERROR: first problem\nsome detail\nERROR: the real problem\n  trailing\n"
    assert explain_failure(output, 2, "/t") == "Install failed (pip exit 2): the real problem"
    assert explain_failure("", 3, "/t") == "Install failed (pip exit 3): pip exited with status 3"


def test_progress_lines():
    assert progress_text("Collecting torch==2.14.1") == "Collecting torch==2.14.1"
    assert progress_text("  Downloading https://host/torch-2.14.1-cp313-none.whl (800 MB)") == \
        "Downloading torch-2.14.1-cp313-none.whl"
    assert progress_text("Installing collected packages: a, b") == "Installing a, b"
    assert progress_text("Successfully installed a-1 b-2") == "Installed"
    assert progress_text("  Using cached x") is None


def test_folder_version_from_path_layout_and_compiled_modules(tmp_path):
    assert folder_python_version(tmp_path / "venv" / "lib" / "python3.11" / "site-packages") == (3, 11)
    layout = tmp_path / "env"
    (layout / "lib" / "python3.9" / "site-packages").mkdir(parents=True)
    assert folder_python_version(layout) == (3, 9)
    compiled = tmp_path / "compiled"
    (compiled / "numpy" / "core").mkdir(parents=True)
    (compiled / "numpy" / "core" / "_multiarray_umath.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    assert folder_python_version(compiled) == (3, 11)
    windows = tmp_path / "win"
    (windows / "cv2").mkdir(parents=True)
    (windows / "cv2" / "cv2.cp312-win_amd64.pyd").write_bytes(b"")
    assert folder_python_version(windows) == (3, 12)
    pure = tmp_path / "pure"
    (pure / "pkg").mkdir(parents=True)
    (pure / "pkg" / "__init__.py").write_text("")
    assert folder_python_version(pure) is None


def test_mismatch_names_both_versions(tmp_path):
    other = tmp_path / "lib" / f"python{OTHER[0]}.{OTHER[1]}" / "site-packages"
    other.mkdir(parents=True)
    message = folder_mismatch(other, HERE)
    assert f"Python {OTHER[0]}.{OTHER[1]}" in message and f"runs Python {HERE[0]}.{HERE[1]}" in message
    same = tmp_path / "lib" / f"python{HERE[0]}.{HERE[1]}" / "site-packages"
    same.mkdir(parents=True)
    assert folder_mismatch(same, HERE) == ""
    assert "does not exist" in folder_mismatch(tmp_path / "nope", HERE)


@pytest.fixture
def wheelhouse(tmp_path):
    folder = tmp_path / "wheels"
    tiny_wheel(folder, "upliftpiptest", "ANSWER = 7\n")
    tiny_wheel(folder, "upliftbroken", "raise ImportError('broken on purpose')\n")
    return folder


def offline(tmp_path, wheelhouse, *packages):
    return InstallPlan(tmp_path / "site", packages, find_links=(str(wheelhouse),), no_index=True)


@pytest.mark.slow
def test_install_from_a_local_wheelhouse_and_verify(tmp_path, wheelhouse):
    run = PipRun(offline(tmp_path, wheelhouse, "upliftpiptest"), sys.executable, ("upliftpiptest",)).start()
    assert run.wait(120)
    assert run.error == "" and run.status == "Installed and verified", "\n".join(run.output)
    assert (tmp_path / "site" / "upliftpiptest" / "__init__.py").read_text() == "ANSWER = 7\n"


@pytest.mark.slow
def test_pip_failure_and_import_failure_are_one_line(tmp_path, wheelhouse):
    run = PipRun(offline(tmp_path, wheelhouse, "notinthewheelhouse"), sys.executable, ("x",)).start()
    assert run.wait(120)
    assert run.error.startswith("Install failed: pip found no notinthewheelhouse"), run.error
    run = PipRun(offline(tmp_path, wheelhouse, "upliftbroken"), sys.executable, ("upliftbroken",)).start()
    assert run.wait(120)
    assert run.error == "Installed, but importing failed in a fresh Python: ImportError: broken on purpose"


def test_missing_interpreter_is_reported_not_raised(tmp_path, wheelhouse):
    run = PipRun(offline(tmp_path, wheelhouse, "upliftpiptest"), str(tmp_path / "no-python"), ("x",)).start()
    assert run.wait(30)
    assert run.error.startswith("Install failed") and "no-python" in run.error


def test_cancel_stops_pip(tmp_path, wheelhouse):
    run = PipRun(offline(tmp_path, wheelhouse, "upliftpiptest"), sys.executable, ("upliftpiptest",))
    run.cancel()  # before it starts: nothing runs
    run.start()
    assert run.wait(30)
    assert run.cancelled and run.output == [] and not (tmp_path / "site" / "upliftpiptest").exists()


def test_cancel_stops_a_running_pip(tmp_path, wheelhouse):
    slow = tmp_path / "slow-python"
    slow.write_text("#!/bin/sh\necho Collecting something\nexec sleep 60\n")
    slow.chmod(0o755)
    run = PipRun(offline(tmp_path, wheelhouse, "upliftpiptest"), str(slow), ("x",)).start()
    while run.status != "Collecting something" and not run.done.is_set():
        run.wait(0.05)
    run.cancel()
    assert run.wait(10), "pip was not stopped"
    assert run.error == "Install cancelled"
