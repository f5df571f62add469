"""The 3D Gaussian splat set, stored the way the 3DGS PLY stores it.

Parameters are kept in their raw (PLY) form so that write-then-read is exact:
log scales, opacity logits, wxyz quaternions (not necessarily unit in a file;
normalised where used) and SH coefficients with `sh[:, 0]` the DC term.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

SH_C0 = 0.28209479177387814  # Y_0^0; colour = 0.5 + SH_C0 * f_dc for degree 0


def sh_degree_for(num_coeffs: int) -> int:
    degree = int(round(num_coeffs ** 0.5)) - 1
    if (degree + 1) ** 2 != num_coeffs or not 0 <= degree <= 3:
        raise ValueError(f"{num_coeffs} SH coefficients per channel is not a degree 0-3 basis")
    return degree


@dataclass
class Gaussians:
    means: Tensor           # [N, 3] float32, world units
    quats: Tensor           # [N, 4] float32, wxyz
    log_scales: Tensor      # [N, 3] float32, natural log of the standard deviations
    opacity_logits: Tensor  # [N]    float32, logit of the opacity
    sh: Tensor              # [N, K, 3] float32, K = (degree+1)^2; sh[:, 0] is f_dc
    normals: Tensor | None = None  # [N, 3] float32, kept only to round-trip files that have them
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # unknown per-vertex properties, [N] each

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        expected = {
            "means": (n, 3), "quats": (n, 4), "log_scales": (n, 3), "opacity_logits": (n,),
        }
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"Gaussians.{name} has shape {got}, expected {shape}")
        if self.sh.ndim != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise ValueError(f"Gaussians.sh has shape {tuple(self.sh.shape)}, expected ({n}, K, 3)")
        sh_degree_for(self.sh.shape[1])
        if self.normals is not None and tuple(self.normals.shape) != (n, 3):
            raise ValueError(f"Gaussians.normals has shape {tuple(self.normals.shape)}, expected ({n}, 3)")

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_for(self.sh.shape[1])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def scales(self) -> Tensor:  # [N, 3]
        return self.log_scales.exp()

    @property
    def opacities(self) -> Tensor:  # [N] in (0, 1)
        return torch.sigmoid(self.opacity_logits)

    @property
    def base_colors(self) -> Tensor:  # [N, 3] view-independent colour (DC term only), may leave [0, 1]
        return 0.5 + SH_C0 * self.sh[:, 0]

    def replace(self, **changes) -> "Gaussians":
        return dataclasses.replace(self, **changes)

    def to(self, device: torch.device | str) -> "Gaussians":
        return self.replace(**{
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        })

    def subset(self, index: Tensor) -> "Gaussians":  # index: [M] long or [N] bool
        idx_np = index.detach().cpu().numpy()
        return self.replace(
            **{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)
               if isinstance(getattr(self, f.name), Tensor)},
            extra={k: v[idx_np] for k, v in self.extra.items()},
        )

    @classmethod
    def from_colors(
        cls,
        means: Tensor,            # [N, 3]
        colors: Tensor,           # [N, 3] linear-in-file RGB in [0, 1]
        scales: Tensor,           # [N, 3] standard deviations (> 0)
        opacities: Tensor,        # [N] in (0, 1)
        quats: Tensor | None = None,  # [N, 4] wxyz; identity when None
    ) -> "Gaussians":
        """Build degree-0 Gaussians from activated values (the inverse of the properties above)."""
        n = means.shape[0]
        if quats is None:
            quats = means.new_zeros((n, 4))
            quats[:, 0] = 1.0
        eps = 1e-6
        op = opacities.clamp(eps, 1 - eps)
        return cls(
            means=means.float(),
            quats=quats.float(),
            log_scales=scales.clamp_min(1e-12).log().float(),
            opacity_logits=torch.log(op / (1 - op)).float(),
            sh=((colors.float() - 0.5) / SH_C0)[:, None, :],
        )


def concat(parts: "list[Gaussians]") -> Gaussians:
    """One set holding every Gaussian of `parts` (same SH degree; normals and extras kept
    only when every part has them)."""
    if not parts:
        raise ValueError("concat needs at least one set of Gaussians")
    degrees = {g.sh_degree for g in parts}
    if len(degrees) != 1:
        raise ValueError(f"cannot concatenate Gaussians of SH degrees {sorted(degrees)}")
    normals = None if any(g.normals is None for g in parts) else torch.cat([g.normals for g in parts])
    shared = set.intersection(*(set(g.extra) for g in parts))
    return Gaussians(
        means=torch.cat([g.means for g in parts]),
        quats=torch.cat([g.quats for g in parts]),
        log_scales=torch.cat([g.log_scales for g in parts]),
        opacity_logits=torch.cat([g.opacity_logits for g in parts]),
        sh=torch.cat([g.sh for g in parts]),
        normals=normals,
        extra={k: np.concatenate([g.extra[k] for g in parts]) for k in sorted(shared)},
    )
