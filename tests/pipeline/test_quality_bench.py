"""The quality benchmark's own parts: the 2D baseline's similarity fit, the metrics, and
ground-truth scenes whose edited pose means what `uplift edit` means."""
from __future__ import annotations

from pathlib import Path

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from bench.quality import fit_mask_similarity, iou, psnr, warp_cutout

REPO = Path(__file__).resolve().parents[2]


def ellipse_mask(h=120, w=160, center=(70, 60), axes=(40, 18), angle=0.0) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, center, axes, angle, 0, 360, 1, -1)
    return m > 0


@pytest.mark.parametrize("angle, scale, shift", [(0, 1.0, (0, 0)), (25, 1.2, (12, -7)), (-70, 0.8, (-10, 15))])
def test_similarity_fit_recovers_a_known_warp(angle, scale, shift):
    a = ellipse_mask()
    M = cv2.getRotationMatrix2D((70.5, 60.5), angle, scale)
    M[:, 2] += shift
    b = cv2.warpAffine(a.astype(np.uint8), M, (160, 120), flags=cv2.INTER_NEAREST) > 0
    fitted = fit_mask_similarity(a, b)
    warped = cv2.warpAffine(a.astype(np.uint8), fitted, (160, 120), flags=cv2.INTER_NEAREST) > 0
    assert iou(warped, b) > 0.95


def test_warp_cutout_keeps_colour_and_carries_the_mask():
    image = np.zeros((120, 160, 3), np.uint8)
    image[...] = (200, 100, 50)
    mask = ellipse_mask()
    M = np.array([[1.0, 0, 10], [0, 1.0, 5]])
    rgba = warp_cutout(image, mask, M)
    inside = rgba[..., 3] > 0.99
    assert np.allclose(rgba[inside, :3] * 255, (200, 100, 50), atol=0.5)  # no dark fringe from premultiplying
    assert iou(rgba[..., 3] > 0.5, np.roll(np.roll(mask, 5, 0), 10, 1)) > 0.97


