"""core.splat_io: reference files of each format read to their known values, round trips,
field-order variants, and one-line errors for bad files."""
from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from uplift.core import ply, splat_io
from uplift.core.errors import DependencyError, OutputWriteError, PlyFormatError, SplatFormatError
from uplift.core.gaussians import SH_C0, Gaussians
from uplift.core.splat_io import SPZ_TOLERANCE, read_splat_file, write_splat_file

SPLATS = Path(__file__).resolve().parents[1] / "data" / "splats"
_spec = importlib.util.spec_from_file_location("make_reference_files", SPLATS / "make_reference_files.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

import gsply  # noqa: E402


def known(degree: int = 1) -> Gaussians:
    sh = np.concatenate((ref.SH_DC[:, None], ref.SH_REST), 1) if degree else ref.SH_DC[:, None]
    return Gaussians(*(torch.from_numpy(np.array(a)) for a in (ref.MEANS, ref.QUATS, ref.LOG_SCALES,
                                                                ref.OPACITY_LOGITS, sh)))


def random_gaussians(n: int, degree: int, seed: int = 0, spread: float = 3.0) -> Gaussians:
    """Values inside every .spz range, so only rounding separates a round trip from the input."""
    gen = torch.Generator().manual_seed(seed)
    sh = torch.rand(n, (degree + 1) ** 2, 3, generator=gen) * 1.9 - 0.95  # rest: [-1, 0.99]
    sh[:, 0] = torch.rand(n, 3, generator=gen) * 6 - 3                     # DC: [-3.33, 3.33]
    return Gaussians((torch.rand(n, 3, generator=gen) - 0.5) * 2 * spread, torch.randn(n, 4, generator=gen),
                     torch.rand(n, 3, generator=gen) * 8 - 8, torch.randn(n, generator=gen) * 3, sh)


def quat_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Largest component difference of the unit quaternions, a's sign matched to b's
    (q and -q are one rotation)."""
    a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    sign = torch.where((a * b).sum(1, keepdim=True) < 0, -1.0, 1.0)
    return (a * sign - b).abs().max()


def assert_equal_gaussians(a: Gaussians, b: Gaussians, atol: float = 0.0) -> None:
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=atol, rtol=0, msg=name)


def assert_within_spz(read: Gaussians, g: Gaussians) -> None:
    """Each field within `SPZ_TOLERANCE` (plus float32 noise) of what was written."""
    slack = 1e-5
    worst = {
        "means": (read.means - g.means).abs().max(),
        "opacity": (read.opacities - g.opacities).abs().max(),
        "sh_dc": (read.sh[:, 0] - g.sh[:, 0]).abs().max(),
        "log_scales": (read.log_scales - g.log_scales).abs().max(),
        "quats": quat_error(read.quats, g.quats),
        "sh_rest": (read.sh[:, 1:] - g.sh[:, 1:]).abs().max() if g.sh_degree else torch.tensor(0.0),
    }
    for name, error in worst.items():
        assert float(error) <= SPZ_TOLERANCE[name] + slack, f"{name}: {float(error):.3g} > {SPZ_TOLERANCE[name]:.3g}"


# -- reference files ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, degree", [("known_sh1.ply", 1), ("known_sh0.ply", 0), ("reordered.ply", 1)])
def test_ply_reference_files_read_their_known_values(name, degree):
    """gsply's writer (INRIA order) and another trainer's order with uchar extras and normals."""
    g = read_splat_file(SPLATS / name)
    assert g.sh_degree == degree
    assert_equal_gaussians(g, known(degree))
    if name == "reordered.ply":
        assert g.normals is not None and g.normals[:, 2].eq(1).all()
        assert [g.extra[c].tolist() for c in ("red", "green", "blue")] == [[0, 10, 20, 30], [0, 20, 40, 60],
                                                                          [0, 30, 60, 90]]


def test_spz_written_by_gsply_reads_the_known_values_within_its_quantisation():
    g = read_splat_file(SPLATS / "known_sh1.spz")
    assert g.sh_degree == 1
    assert_within_spz(g, known(1))


def test_hand_packed_spz_v2_decodes_by_nianticss_layout():
    """Expected values from the documented byte layout, not from a decoder."""
    g = read_splat_file(SPLATS / "known_v2.spz")
    scale = 2.0 ** -ref.SPZ_V2_BITS
    for i, (pos, alpha, colour, scales, rot, sh) in enumerate(ref.SPZ_V2):
        np.testing.assert_allclose(g.means[i].numpy(), np.array(pos) * scale, rtol=0, atol=1e-6)
        assert abs(float(g.opacities[i]) - min(max(alpha / 255, 1e-6), 1 - 1e-6)) < 1e-6
        np.testing.assert_allclose(g.sh[i, 0].numpy(), (np.array(colour) / 255 - 0.5) / 0.15, atol=1e-5)
        np.testing.assert_allclose(g.log_scales[i].numpy(), np.array(scales) / 16 - 10, atol=1e-6)
        xyz = np.array(rot) / 127.5 - 1
        wxyz = np.array([math.sqrt(max(0.0, 1 - float(xyz @ xyz))), *xyz])
        np.testing.assert_allclose(g.quats[i].numpy(), wxyz, atol=1e-6)
        np.testing.assert_allclose(g.sh[i, 1:].numpy().reshape(-1), (np.array(sh) - 128) / 128, atol=1e-6)


def test_hand_packed_splat_records_decode_to_our_conventions():
    g = read_splat_file(SPLATS / "known.splat")
    assert len(g) == len(ref.SPLAT_RECORDS) and g.sh_degree == 0
    for i, (pos, scale, rgba, rot) in enumerate(ref.SPLAT_RECORDS):
        np.testing.assert_allclose(g.means[i].numpy(), pos, rtol=1e-7)
        np.testing.assert_allclose(g.scales[i].numpy(), scale, rtol=1e-6)
        np.testing.assert_allclose(g.base_colors[i].numpy(), np.array(rgba[:3]) / 255, atol=1e-6)
        expected_alpha = min(max(rgba[3] / 255, 0.5 / 255), 1 - 0.5 / 255)
        assert abs(float(g.opacities[i]) - expected_alpha) < 1e-6
        np.testing.assert_allclose(g.quats[i].numpy(), (np.array(rot) - 128) / 128, atol=1e-7)


# -- PLY: core.ply is the reference; gsply agrees with it ---------------------------------------

@pytest.mark.parametrize("degree", [0, 1, 3])
def test_gsply_and_the_reference_ply_agree_both_ways(tmp_path, degree):
    g = random_gaussians(300, degree, seed=degree)
    ours = tmp_path / "ours.ply"
    write_splat_file(ours, g)
    assert ours.read_bytes() == ply.ply_bytes(g)  # one PLY writer
    theirs = gsply.plyread(ours)
    np.testing.assert_array_equal(theirs.means, g.means.numpy())
    np.testing.assert_array_equal(theirs.quats, g.quats.numpy())
    np.testing.assert_array_equal(theirs.scales, g.log_scales.numpy())
    np.testing.assert_array_equal(theirs.opacities, g.opacity_logits.numpy())
    np.testing.assert_array_equal(theirs.sh0, g.sh[:, 0].numpy())
    np.testing.assert_array_equal(np.asarray(theirs.shN).reshape(len(g), -1, 3), g.sh[:, 1:].numpy())
    written_by_gsply = tmp_path / "gsply.ply"
    gsply.plywrite(str(written_by_gsply), *(x.numpy() for x in (g.means, g.log_scales, g.quats, g.opacity_logits)),
                   g.sh[:, 0].numpy(), g.sh[:, 1:].numpy() if degree else None)
    assert_equal_gaussians(read_splat_file(written_by_gsply), g)


def test_ply_round_trip_is_exact_with_normals_and_extras(tmp_path):
    g = random_gaussians(50, 2).replace(normals=torch.randn(50, 3), extra={"segment": np.arange(50, dtype=np.int32)})
    path = tmp_path / "a.PLY"  # extensions are case-blind
    write_splat_file(path, g)
    back = read_splat_file(path)
    assert_equal_gaussians(back, g)
    assert torch.equal(back.normals, g.normals) and np.array_equal(back.extra["segment"], g.extra["segment"])


def test_compressed_ply_is_read_through_gsply(tmp_path):
    g = random_gaussians(600, 0, seed=4)
    path = tmp_path / "scene.compressed.ply"
    gsply.plywrite(str(path), *(x.numpy() for x in (g.means, g.log_scales, g.quats, g.opacity_logits)),
                   g.sh[:, 0].numpy(), None, compressed=True)
    back = read_splat_file(path)
    assert len(back) == len(g)
    # PlayCanvas' layout quantises within each 256-splat chunk's range: positions and log scales in
    # 10-11 bits of it, colour and opacity in 8 bits (opacity as sigmoid, so compare opacities, not
    # logits), quaternions smallest-three in 10 bits.
    extent = (g.means.max(0).values - g.means.min(0).values).max()
    assert float((back.means - g.means).abs().max()) < extent / 1023
    assert float((back.log_scales - g.log_scales).abs().max()) < 8.0 / 1023
    assert float((back.opacities - g.opacities).abs().max()) < 1.0 / 255
    colour_range = float(g.base_colors.max() - g.base_colors.min())
    assert float((back.base_colors - g.base_colors).abs().max()) < colour_range / 255
    assert float(quat_error(back.quats, g.quats)) < 2.0 / 1023


# -- .spz and .splat round trips -----------------------------------------------------------------

@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_spz_round_trip_within_its_quantisation(tmp_path, degree):
    g = random_gaussians(2000, degree, seed=10 + degree)
    path = tmp_path / "a.spz"
    write_splat_file(path, g)
    back = read_splat_file(path)
    assert back.sh_degree == degree and len(back) == len(g)
    assert_within_spz(back, g)


def test_spz_keeps_positions_of_a_large_scene_with_fewer_fraction_bits(tmp_path):
    g = random_gaussians(100, 0, spread=5000.0)  # beyond 2048 units: 12 fractional bits would clip
    assert splat_io.position_bits(g.means.numpy()) == 10
    write_splat_file(tmp_path / "big.spz", g)
    back = read_splat_file(tmp_path / "big.spz")
    assert float((back.means - g.means).abs().max()) <= 0.5 / 2 ** 10 + 1e-3


def test_splat_round_trip_keeps_geometry_and_the_dc_colour(tmp_path):
    g = random_gaussians(500, 2, seed=3)
    path = tmp_path / "a.splat"
    write_splat_file(path, g)
    assert path.stat().st_size == 32 * len(g)
    back = read_splat_file(path)
    assert back.sh_degree == 0
    torch.testing.assert_close(back.means, g.means, rtol=0, atol=0)
    torch.testing.assert_close(back.log_scales, g.log_scales, rtol=0, atol=1e-6)
    visible = g.base_colors.clamp(0, 1)
    assert float((back.base_colors - visible).abs().max()) <= 0.5 / 255 + 1e-6
    assert float((back.opacities - g.opacities.clamp(0.5 / 255, 1 - 0.5 / 255)).abs().max()) <= 0.5 / 255 + 1e-6
    assert float(quat_error(back.quats, g.quats)) < 1.5 / 128  # bytes q * 128 + 128, then renormalised


# -- errors: one line, the right class ----------------------------------------------------------

def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(SplatFormatError) as err:
        read_splat_file(tmp_path / "scene.obj")
    assert "'.obj' is not a splat file type" in _one_line(err)
    with pytest.raises(SplatFormatError) as err:
        write_splat_file(tmp_path / "scene", known())
    assert "no extension" in _one_line(err)
    with pytest.raises(SplatFormatError) as err:
        read_splat_file(tmp_path / "absent.spz")
    assert "cannot read" in _one_line(err)


@pytest.mark.parametrize("ext", splat_io.SPLAT_EXTENSIONS)
def test_empty_files_are_refused(tmp_path, ext):
    path = tmp_path / f"empty{ext}"
    path.write_bytes(b"")
    with pytest.raises(SplatFormatError) as err:
        read_splat_file(path)
    assert "empty" in _one_line(err)


@pytest.mark.parametrize("name", ["known_sh1.ply", "known_sh1.spz", "known_v2.spz", "known.splat"])
def test_truncated_files_are_refused(tmp_path, name):
    data = (SPLATS / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) - 7])
    with pytest.raises(SplatFormatError) as err:
        read_splat_file(path)
    assert str(path) in _one_line(err) or path.name in str(err.value)


def test_garbage_spz_is_refused(tmp_path):
    path = tmp_path / "noise.spz"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(SplatFormatError) as err:
        read_splat_file(path)
    assert "not a readable .spz splat file" in _one_line(err)


def test_nan_values_are_refused_on_read_and_write(tmp_path):
    records = np.frombuffer(ref.splat_bytes(), dtype=splat_io.SPLAT_RECORD).copy()
    records["position"][1, 2] = np.nan
    path = tmp_path / "nan.splat"
    path.write_bytes(records.tobytes())
    with pytest.raises(SplatFormatError) as err:
        read_splat_file(path)
    assert "1 Gaussians have NaN or infinite positions (first at 1)" in _one_line(err)
    g = known()
    g.log_scales[2, 0] = float("nan")
    for ext in splat_io.SPLAT_EXTENSIONS:
        with pytest.raises(SplatFormatError) as err:
            write_splat_file(tmp_path / f"out{ext}", g)
        assert "NaN" in _one_line(err)
        assert not (tmp_path / f"out{ext}").exists()


def test_nan_in_a_ply_is_a_ply_format_error(tmp_path):
    g = known()
    data = bytearray(ply.ply_bytes(g))
    data[-4:] = np.float32(np.nan).tobytes()  # the last rot_3
    path = tmp_path / "nan.ply"
    path.write_bytes(bytes(data))
    with pytest.raises(PlyFormatError) as err:
        read_splat_file(path)
    assert "NaN" in _one_line(err)


def test_zero_splats_and_flat_splat_scales_are_refused(tmp_path):
    with pytest.raises(SplatFormatError) as err:
        write_splat_file(tmp_path / "none.spz", known().subset(torch.zeros(4, dtype=torch.bool)))
    assert "no Gaussians" in _one_line(err)
    records = np.frombuffer(ref.splat_bytes(), dtype=splat_io.SPLAT_RECORD).copy()
    records["scale"][2, 1] = 0.0
    (tmp_path / "flat.splat").write_bytes(records.tobytes())
    with pytest.raises(SplatFormatError) as err:
        read_splat_file(tmp_path / "flat.splat")
    assert "scale <= 0 (first at 2" in _one_line(err)


def test_writes_are_atomic_and_missing_folders_are_output_errors(tmp_path):
    path = tmp_path / "keep.spz"
    path.write_bytes(b"user data")
    g = known()
    g.means[0, 0] = float("inf")
    with pytest.raises(SplatFormatError):
        write_splat_file(path, g)
    assert path.read_bytes() == b"user data"
    for ext in splat_io.SPLAT_EXTENSIONS:
        with pytest.raises(OutputWriteError):
            write_splat_file(tmp_path / "no" / "such" / f"folder{ext}", known())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.spz"]  # no temporary files left


def test_without_gsply_spz_is_a_dependency_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gsply", None)  # imports of it fail
    with pytest.raises(DependencyError) as err:
        read_splat_file(SPLATS / "known_sh1.spz")
    assert "pip install gsply==" in _one_line(err)
    with pytest.raises(DependencyError):
        write_splat_file(tmp_path / "a.spz", known())
    assert_equal_gaussians(read_splat_file(SPLATS / "known_sh1.ply"), known())  # PLY needs no gsply


def test_reading_and_writing_100k_splats_is_quick(tmp_path):
    """Figures for the report; generous bounds (2 shared cores, numba's first compile is cached)."""
    g = random_gaussians(100_000, 3, seed=7)
    timings = {}
    for ext in splat_io.SPLAT_EXTENSIONS:
        path = tmp_path / f"big{ext}"
        write_splat_file(path, g)  # warm-up (numba compiles or loads its cache)
        read_splat_file(path)
        t0 = time.perf_counter()
        write_splat_file(path, g)
        t1 = time.perf_counter()
        read_splat_file(path)
        timings[ext] = (t1 - t0, time.perf_counter() - t1, path.stat().st_size)
    print({k: f"write {w:.3f} s, read {r:.3f} s, {size / 1e6:.2f} MB" for k, (w, r, size) in timings.items()})
    assert all(w < 20 and r < 20 for w, r, _ in timings.values())
