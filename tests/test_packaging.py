"""pyproject's explicit package list matches the folders under addon/."""
import tomllib

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        "uplift" + ("." + ".".join(p.parent.relative_to(REPO / "addon").parts) if p.parent != REPO / "addon" else "")
        for p in (REPO / "addon").rglob("__init__.py")
    }
    assert listed == found
