"""Uplift's Gaussians as Blender 5.3's native Gaussian splats (bpy-free: the arrays only;
`blender/native_splats.py` writes them to a point cloud).

The attribute conventions are stated with the others in `core/__init__.py`.
"""
from __future__ import annotations

import numpy as np

# torch (and so `Gaussians`) is imported inside the functions: the extension imports this module
# while it registers, which must work without torch installed.

POSITION, SCALE, ROTATION, RADIANCE = "position", "scale", "rotation", "radiance:base"
POSED = (POSITION, ROTATION, SCALE)  # what the live loop rewrites after each LBS
# Blender attribute type and the name of its per-element value in `foreach_set`.
TYPES = {"FLOAT_VECTOR": "vector", "QUATERNION": "value", "FLOAT4": "vector"}


def sh_rest_name(k: int) -> str:
    return f"radiance:sh_{k}"


def posed_attributes(g) -> dict[str, np.ndarray]:
    """Flat float32 arrays of what a pose changes, ready for `foreach_set`: position [N*3],
    unit wxyz rotation [N*4], linear scale [N*3]. `g`: core.gaussians.Gaussians."""
    import torch

    with torch.no_grad():
        quats = torch.nn.functional.normalize(g.quats.float(), dim=-1)
        arrays = {POSITION: g.means, ROTATION: quats, SCALE: g.log_scales.exp()}
        return {name: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32).reshape(-1)
                for name, t in arrays.items()}


def all_attributes(g) -> dict[str, tuple[str, np.ndarray]]:
    """Every attribute of a native splat cloud: name -> (Blender data type, flat float32 array)."""
    import torch

    out = {name: ("QUATERNION" if name == ROTATION else "FLOAT_VECTOR", array)
           for name, array in posed_attributes(g).items()}
    with torch.no_grad():
        base = torch.cat([g.sh[:, 0], g.opacities[:, None]], dim=1)
        out[RADIANCE] = ("FLOAT4", np.ascontiguousarray(base.cpu().numpy(), dtype=np.float32).reshape(-1))
        for k in range(g.sh.shape[1] - 1):
            out[sh_rest_name(k)] = ("FLOAT_VECTOR",
                                    np.ascontiguousarray(g.sh[:, k + 1].cpu().numpy(), dtype=np.float32).reshape(-1))
    return out


def gaussians_from_attributes(arrays: dict[str, np.ndarray]):
    """The inverse of `all_attributes` (flat arrays by name): what a native cloud holds, as Gaussians."""
    import torch

    from .gaussians import Gaussians

    n = arrays[POSITION].size // 3
    base = torch.as_tensor(arrays[RADIANCE].reshape(n, 4), dtype=torch.float32)
    rest = [torch.as_tensor(arrays[sh_rest_name(k)].reshape(n, 3), dtype=torch.float32)
            for k in range(15) if sh_rest_name(k) in arrays]
    opacity = base[:, 3].clamp(1e-7, 1 - 1e-7)
    return Gaussians(torch.as_tensor(arrays[POSITION].reshape(n, 3), dtype=torch.float32),
                     torch.as_tensor(arrays[ROTATION].reshape(n, 4), dtype=torch.float32),
                     torch.as_tensor(arrays[SCALE].reshape(n, 3), dtype=torch.float32).log(),
                     torch.log(opacity / (1 - opacity)),
                     torch.stack([base[:, :3]] + rest, dim=1))
