"""3DGS PLY: exact round trips, the INRIA layout, double input, and a clear error per malformed file."""
import os

import numpy as np
import pytest
import torch

from uplift.core.errors import OutputWriteError, PlyFormatError
from uplift.core.gaussians import Gaussians
from uplift.core.ply import ply_bytes, read_ply, write_ply


def make_gaussians(n=50, degree=0, normals=False, seed=0, extra=None):
    gen = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return Gaussians(
        means=torch.randn(n, 3, generator=gen),
        quats=torch.randn(n, 4, generator=gen),
        log_scales=torch.randn(n, 3, generator=gen) - 4,
        opacity_logits=torch.randn(n, generator=gen),
        sh=torch.randn(n, k, 3, generator=gen),
        normals=torch.randn(n, 3, generator=gen) if normals else None,
        extra=extra or {},
    )


def assert_same(a: Gaussians, b: Gaussians):
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert (a.normals is None) == (b.normals is None)
    if a.normals is not None:
        assert torch.equal(a.normals, b.normals)
    assert a.extra.keys() == b.extra.keys()
    for key in a.extra:
        assert a.extra[key].dtype == b.extra[key].dtype and np.array_equal(a.extra[key], b.extra[key])


def header(props, n, fmt="binary_little_endian", extra_lines=()):
    lines = ["ply", f"format {fmt} 1.0", *extra_lines, f"element vertex {n}"]
    lines += [f"property {t} {name}" for t, name in props]
    return ("\n".join(lines) + "\nend_header\n").encode()


BASE = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
        "rot_0", "rot_1", "rot_2", "rot_3"]


def raw_ply(values: dict, ply_type="float", np_type="<f4", fmt="binary_little_endian", extra_lines=()):
    n = len(next(iter(values.values())))
    table = np.empty(n, dtype=[(k, np_type) for k in values])
    for k, v in values.items():
        table[k] = v
    return header([(ply_type, k) for k in values], n, fmt, extra_lines) + table.tobytes()


def base_values(n=4):
    rng = np.random.default_rng(0)
    values = {k: rng.normal(size=n) for k in BASE}
    values["rot_0"] = np.abs(values["rot_0"]) + 0.5
    return values


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("normals", [False, True])
def test_write_read_is_exact(tmp_path, degree, normals):
    g = make_gaussians(degree=degree, normals=normals, extra={"segment_id": np.arange(50, dtype=np.int32),
                                                               "confidence": np.linspace(0, 1, 50)})
    path = tmp_path / "g.ply"
    write_ply(path, g)
    back = read_ply(path)
    assert back.sh_degree == degree
    assert_same(g, back)
    assert_same(g, read_ply(ply_bytes(g)))  # bytes source too
    assert_same(back, read_ply(ply_bytes(back)))  # and again: a fixed point


def test_f_rest_is_channel_major_as_in_the_inria_layout():
    values = base_values(2)
    # degree 1: 3 coefficients per channel; R coefficients first, then G, then B
    for i in range(9):
        values[f"f_rest_{i}"] = np.full(2, float(i))
    g = read_ply(raw_ply(values))
    assert g.sh.shape == (2, 4, 3)
    expected = torch.tensor([[0.0, 3.0, 6.0], [1.0, 4.0, 7.0], [2.0, 5.0, 8.0]])  # [coeff, channel]
    assert torch.equal(g.sh[0, 1:], expected)
    assert torch.equal(g.sh[0, 0], torch.tensor(values_at(values, ["f_dc_0", "f_dc_1", "f_dc_2"]), dtype=torch.float32))


def values_at(values, names, row=0):
    return [np.float32(values[k][row]) for k in names]


def test_double_properties_are_read():
    values = base_values(5)
    g = read_ply(raw_ply(values, "double", "<f8"))
    assert g.means.dtype == torch.float32
    assert torch.equal(g.means, torch.tensor(np.stack([values[k] for k in "xyz"], 1), dtype=torch.float32))
    assert torch.equal(g.quats[:, 0], torch.tensor(values["rot_0"], dtype=torch.float32))


