"""The quality bench's mesh-lifter rows: each scene's true mesh exported beside its renders (and
lined up with them), the proxy chosen by kind, the fixed random rotation, and a tiny run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


from bench.quality import PROXIES, canonical_rotation, proxy_mesh, proxy_shape  # noqa: E402
from bench.quality_scenes import MESH_FILE, OBJECT_NAMES  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_the_proxy_follows_the_kind_and_fills_the_true_box():
    shapes = {kind: proxy_shape(kind) for kind in OBJECT_NAMES}
    assert {k for k, s in shapes.items() if s == "cylinder"} == {"mug", "bottle", "lamp"}
    assert {k for k, s in shapes.items() if s == "sphere"} == {"globe", "monkey", "donut", "dumbbell"}
    assert shapes["crate"] == shapes["car"] == shapes["horse"] == shapes["house"] == "box"
    assert set(PROXIES) == {"cylinder", "sphere"}
    lo, hi = np.array([-0.6, -0.2, -0.35]), np.array([0.7, 0.25, 0.4])
    for kind in ("crate", "mug", "globe"):
        plo, phi = proxy_mesh(kind, lo, hi).bounds()
        np.testing.assert_allclose(plo, lo, atol=2e-3)  # a 48-sided cylinder's sides touch the box
        np.testing.assert_allclose(phi, hi, atol=2e-3)


def test_the_random_rotations_are_fixed_proper_and_differ_per_scene():
    rotations = [canonical_rotation(name) for name in OBJECT_NAMES]
    again = [canonical_rotation(name) for name in OBJECT_NAMES]
    for R, R2 in zip(rotations, again):
        assert np.array_equal(R, R2)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
    angles = [np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))) for R in rotations]
    assert len({round(a, 6) for a in angles}) == len(angles) and max(angles) > 90  # not near-identity throughout


@pytest.mark.bpy
@pytest.mark.slow
def test_the_true_mesh_lines_up_with_the_render_and_meshes_only_writes_the_same(tmp_path):
    """Render one tiny scene: its mesh.ply moved by pose A covers A's mask; --meshes-only alone
    (no renders) writes the same mesh."""
    from uplift.core.camera import Camera
    from uplift.core.image_io import load_rgba
    from uplift.core.mesh_surface import load_surface_mesh, silhouette

    common = ["--scenes", "house", "--backgrounds", "coffee"]
    done = subprocess.run([sys.executable, "-m", "bench.quality_scenes", "--out", str(tmp_path / "r"), "--size",
                           "96x72", "--samples", "2", *common], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    only = subprocess.run([sys.executable, "-m", "bench.quality_scenes", "--out", str(tmp_path / "m"), "--meshes-only",
                           *common], cwd=REPO, capture_output=True, text=True)
    assert only.returncode == 0, only.stderr[-2000:]
    assert not list((tmp_path / "m").rglob("*.png"))
    meta = json.loads((tmp_path / "r" / "scenes.json").read_text())
    for name in ("house",):
        mesh = load_surface_mesh(tmp_path / "r" / name / MESH_FILE)
        assert mesh.vertices.shape == load_surface_mesh(tmp_path / "m" / name / MESH_FILE).vertices.shape
        np.testing.assert_allclose(load_surface_mesh(tmp_path / "m" / name / MESH_FILE).vertices, mesh.vertices)
        A = np.array(meta["scenes"][name]["poses"]["A"])
        placed = mesh.with_vertices(mesh.vertices @ A[:3, :3].T + A[:3, 3])
        covered = silhouette(placed, Camera.from_dict(meta["scenes"][name]["camera"]))
        mask = load_rgba(tmp_path / "r" / name / "A.png")[..., 3] >= 128
        assert (covered & mask).sum() / (covered | mask).sum() > 0.9, name  # 0.99 at 480x360; the rim at 96 px


@pytest.mark.bpy
@pytest.mark.slow
def test_a_tiny_run_writes_mesh_lifter_rows_and_the_alignment_table(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench.quality", "--out", str(tmp_path), "--size", "96x72",
                           "--samples", "2", "--objects", "crate", "--edits", "yaw15",
                           "--lifter", "inflate,mesh-true,mesh-proxy"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "quality.json").read_text())
    half = report["settings"]["halves"]["crate"]
    rows = {label: per_half[half]["yaw15"] for label, per_half in report["edits"].items()}
    assert set(rows) == {"main (grabcut)", "main (mesh-true, grabcut)", "main (mesh-proxy, grabcut)"}
    for row in rows.values():
        assert 5 < row["psnr3d_mean"] <= 99 and 0 < row["iou3d_mean"] <= 1
    assert len({row["psnr2d_mean"] for row in rows.values()}) == 1  # one 2D row for every lifter
    true = report["alignment"]["mesh-true, grabcut"]
    assert [r["scene"] for r in true] == ["crate", "median"]
    assert 0 <= true[0]["rotation_top2_deg"] <= true[0]["rotation_deg"] <= 180 and 0 < true[0]["rest_iou"] <= 1
    assert true[0]["fit_s"] > 0 and (tmp_path / "scenes" / "crate" / MESH_FILE).is_file()
    assert "alignment, mesh-true" in (tmp_path / "quality.md").read_text()


def test_symmetries_are_the_quarter_turns_that_map_the_mesh_onto_itself():
    from bench.quality import mesh_symmetries, quarter_turns

    turns = quarter_turns()
    assert len(turns) == 24 and all(np.linalg.det(R) == pytest.approx(1) for R in turns)
    lo = np.array([-0.65, -0.45, -0.3])
    assert len(mesh_symmetries(proxy_mesh("crate", lo, -lo))) == 4     # a brick: the identity and 3 half-turns
    assert len(mesh_symmetries(proxy_mesh("crate", -np.ones(3), np.ones(3)))) == 24  # a cube: all of them
    assert len(mesh_symmetries(proxy_mesh("mug", lo, -lo))) == 4       # an elliptic cylinder
    wedge = proxy_mesh("crate", lo, -lo)
    v = wedge.vertices.copy()
    v[v[:, 0] > 0, 2] *= 0.3  # one end thinner (about z = 0): only the half-turn about x is left
    kept = mesh_symmetries(wedge.with_vertices(v))
    assert len(kept) == 2 and np.allclose(kept[1], np.diag([1.0, -1.0, -1.0]))
