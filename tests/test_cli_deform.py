"""`uplift deform` end to end on real PLY files."""
import numpy as np
import pytest
import torch

from uplift.cli.main import main
from uplift.core import quaternion as Q
from uplift.core.gaussians import Gaussians
from uplift.core.ply import read_ply, write_ply


@pytest.fixture
def rod_ply(tmp_path):
    """A rod along x from -1.5 to 1.5 with SH degree 1, normals and an extra property."""
    gen = torch.Generator().manual_seed(0)
    n = 2000
    means = torch.rand(n, 3, generator=gen) * torch.tensor([3.0, 0.3, 0.3]) - torch.tensor([1.5, 0.15, 0.15])
    g = Gaussians(means=means, quats=Q.normalize(torch.randn(n, 4, generator=gen)),
                  log_scales=torch.full((n, 3), -4.0), opacity_logits=torch.randn(n, generator=gen) + 2,
                  sh=torch.randn(n, 4, 3, generator=gen), normals=torch.randn(n, 3, generator=gen),
                  extra={"label": np.arange(n, dtype=np.int32)})
    path = tmp_path / "rod.ply"
    write_ply(path, g)
    return path


def run(*args):
    return main(["deform", *map(str, args), "--controls", "64", "-q"])


@pytest.mark.parametrize("drag_form", ["equals", "separate"])
def test_negative_coordinates_pins_and_untouched_attributes(rod_ply, tmp_path, drag_form):
    out = tmp_path / "out.ply"
    before = rod_ply.read_bytes()
    pin, lift = "-1.5,0,0:-1.5,0,0", "1.5,0,0:1.5,0,-0.8"
    drags = [f"--drag={pin}", f"--drag={lift}"] if drag_form == "equals" else ["--drag", pin, "--drag", lift]
    assert run(rod_ply, "-o", out, *drags) == 0
    assert rod_ply.read_bytes() == before  # input untouched
    g, posed = read_ply(rod_ply), read_ply(out)
    right, left = g.means[:, 0] > 1.3, g.means[:, 0] < -1.3
    assert (posed.means[right, 2] - g.means[right, 2]).mean() < -0.6   # pulled down to z = -0.8
    assert (posed.means[left] - g.means[left]).abs().mean() < 0.05     # pinned end stays
    assert not torch.equal(posed.quats, g.quats)
    for name in ("log_scales", "opacity_logits", "sh", "normals"):
        assert torch.equal(getattr(posed, name), getattr(g, name)), name
    assert np.array_equal(posed.extra["label"], g.extra["label"])


def test_fixed_iterations_run_interactive_mode(rod_ply, tmp_path, capsys):
    out = tmp_path / "out.ply"
    assert main(["deform", str(rod_ply), "-o", str(out), "--drag", "1.5,0,0:1.5,0.5,0", "--controls", "64",
                 "--iterations", "2"]) == 0
    assert "2 iterations" in capsys.readouterr().err
    assert len(read_ply(out)) == 2000


def test_no_drags_is_an_error(rod_ply, tmp_path, capsys):
    assert run(rod_ply, "-o", tmp_path / "out.ply") == 2
    assert "give at least one --drag" in capsys.readouterr().err
    assert not (tmp_path / "out.ply").exists()


def test_a_drag_far_from_the_object_is_an_error(rod_ply, tmp_path, capsys):
    assert run(rod_ply, "-o", tmp_path / "out.ply", "--drag", "0,0,9:0,0,10") == 2
    err = capsys.readouterr().err
    assert "drag 1 (0,0,9:0,0,10) starts" in err and "within" in err and "object sizes" in err
    assert not (tmp_path / "out.ply").exists()


def test_two_drags_on_one_control_is_an_error(rod_ply, tmp_path, capsys):
    assert run(rod_ply, "-o", tmp_path / "out.ply", "--drag", "1.5,0,0:1.5,0,1", "--drag", "1.5,0,0.001:1.5,0,2") == 2
    assert "grab the same control point" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n0\n", "ASCII"),
    (b"\x89PNG not a ply", "not a PLY"),
])
def test_unreadable_input_is_an_error(tmp_path, capsys, content, message):
    path = tmp_path / "in.ply"
    if content is not None:
        path.write_bytes(content)
    assert run(path, "-o", tmp_path / "out.ply", "--drag", "0,0,0:0,0,1") == 2
    err = capsys.readouterr().err
    assert err.startswith("uplift deform: error:") and message in err and "Traceback" not in err


def test_output_may_not_replace_the_input(rod_ply, capsys):
    before = rod_ply.read_bytes()
    assert run(rod_ply, "-o", rod_ply, "--drag", "1.5,0,0:1.5,0,1") == 2
    assert "also an input" in capsys.readouterr().err
    assert rod_ply.read_bytes() == before


