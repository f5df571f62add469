"""The Blender-line matrix itself: parsing UPLIFT_BLENDER_PYTHONS, reading a line's bpy
version, and a missing line skipping locally but failing in CI."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from blender_lines import BlenderLine, bpy_version, parse_lines, require
from uplift_bpy_harness import REPO

sys.path.insert(0, str(REPO / "scripts"))
import blender_env  # noqa: E402


def fake_venv(root: Path, bpy: str | None) -> Path:
    site = root / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    if bpy:
        (site / f"bpy-{bpy}.dist-info").mkdir()
    python = root / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    return python


def test_parse_relative_and_absolute_paths():
    lines = parse_lines("5.2=.venv/bin/python, 4.2=/opt/b42/bin/python")
    assert lines == [BlenderLine("5.2", REPO / ".venv" / "bin" / "python"), BlenderLine("4.2", Path("/opt/b42/bin/python"))]
    assert [line.id for line in lines] == ["blender5.2", "blender4.2"]
    with pytest.raises(pytest.UsageError, match="VERSION=PYTHON"):
        parse_lines("5.2:.venv/bin/python")


def test_bpy_version_comes_from_the_dist_info(tmp_path):
    assert bpy_version(fake_venv(tmp_path / "a", "4.2.23")) == "4.2"
    assert bpy_version(fake_venv(tmp_path / "b", None)) is None


@pytest.mark.parametrize("ci, outcome", [("", pytest.skip.Exception), ("true", pytest.fail.Exception)])
def test_a_missing_or_wrong_line_skips_locally_and_fails_in_ci(tmp_path, monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    python = fake_venv(tmp_path, "5.2.3")
    assert require(BlenderLine("5.2", python)) == str(python)
    with pytest.raises(outcome, match="does not exist"):
        require(BlenderLine("4.2", tmp_path / "nowhere" / "bin" / "python"))
    with pytest.raises(outcome, match="has bpy 5.2"):
        require(BlenderLine("4.2", python))


def test_blender_env_finds_the_python_inside_a_blender(tmp_path):
    blender = tmp_path / "blender-4.2.3-linux-x64"
    bundled = blender / "4.2" / "python" / "bin" / "python3.11"
    bundled.parent.mkdir(parents=True)
    bundled.write_text("")
    (blender / "blender").write_text("")
    assert blender_env.find_python(str(blender / "blender")) == bundled
    assert blender_env.find_python(str(blender)) == bundled
    assert blender_env.find_python(sys.executable) == Path(sys.executable)
    with pytest.raises(SystemExit, match="does not exist"):
        blender_env.find_python(str(tmp_path / "nothing"))


def test_blender_env_picks_the_requirements_of_a_line():
    assert blender_env.requirements_for((3, 11)) == "requirements-blender42.txt"
    assert blender_env.requirements_for((3, 13)) == "requirements-blender52.txt"  # 3.13 alone: the 5.2 LTS
    assert blender_env.requirements_for((3, 13), "5.3") == "requirements-blender53.txt"
    with pytest.raises(SystemExit, match="needs Python 3.13, not 3.11"):
        blender_env.requirements_for((3, 11), "5.3")
    with pytest.raises(SystemExit, match="no supported Blender line"):
        blender_env.requirements_for((3, 12))
    for _python, requirements in blender_env.LINES.values():
        assert (REPO / requirements).is_file()


def test_the_makefile_runs_all_three_lines_and_ci_expects_them(monkeypatch):
    """`make test` lists every line the README promises, and with UPLIFT_BLENDER_PYTHONS unset
    CI still expects the extra lines (a missing one fails instead of shrinking the matrix)."""
    import blender_lines

    makefile = (REPO / "Makefile").read_text()
    listed = next(line for line in makefile.splitlines() if line.startswith("BLENDER_LINES"))
    assert [entry.split("=")[0] for entry in listed.split(":=")[1].strip().split(",")] == ["5.2", "4.2", "5.3"]
    for version, folder in blender_lines.EXTRA_LINES.items():
        assert f"--out $(B{version.replace('.', '')})" in makefile and f"B{version.replace('.', '')}    := {folder}" \
            in makefile
    monkeypatch.delenv(blender_lines.LINES_VARIABLE, raising=False)
    monkeypatch.setenv("CI", "true")
    assert [line.version for line in blender_lines.configured_lines()][1:] == ["4.2", "5.3"]
    pins = {line.split("==")[1].split()[0] for req in ("requirements-blender52.txt", "requirements-blender53.txt")
            for line in (REPO / req).read_text().splitlines() if line.startswith("bpy==")}
    assert pins == {"5.2.3", "5.3.0"}


def test_a_shared_environment_puts_its_own_packages_first(tmp_path):
    """`--share` (how `make blender53` builds .venv-b53 over .venv): the new environment sees the
    base environment's packages, but its own shadow them, and the base is left as it was."""
    import subprocess

    base, layered = tmp_path / "base", tmp_path / "layered"
    for env in (base, layered):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    base_site = blender_env.site_packages(base / "bin" / "python")
    own_site = blender_env.site_packages(layered / "bin" / "python")
    for site, origin in ((base_site, "base"), (own_site, "own")):
        (site / "uplift_probe.py").write_text(f"ORIGIN = {origin!r}\n")
    (base_site / "uplift_only_in_base.py").write_text("ORIGIN = 'base'\n")

    version = blender_env.python_version(Path(sys.executable))
    assert blender_env.share_site(layered, base, version) == base_site.resolve()
    probe = subprocess.run([str(layered / "bin" / "python"), "-c",
                            "import uplift_probe, uplift_only_in_base; print(uplift_probe.ORIGIN, uplift_only_in_base.ORIGIN)"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.split() == ["own", "base"]
    assert sorted(p.name for p in base_site.iterdir()) == ["uplift_only_in_base.py", "uplift_probe.py"]

    with pytest.raises(SystemExit, match="no environment there"):
        blender_env.share_site(layered, tmp_path / "missing", version)
    with pytest.raises(SystemExit, match="runs Python"):
        blender_env.share_site(layered, base, (3, version[1] + 1))


def test_the_53_line_is_layered_over_the_main_environment():
    makefile = (REPO / "Makefile").read_text()
    assert "--line 5.3 --out $(B53) --share $(VENV)" in makefile
