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
                           "--samples", "2", "--scenes", "globe", "--backgrounds", "coffee"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads((tmp_path / "scenes.json").read_text())
    globe = meta["scenes"]["globe"]
    camera = Camera.from_dict(globe["camera"])
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
    # The render camera has the scene's lens: f = lens / 36 mm * width.
    assert camera.K[0, 0] == pytest.approx(globe["spec"]["lens_35mm"] / 36.0 * 96)


def test_scene_split_is_fixed_and_stratified():
    """Both halves hold half of every family, the split does not depend on the backgrounds on offer,
    and it is the same on every call (tuning on one half never touches the other)."""
    from bench.quality_scenes import FAMILIES, scene_specs

    specs = scene_specs(("coffee", "rocket"))
    assert specs == scene_specs(("coffee", "rocket"))
    halves = {s.name: s.half for s in specs}
    assert halves == {s.name: s.half for s in scene_specs(("truck", "dog", "coffee", "rocket", "groceries"))}
    for kinds in FAMILIES.values():
        assert sorted(halves[k] for k in kinds) == ["heldout"] * (len(kinds) // 2) + ["tuning"] * (len(kinds) // 2)
    # The variety the held-out photos have: tilts both ways, several lenses, fine textures.
    assert {s.tilt_deg > 0 for s in specs} == {True, False}
    assert len({s.lens_35mm for s in specs}) >= 3 and any(s.frequency > 1 for s in specs)


def test_bench_photo_carries_its_lens_where_uplift_reads_it(tmp_path):
    """The bench's photos reach the pipeline the way a user's do: the camera comes from EXIF."""
    from uplift.core.photo import photo_camera

    from bench.quality import write_photo

    image = np.zeros((90, 120, 3), np.uint8)
    write_photo(tmp_path / "p.png", image, 28)
    found = photo_camera(tmp_path / "p.png")
    assert found.focal_source == "exif_35mm"
    assert found.camera.K[0, 0] == pytest.approx(28 / 36 * 120)


def test_ablation_overrides_are_typed_and_checked():
    from uplift.services.backends.inflate import InflateConfig

    from bench.quality import parse_overrides

    cfg = parse_overrides("thickness_prior=1.5,fill_unseen=false,fit_passes=2", InflateConfig, "inflate")
    assert (cfg.thickness_prior, cfg.fill_unseen, cfg.fit_passes) == (1.5, False, 2)
    assert isinstance(cfg.fit_passes, int)
    assert parse_overrides("", InflateConfig, "inflate") == InflateConfig()
    with pytest.raises(SystemExit, match="unknown setting 'thicknes'"):
        parse_overrides("thicknes=1", InflateConfig, "inflate")


def test_report_pairs_3d_and_2d_by_scene_and_half():
    """The summary's numbers come from the per-scene scores: means and medians of 3D - 2D per half,
    a baseline row against the same 2D reference, and the Telea deltas of the fillers."""
    from bench.quality import FillScore, IdentityScore, Results, Score, report, summarise

    halves = {"s0": "tuning", "s1": "tuning", "s2": "heldout"}
    edits = [Score("main", "yaw15", "3d", f"s{i}", 20.0 + i, 0.5, 0.9, 40.0, 22.0 + i, 0.2, 0.05) for i in range(3)]
    edits += [Score("main", "yaw15", "2d", f"s{i}", 21.0, 0.4, 0.95, 40.0, 22.5) for i in range(3)]
    edits += [Score("old", "yaw15", "3d", f"s{i}", 20.0, 0.5, 0.8, 40.0, 21.5) for i in range(3)]
    fills = [FillScore("telea", f"s{i}", 14.0, 0.3, 16.0, 0.01) for i in range(3)]
    fills += [FillScore("fsr_fast", f"s{i}", 14.0 + i, 0.4, 17.0, 1.0) for i in range(3)]
    identity = [IdentityScore("main", f"s{i}", 30.0 + i, 99.0) for i in range(3)]
    summary = report(Results(edits, identity, fills, halves), ["main", "old"], ["yaw15"], ["telea", "fsr_fast"], "main")
    tuning = summary["edits"]["main"]["tuning"]["yaw15"]
    assert tuning["delta_mean"] == pytest.approx(0.0) and tuning["scenes"] == 2 and tuning["wins"] == 1
    assert summary["edits"]["main"]["heldout"]["yaw15"]["delta_mean"] == pytest.approx(1.5)
    everything = summary["edits"]["main"]["all"]["yaw15"]
    assert everything["delta_mean"] == pytest.approx(0.5) and everything["delta_median"] == pytest.approx(0.5)
    assert everything["iou3d_mean"] == pytest.approx(0.9) and everything["iou2d_mean"] == pytest.approx(0.95)
    assert summary["edits"]["old"]["all"]["yaw15"]["delta_mean"] == pytest.approx(-1.0)
    assert summary["per_scene"]["main"]["s2"]["yaw15"] == pytest.approx(1.5)
    assert summary["identity"]["main"]["heldout"]["psnr_mask_min"] == 32.0
    fsr = summary["fillers"]["fsr_fast"]
    assert fsr["vs_telea_hole_db"] == pytest.approx(1.0) and fsr["wins_vs_telea"] == 2
    paired = summary["paired"]["rows"]["old"]["all"]["yaw15"]  # main - old: +0.5, +1.5, +2.5 over the scenes
    assert paired["median_diff"] == pytest.approx(1.5) and (paired["wins"], paired["losses"]) == (3, 0)
    text, md = summarise(summary, ["yaw15"], halves)
    for table in (text, md):
        assert "identity" in table and "heldout" in table and "per object" in table and "fsr_fast" in table
        assert "paired, main vs old" in table


def test_paired_rows_compare_scene_by_scene_not_medians():
    """Two rows that tie scene for scene but whose medians differ by 2 dB (the scenes swap places
    around the median): the paired median difference says 0, wins and losses say 1/1."""
    from bench.quality import Score, paired_rows, sign_test_p

    halves = {"a": "heldout", "b": "heldout", "c": "heldout", "d": "tuning"}
    main = {"a": 20.0, "b": 24.0, "c": 30.0, "d": 10.0}
    old = {"a": 21.0, "b": 24.0, "c": 29.0, "d": 12.0}
    edits = [Score(label, "yaw30", "3d", scene, value, 0.5, 0.9, 40.0, value)
             for label, values in (("main", main), ("old", old)) for scene, value in values.items()]
    edits.append(Score("main", "yaw30", "2d", "a", 0.0, 0.5, 0.9, 40.0, 0.0))  # 2D rows do not enter
    rows = paired_rows(edits, ["main", "old"], ["yaw30"], halves)["old"]
    held = rows["heldout"]["yaw30"]
    assert held["median_diff"] == 0.0 and held["mean_diff"] == pytest.approx(0.0)
    assert (held["wins"], held["losses"], held["scenes"]) == (1, 1, 3) and held["sign_p"] == 1.0
    assert rows["tuning"]["yaw30"]["median_diff"] == -2.0 and rows["all"]["yaw30"]["scenes"] == 4
    assert paired_rows(edits, ["main"], ["yaw30"], halves) == {}  # nothing to pair with
    assert sign_test_p(8, 0) == pytest.approx(2 / 256) and sign_test_p(0, 8) == pytest.approx(2 / 256)
    assert sign_test_p(7, 1) == pytest.approx(18 / 256) and sign_test_p(4, 4) == 1.0 and sign_test_p(0, 0) == 1.0


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
def test_tiny_run_writes_every_report_field_and_a_baseline_row_equals_this_checkout(tmp_path):
    """One tiny scene end to end, with this very commit as the --baseline: its own `uplift edit` in a
    subprocess (CLI, EXIF camera, box) must score exactly what the in-process pipeline scores."""
    # 128x96: at 96x72 this scene's globe (a wide lens, tilted, over the astronaut) is too small for GrabCut.
    done = subprocess.run([sys.executable, "-m", "bench.quality", "--out", str(tmp_path), "--size", "128x96",
                           "--samples", "2", "--objects", "globe", "--edits", "yaw15", "--fillers", "telea,ns",
                           "--baseline", "HEAD"], cwd=REPO, capture_output=True, text=True)
    subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "quality.json").read_text())
    assert report["settings"]["scenes"] == ["globe"]
    half = report["settings"]["halves"]["globe"]
    assert report["identity"]["main (grabcut)"][half]["psnr_outside_min"] == 99.0
    rows = {label: per_half[half]["yaw15"] for label, per_half in report["edits"].items()}
    assert len(rows) == 2
    ours, baseline = rows.pop("main (grabcut)"), next(iter(rows.values()))
    assert 5 < ours["psnr3d_mean"] <= 99 and 5 < ours["psnr2d_mean"] <= 99 and 0 < ours["iou3d_mean"] <= 1
    assert ours["render_s"] > 0
    status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "addon"], capture_output=True,
                            text=True).stdout
    if not status:  # a clean checkout (CI): HEAD is this code, so its CLI must give the same pixels
        assert baseline["psnr3d_mean"] == pytest.approx(ours["psnr3d_mean"], abs=1e-9)
        assert baseline["iou3d_mean"] == pytest.approx(ours["iou3d_mean"], abs=1e-9)
    assert set(report["fillers"]) == {"telea", "ns"}
    for filler in report["fillers"].values():
        assert 5 < filler["psnr_hole_mean"] < 99 and 5 < filler["psnr_ring_mean"] < 99
    assert "vs_telea_hole_db" not in report["fillers"]["telea"]  # no delta against itself
    assert "per object" in (tmp_path / "quality.md").read_text() and "identity" in done.stdout
    assert (tmp_path / "photos" / "globe.png").is_file() and (tmp_path / "quality_fillers.png").is_file()


def test_ablations_swap_functions_for_the_block_only():
    """--ablate switches rules off in process; afterwards (also after an error) the pipeline is whole."""
    from uplift.core.render import reprojection
    from uplift.pipeline import edit

    from bench.quality import ABLATIONS, ablated

    originals = (edit.compose, reprojection.smooth_share, reprojection.PhotoSource.sampled_image)
    with pytest.raises(RuntimeError):
        with ablated(list(ABLATIONS)):
            assert edit.compose is not originals[0] and reprojection.smooth_share is not originals[1]
            assert reprojection.PhotoSource.sampled_image is not originals[2]
            share = reprojection.smooth_share(reprojection.torch.tensor([[0.0, 1.0]]), None)
            assert share.tolist() == [[0.0, 1.0]]  # no smoothing
            raise RuntimeError("inside the block")
    assert (edit.compose, reprojection.smooth_share, reprojection.PhotoSource.sampled_image) == originals