@pytest.mark.parametrize("drag", ["1,2:3,4,5", "a,b,c:1,2,3", "1,2,3", "1,2,3:4,5,nan"])
def test_malformed_drags_are_usage_errors(rod_ply, tmp_path, capsys, drag):
    with pytest.raises(SystemExit) as exit_info:
        run(rod_ply, "-o", tmp_path / "out.ply", f"--drag={drag}")
    assert exit_info.value.code == 2
    assert "--drag" in capsys.readouterr().err


def _size(g):
    return float((g.means.max(0).values - g.means.min(0).values).max())


@pytest.mark.parametrize("point", [(0.7, 0.05, 0.02), (1.5, 0.0, 0.0), (-0.3, 0.2, -0.1)])
def test_a_drag_that_ends_where_it_starts_moves_nothing(rod_ply, tmp_path, point):
    # FROM need not lie on a control: a zero displacement pins the grabbed control where it is.
    out = tmp_path / "out.ply"
    drag = ",".join(map(repr, point))
    assert run(rod_ply, "-o", out, f"--drag={drag}:{drag}") == 0
    g, posed = read_ply(rod_ply), read_ply(out)
    assert (posed.means - g.means).abs().max() <= 1e-6 * _size(g)


def test_a_drag_moves_the_grabbed_end_by_the_displacement_and_pins_the_far_end(rod_ply, tmp_path):
    g = read_ply(rod_ply)
    start = g.means[g.means[:, 0].argmax()].double().numpy()  # a point on the surface, at the right end
    v = np.array([0.0, 0.0, -0.5])
    out = tmp_path / "out.ply"
    drag = ",".join(map(repr, start.tolist())) + ":" + ",".join(map(repr, (start + v).tolist()))
    assert run(rod_ply, "-o", out, f"--drag={drag}", "--pin-radius", "0.5") == 0
    posed = read_ply(out)
    shift = (posed.means - g.means).double().numpy()
    near = np.linalg.norm(g.means.double().numpy() - start, axis=1) < 0.05 * _size(g)
    far = g.means[:, 0].numpy() < -1.3  # over 0.9 object sizes away: pinned
    # About v: the bent rod keeps its length, so the tip also swings inward a little (~0.06 here).
    assert np.linalg.norm(shift[near].mean(0) - v) < 0.15 * np.linalg.norm(v)
    assert shift[near].mean(0) @ v > 0.9 * v @ v
    assert np.abs(shift[far]).max() < 1e-5


@pytest.mark.parametrize("drag, message", [
    ("0,0,0:1e30,0,0", "more than 100 object sizes"),
    ("1.5,0,0:400,0,0", "more than 100 object sizes"),
])
def test_absurd_drags_are_refused(rod_ply, tmp_path, capsys, drag, message):
    assert run(rod_ply, "-o", tmp_path / "out.ply", f"--drag={drag}") == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.ply").exists()


def test_posed_spz_matches_the_posed_ply_within_its_quantisation(rod_ply, tmp_path):
    from uplift.core.splat_io import SPZ_TOLERANCE, read_splat_file

    drags = ("--drag", "-1.5,0,0:-1.5,0,0", "--drag", "1.5,0,0:1.5,0,-0.8")
    assert run(rod_ply, "-o", tmp_path / "posed.ply", *drags) == 0
    assert run(rod_ply, "-o", tmp_path / "posed.spz", *drags) == 0
    ply, spz = read_ply(tmp_path / "posed.ply"), read_splat_file(tmp_path / "posed.spz")
    assert len(spz) == len(ply) and spz.sh_degree == ply.sh_degree
    assert float((spz.means - ply.means).abs().max()) <= SPZ_TOLERANCE["means"] + 1e-6
    assert float((spz.log_scales - ply.log_scales).abs().max()) <= SPZ_TOLERANCE["log_scales"] + 1e-6
    # The posed .spz read back deforms again like a PLY (an .spz input).
    assert run(tmp_path / "posed.spz", "-o", tmp_path / "again.ply", "--drag", "0,0,0:0,0,0") == 0
    again = read_ply(tmp_path / "again.ply")
    assert float((again.means - spz.means).abs().max()) <= 1e-6 * _size(spz)


def test_an_unknown_output_type_is_refused_before_the_solve(rod_ply, tmp_path, capsys):
    assert run(rod_ply, "-o", tmp_path / "posed.obj", "--drag", "1.5,0,0:1.5,0,1") == 2
    err = capsys.readouterr().err
    assert "'.obj' is not a splat file type" in err and "Traceback" not in err
    assert not (tmp_path / "posed.obj").exists()
