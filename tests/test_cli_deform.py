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
    assert "drag 1 starts at 0,0,9" in err and "within" in err
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
