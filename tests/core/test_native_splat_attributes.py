"""core/native_splats.py: Uplift's Gaussians as Blender 5.3's splat attributes (bpy-free half;
tests/blender/test_native_splats.py checks the same arrays against Blender's own PLY importer)."""
import numpy as np
import torch

from uplift.core import native_splats as ns
from uplift.core.gaussians import SH_C0, Gaussians


def _gaussians(n=50, degree=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(torch.randn(n, 3, generator=gen), torch.randn(n, 4, generator=gen) * 3,
                     torch.randn(n, 3, generator=gen) - 3, torch.randn(n, generator=gen) * 2,
                     torch.randn(n, (degree + 1) ** 2, 3, generator=gen))


def test_attributes_hold_the_stated_conventions():
    g = _gaussians()
    arrays = ns.all_attributes(g)
    assert [arrays[name][0] for name in (ns.POSITION, ns.ROTATION, ns.SCALE, ns.RADIANCE)] == \
        ["FLOAT_VECTOR", "QUATERNION", "FLOAT_VECTOR", "FLOAT4"]
    assert sorted(k for k in arrays if k.startswith("radiance:sh_")) == [f"radiance:sh_{k}" for k in range(8)]
    rotation = arrays[ns.ROTATION][1].reshape(-1, 4)
    assert np.allclose(np.linalg.norm(rotation, axis=1), 1, atol=1e-6)  # unit wxyz, same sign and order as ours
    assert np.allclose(rotation, (g.quats / g.quats.norm(dim=1, keepdim=True)).numpy(), atol=1e-6)
    assert np.allclose(arrays[ns.SCALE][1].reshape(-1, 3), g.log_scales.exp().numpy(), rtol=1e-6)  # linear
    base = arrays[ns.RADIANCE][1].reshape(-1, 4)
    assert np.array_equal(base[:, :3], g.sh[:, 0].numpy())  # raw DC coefficients, not colours
    assert np.allclose(0.5 + SH_C0 * base[:, :3], g.base_colors.numpy(), atol=1e-6)
    assert np.allclose(base[:, 3], g.opacities.numpy(), atol=1e-7)  # opacity, not its logit
    assert np.array_equal(arrays["radiance:sh_4"][1].reshape(-1, 3), g.sh[:, 5].numpy())
    assert all(a.dtype == np.float32 and a.flags.c_contiguous and a.ndim == 1 for _t, a in arrays.values())


def test_round_trip_and_posed_subset():
    g = _gaussians(degree=3)
    arrays = {name: values for name, (_kind, values) in ns.all_attributes(g).items()}
    back = ns.gaussians_from_attributes(arrays)
    unit = g.quats / g.quats.norm(dim=1, keepdim=True)
    assert torch.allclose(back.means, g.means) and torch.allclose(back.quats, unit, atol=1e-6)
    assert torch.allclose(back.log_scales, g.log_scales, atol=1e-5) and torch.equal(back.sh, g.sh)
    assert torch.allclose(back.opacity_logits, g.opacity_logits, atol=1e-3)
    posed = ns.posed_attributes(g)
    assert list(posed) == list(ns.POSED) and all(np.array_equal(posed[k], arrays[k]) for k in posed)