def test_extra_elements_after_and_before_the_vertices_are_skipped():
    values = base_values(3)
    body = raw_ply(values)
    # a face element after the vertices, with a list property
    head, data = body.split(b"end_header\n")
    head = head + b"element face 1\nproperty list uchar int vertex_indices\nend_header\n"
    face = np.array([3], np.uint8).tobytes() + np.array([0, 1, 2], "<i4").tobytes()
    g = read_ply(head + data + face)
    assert len(g) == 3
    # a fixed-size element before the vertices
    lines = ["ply", "format binary_little_endian 1.0", "comment made by a test", "element camera 2",
             "property float fx", "property float fy"]
    pre = np.arange(4, dtype="<f4").tobytes()
    vertex_head = body.split(b"\n", 2)[2]  # drop "ply" and format lines
    g2 = read_ply(("\n".join(lines) + "\n").encode() + vertex_head.split(b"end_header\n")[0] + b"end_header\n" + pre + data)
    assert torch.equal(g2.means, g.means)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b"hello" + b, "not a PLY"),
    (lambda b: b.replace(b"binary_little_endian", b"ascii"), "ASCII PLY files are not supported"),
    (lambda b: b.replace(b"binary_little_endian", b"binary_big_endian"), "big-endian PLY files are not supported"),
    (lambda b: b.replace(b"property float opacity\n", b""), "missing vertex properties: opacity"),
    (lambda b: b.replace(b"property float rot_3\n", b"").replace(b"property float scale_0\n", b""), "scale_0, rot_3"),
    (lambda b: b[:-10], "truncated"),
    (lambda b: b.split(b"end_header")[0], "end_header"),
    (lambda b: b.replace(b"element vertex 4", b"element vertex 0"), "empty"),
])
def test_malformed_files_get_a_clear_error(mutate, message):
    good = raw_ply(base_values(4))
    read_ply(good)  # sanity: the unmutated file is fine
    with pytest.raises(PlyFormatError, match=message):
        read_ply(mutate(good))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad):
    values = base_values(4)
    values["scale_1"][2] = bad
    with pytest.raises(PlyFormatError, match="'scale_1' has 1 NaN or infinite values .*vertex 2"):
        read_ply(raw_ply(values))


def test_zero_quaternion_is_refused():
    values = base_values(4)
    for k in ("rot_0", "rot_1", "rot_2", "rot_3"):
        values[k][1] = 0.0
    with pytest.raises(PlyFormatError, match="zero rotation quaternion .*vertex 1"):
        read_ply(raw_ply(values))


def test_double_that_overflows_float32_is_refused():
    values = base_values(4)
    values["x"][0] = 1e300
    with pytest.raises(PlyFormatError, match="float32"):
        read_ply(raw_ply(values, "double", "<f8"))


def test_partial_sh_and_partial_normals_are_refused():
    values = base_values(2)
    values["f_rest_0"] = np.zeros(2)
    with pytest.raises(PlyFormatError, match="SH degree"):
        read_ply(raw_ply(values))
    values = base_values(2)
    values["nx"] = np.zeros(2)
    with pytest.raises(PlyFormatError, match="only some of nx"):
        read_ply(raw_ply(values))


def test_unreadable_sources(tmp_path):
    with pytest.raises(PlyFormatError, match="cannot read .*missing.ply"):
        read_ply(tmp_path / "missing.ply")
    with pytest.raises(PlyFormatError, match="cannot read"):
        read_ply(tmp_path)  # a directory
    with pytest.raises(PlyFormatError, match="not a PLY"):
        read_ply(b"")


def test_write_is_atomic_and_reports_failures(tmp_path):
    path = tmp_path / "g.ply"
    write_ply(path, make_gaussians(seed=1))
    before = path.read_bytes()
    with pytest.raises(OutputWriteError, match="cannot write"):
        write_ply(tmp_path / "no" / "such" / "dir.ply", make_gaussians())
    write_ply(path, make_gaussians(seed=2))
    assert path.read_bytes() != before
    assert os.listdir(tmp_path) == ["g.ply"]  # no temporary files left behind


def test_device_tensors_are_written(device, tmp_path):
    g = make_gaussians(degree=1)
    write_ply(tmp_path / "g.ply", g.to(device))
    assert_same(g, read_ply(tmp_path / "g.ply"))
