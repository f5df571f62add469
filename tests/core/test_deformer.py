"""The Deformer: controls -> graph -> ARAP -> LBS, as the Blender handler and the CLI use it."""
import pytest
import torch

from uplift.core import quaternion as Q
from uplift.core.deformer import DeformConfig, Deformer
from uplift.core.errors import ConfigError, ControlError
from uplift.core.gaussians import Gaussians


def rod(n=3000, seed=0):
    """A 2 x 0.3 x 0.3 rod of Gaussians along x, a few of them nearly transparent."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=gen) * torch.tensor([2.0, 0.3, 0.3]) - torch.tensor([1.0, 0.15, 0.15])
    opacity = torch.full((n,), 0.8)
    opacity[:50] = 0.01
    return Gaussians.from_colors(means, torch.rand(n, 3, generator=gen), torch.full((n, 3), 0.02), opacity,
                                 quats=Q.normalize(torch.randn(n, 4, generator=gen)))


CONFIG = DeformConfig(num_controls=48, device="cpu")


def ends(deformer):
    left = int(torch.argmin(deformer.controls[:, 0]))
    right = int(torch.argmax(deformer.controls[:, 0]))
    return left, right


@pytest.mark.parametrize("field, value", [
    ("num_controls", 0), ("skin_k", -1), ("iterations", 1.5), ("graph_knn", True),
    ("batch_tolerance", 0.0), ("min_opacity", 1.0), ("device", "tpu"),
])
def test_config_is_validated(field, value):
    with pytest.raises(ConfigError, match=field if field != "device" else "device"):
        DeformConfig(**{field: value})


def test_builds_controls_on_opaque_gaussians(device):
    g = rod()
    d = Deformer(g, DeformConfig(num_controls=48, device=device.type))
    assert d.controls.shape == (48, 3) and d.num_controls == 48
    assert (d.control_gaussians >= 50).all()  # the transparent ones carry no control
    assert torch.equal(d.controls, g.means.to(device)[d.control_gaussians])
    assert torch.equal(d.deformed_controls, d.controls)


def test_update_moves_handles_to_targets_and_skins(device):
    g = rod()
    d = Deformer(g, DeformConfig(num_controls=48, device=device.type))
    left, right = ends(d)
    targets = d.controls[[left, right]].clone()
    targets[1, 2] += 0.5
    for mode in ("interactive", "batch"):
        posed = d.update(torch.tensor([left, right]), targets, mode=mode)
        assert torch.equal(d.deformed_controls[[left, right]], targets)
        assert posed.means.shape == g.means.shape
        lifted = posed.means[:, 2] - g.means.to(device)[:, 2]
        far_right = g.means[:, 0].to(device) > 0.8
        assert lifted[far_right].mean() > 0.3 and lifted[g.means[:, 0].to(device) < -0.8].abs().mean() < 0.05
        assert torch.equal(posed.log_scales, g.log_scales.to(device)) and torch.equal(posed.sh, g.sh.to(device))


def test_nothing_moves_when_no_handle_moves():
    g = rod()
    d = Deformer(g, CONFIG)
    left, right = ends(d)
    posed = d.update(torch.tensor([left, right]), d.controls[[left, right]], mode="batch")
    assert torch.allclose(posed.means, g.means, atol=1e-5)
    assert torch.allclose(Q.to_matrix(posed.quats), Q.to_matrix(g.quats), atol=1e-5)


def test_rigid_motion_of_handles_moves_every_gaussian_rigidly():
    g = rod()
    d = Deformer(g, CONFIG)
    q = Q.normalize(torch.tensor([0.9, 0.1, -0.3, 0.2]))
    R, t = Q.to_matrix(q), torch.tensor([0.3, 0.2, -0.4])
    handles = torch.tensor([0, 7, 19, 33])
    posed = d.update(handles, d.controls[handles] @ R.T + t, mode="batch")
    assert torch.allclose(posed.means, g.means @ R.T + t, atol=1e-4)
    want = Q.multiply(q.expand(len(g), 4), g.quats)
    assert torch.allclose(Q.to_matrix(posed.quats), Q.to_matrix(want), atol=1e-4)


def test_interactive_drag_reuses_the_factorisation():
    d = Deformer(rod(), CONFIG)
    left, right = ends(d)
    handles = torch.tensor([left, right])
    d.update(handles, d.controls[handles])
    count = d.solver.factorizations
    for step in range(1, 4):  # a drag: same handles, moving target
        targets = d.controls[handles].clone()
        targets[1, 1] += 0.1 * step
        d.update(handles, targets)
    assert d.solver.factorizations == count
    d.update(torch.tensor([left]), d.controls[[left]])
    assert d.solver.factorizations == count + 1


def test_nearest_control():
    d = Deformer(rod(), CONFIG)
    index, distance = d.nearest_control(d.controls[5] + torch.tensor([0.0, 0.0, 1e-3]))
    assert index == 5 and distance == pytest.approx(1e-3, abs=1e-6)


def test_bad_updates_are_refused():
    d = Deformer(rod(), CONFIG)
    with pytest.raises(ControlError, match="twice"):
        d.update(torch.tensor([1, 1]), torch.zeros(2, 3))
    with pytest.raises(ControlError, match="lie in"):
        d.update(torch.tensor([48]), torch.zeros(1, 3))
    with pytest.raises(ControlError, match="shape"):
        d.update(torch.tensor([1]), torch.zeros(2, 3))
    with pytest.raises(ControlError, match="finite"):
        d.update(torch.tensor([1]), torch.tensor([[float("inf"), 0, 0]]))
    with pytest.raises(ControlError, match="mode"):
        d.update(torch.tensor([1]), torch.zeros(1, 3), mode="fast")


def test_reset_returns_to_rest():
    g = rod()
    d = Deformer(g, CONFIG)
    left, right = ends(d)
    d.update(torch.tensor([right]), d.controls[[right]] + 0.3)
    assert torch.equal(d.reset().means, g.means)
    assert torch.equal(d.deformed_controls, d.controls)


def test_tiny_clouds_get_fewer_controls():
    g = rod(10)
    d = Deformer(g, CONFIG)
    assert d.num_controls <= 10
    posed = d.update(torch.tensor([0]), d.controls[[0]] + 1.0, mode="batch")
    assert torch.allclose(posed.means, g.means + 1.0, atol=1e-4)  # one handle: a pure translation