def test_metrics():
    a = np.full((10, 10, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0] = 110
    region = np.ones((10, 10), bool)
    assert psnr(a, a, region) == 99.0
    assert psnr(a, b, region) == pytest.approx(10 * np.log10(255 ** 2 / (100 * 3 / 300)), rel=1e-6)
    assert iou(region, region) == 1.0 and iou(region, ~region) == 0.0


@pytest.mark.bpy
@pytest.mark.slow
def test_ground_truth_translation_moves_the_object_as_the_pipeline_means_it(tmp_path):
    """Render one object at a tiny size and check that pose B of the 'translate' edit puts
    the true centre where camera_edit puts it (so ground truth and pipeline agree)."""
    from uplift.core.camera import Camera
    from uplift.core.image_io import load_rgba

    from bench.quality_scenes import EDITS

    done = subprocess.run([sys.executable, "-m", "bench.quality_scenes", "--out", str(tmp_path), "--size", "96x72",
                           "--samples", "2", "--objects", "globe"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads((tmp_path / "scenes.json").read_text())
    camera = Camera.from_dict(meta["camera"])
    globe = meta["objects"]["globe"]
    masks = {pose: load_rgba(tmp_path / "globe" / f"{pose}.png")[..., 3] >= 128 for pose in ("A", "translate")}
    pose_b = np.array(globe["poses"]["translate"]) @ np.linalg.inv(np.array(globe["poses"]["A"]))
    centre_b = pose_b[:3, :3] @ np.array(globe["center"]) + pose_b[:3, 3]
    (uv_a, uv_b), _ = camera.project(np.stack([np.array(globe["center"]), centre_b]))
    # A sphere's silhouette centroid is (nearly) its centre's projection.
    for pose, uv in (("A", uv_a), ("translate", uv_b)):
        ys, xs = np.nonzero(masks[pose])
        assert np.allclose([xs.mean() + 0.5, ys.mean() + 0.5], uv, atol=1.5), pose
    # The translation is right, down and away in object sizes, as `uplift edit --translate` means.
    tx, ty, tz = EDITS["translate"][1]
    moved_cam = camera.world_to_camera[:3, :3] @ (centre_b - np.array(globe["center"]))
    assert np.allclose(moved_cam, np.array([tx, ty, tz]) * globe["size"], atol=1e-6)


def test_report_pairs_fillers_and_edits_by_scene():
    """The summary's numbers come from the per-scene scores: medians, wins and the Telea deltas."""
    from bench.quality import FillScore, IdentityScore, Results, Score, report, summarise

    edits = [Score("oracle", "yaw15", "3d", f"s{i}", 20.0 + i, 0.5, 0.9, 40.0, 22.0 + i, 0.2, 0.05) for i in range(3)]
    edits += [Score("oracle", "yaw15", "2d", f"s{i}", 21.0, 0.4, 0.95, 40.0, 22.5) for i in range(3)]
    fills = [FillScore("telea", f"s{i}", 14.0, 0.3, 16.0, 0.01) for i in range(3)]
    fills += [FillScore("fsr_fast", f"s{i}", 14.0 + i, 0.4, 17.0, 1.0) for i in range(3)]
    identity = [IdentityScore("oracle", f"s{i}", 30.0 + i, 50.0) for i in range(3)]
    summary = report(Results(edits, identity, fills), ["oracle"], ["yaw15"], ["telea", "fsr_fast"])
    row = summary["edits"]["oracle"]["yaw15"]
    assert row["3d"]["psnr_union"] == 21.0 and row["2d"]["psnr_union"] == 21.0
    assert row["3d"]["psnr_union_shift"] == 23.0 and row["2d"]["psnr_union_shift"] == 22.5
    assert row["wins_3d"] == {"psnr_union": 1, "psnr_union_shift": 2, "iou": 0, "scenes": 3}
    assert row["3d"]["render_s"] == 0.2
    assert summary["identity"]["oracle"]["psnr_mask_median"] == 31.0
    assert summary["identity"]["oracle"]["psnr_mask_min"] == 30.0
    fsr = summary["fillers"]["fsr_fast"]
    assert fsr["vs_telea_hole_db"] == pytest.approx(1.0) and fsr["wins_vs_telea"] == 2
    assert fsr["vs_telea_ring_db"] == pytest.approx(1.0)
    text, md = summarise(summary, "telea")
    for table in (text, md):
        assert "identity" in table and "yaw15" in table and "fsr_fast" in table


def test_best_shift_psnr_undoes_a_small_offset_and_no_more():
    from bench.quality import psnr, psnr_best_shift

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    region = np.zeros((40, 50), bool)
    region[10:30, 12:38] = True
    moved = np.roll(truth, (2, -3), axis=(0, 1))  # the whole object 3 px left, 2 px down
    assert psnr(moved, truth, region) < 15
    assert psnr_best_shift(moved, truth, region, reach=3) == 99.0
    assert psnr_best_shift(moved, truth, region, reach=2) < 15  # beyond the reach: not undone
    assert psnr_best_shift(truth, truth, region, reach=3) == psnr(truth, truth, region)


@pytest.mark.bpy
@pytest.mark.slow
def test_tiny_run_writes_every_report_field(tmp_path):
    """One tiny scene end to end: the report has identity, per-edit 3D/2D scores, stage seconds
    and each filler against the true background, all in range."""
    done = subprocess.run([sys.executable, "-m", "bench.quality", "--out", str(tmp_path), "--size", "96x72",
                           "--samples", "2", "--objects", "globe", "--backgrounds", "coffee", "--scenes", "1",
                           "--edits", "yaw15", "--backends", "oracle", "--fillers", "telea,ns,fsr_fast"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "quality.json").read_text())
    assert report["settings"]["scenes"] == 1
    identity = report["identity"]["oracle"]
    assert 15 < identity["psnr_mask_median"] <= 99
    row = report["edits"]["oracle"]["yaw15"]
    for method in ("3d", "2d"):
        assert 5 < row[method]["psnr_union"] <= row[method]["psnr_union_shift"] <= 99 and 0 < row[method]["iou"] <= 1
        assert -1 <= row[method]["ssim_union"] <= 1
    assert row["3d"]["render_s"] > 0 and row["3d"]["compose_s"] > 0
    assert set(report["fillers"]) == {"telea", "ns", "fsr_fast"}
    for filler in report["fillers"].values():
        assert 5 < filler["psnr_hole_mean"] < 99 and 5 < filler["psnr_ring_mean"] < 99
        assert -1 <= filler["ssim_hole_median"] <= 1
    assert "vs_telea_hole_db" not in report["fillers"]["telea"]  # no delta against itself
    assert report["fillers"]["ns"]["wins_vs_telea"] in (0, 1)
    assert "hole fillers" in (tmp_path / "quality.md").read_text() and "identity" in done.stdout
    assert (tmp_path / "quality_fillers.png").is_file()
