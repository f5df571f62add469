"""The deformation pipeline over one Gaussian set: controls -> graph -> ARAP -> LBS.

    deformer = Deformer(gaussians, DeformConfig())        # builds everything once
    handle = deformer.nearest_control(point)[0]           # pick a control to drag
    posed = deformer.update(torch.tensor([handle]), torch.tensor([[x, y, z]]))

Built once: the control points (farthest-point sampling over opaque Gaussians), the
topology-preserving control graph, the ARAP solver and the skin binding. Each
`update` moves the given handles to their targets, relaxes the other controls with
ARAP (warm-started from the previous update), and skins the Gaussians. The ARAP
system is refactorised only when the handle set changes, so a drag (same handles,
moving targets) costs a few small matrix products per frame.

Used by the Blender depsgraph handler (interactive mode) and by `uplift deform` and
`uplift edit` (batch mode).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .arap import ArapResult, ArapSolver
from .device import DEVICE_CHOICES, pick_device
from .errors import ConfigError, ControlError
from .gaussians import Gaussians
from .graph import ControlGraph, build_control_graph
from .sampling import control_candidates, farthest_point_sampling
from .skinning import SkinBinding, bind, deform


@dataclass
class DeformConfig:
    num_controls: int = 512        # control points (farthest-point sampled)
    graph_knn: int = 6             # Euclidean k-NN that defines connectivity
    geodesic_k: int = 8            # ARAP neighbours: nearest by shortest path in that graph
    skin_k: int = 4                # controls blended per Gaussian
    iterations: int = 3            # ARAP iterations per interactive update
    batch_tolerance: float = 1e-5  # batch mode stops when the relative energy change is below this
    batch_max_iterations: int = 500
    min_opacity: float = 0.05      # Gaussians less opaque than this carry no control point
    seed: int = 0                  # farthest-point sampling start
    device: str = "auto"           # 'auto' | 'cpu' | 'cuda'

    def __post_init__(self) -> None:
        positive = ("num_controls", "graph_knn", "geodesic_k", "skin_k", "iterations", "batch_max_iterations")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if not 0 < self.batch_tolerance < 1:
            raise ConfigError(f"batch_tolerance must lie in (0, 1), not {self.batch_tolerance!r}")
        if not 0 <= self.min_opacity < 1:
            raise ConfigError(f"min_opacity must lie in [0, 1), not {self.min_opacity!r}")
        if self.device not in DEVICE_CHOICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICE_CHOICES)}, not {self.device!r}")


class Deformer:
    """Controls, graph, ARAP solver and skin binding for one Gaussian set."""

    def __init__(self, g: Gaussians, config: DeformConfig | None = None) -> None:
        self.config = config = config or DeformConfig()
        if len(g) == 0:
            raise ControlError("cannot deform an empty Gaussian set")
        self.device = pick_device(config.device)
        self.gaussians = g.to(self.device)
        candidates = control_candidates(self.gaussians, config.min_opacity)
        picked = farthest_point_sampling(self.gaussians.means[candidates], config.num_controls, seed=config.seed)
        self.control_gaussians: Tensor = candidates[picked]                 # [M] long, Gaussian index per control
        self.controls: Tensor = self.gaussians.means[self.control_gaussians].contiguous()  # [M, 3] rest
        self.graph: ControlGraph = build_control_graph(self.controls, knn=config.graph_knn, geodesic_k=config.geodesic_k)
        self.solver = ArapSolver(self.controls, self.graph, device=self.device)
        self.binding: SkinBinding = bind(self.gaussians.means, self.controls, config.skin_k)
        self.last_result: ArapResult = self.solver.result()

    @property
    def num_controls(self) -> int:
        return self.controls.shape[0]

    @property
    def deformed_controls(self) -> Tensor:  # [M, 3] control positions after the last update
        return self.last_result.points

    def nearest_control(self, point) -> tuple[int, float]:  # point: [3] -> (index, rest distance)
        """The control point nearest to `point` in the rest pose, and its distance."""
        p = torch.as_tensor(point, dtype=torch.float32, device=self.device).reshape(3)
        dist = (self.controls - p).square().sum(1)
        index = int(torch.argmin(dist))
        return index, float(dist[index].sqrt())

    def reset(self) -> Gaussians:
        """Back to the rest pose (drops the warm start)."""
        self.solver.reset()
        self.last_result = self.solver.result()
        return self.gaussians

    def update(
        self,
        handle_indices: Tensor,  # [H] long, distinct control indices
        targets: Tensor,         # [H, 3] where those controls go
        mode: str = "interactive",
        iterations: int | None = None,
    ) -> Gaussians:
        """Pose the controls (ARAP) and skin the Gaussians; returns the posed set.

        'interactive' runs `iterations` (default: config.iterations) warm-started ARAP
        iterations; 'batch' iterates to convergence. Handles land exactly on targets.
        """
        handles = torch.as_tensor(handle_indices, dtype=torch.long, device=self.device).reshape(-1)
        targets = torch.as_tensor(targets, dtype=torch.float32, device=self.device)
        if tuple(targets.shape) != (handles.numel(), 3):
            raise ControlError(f"{handles.numel()} handles need targets of shape [{handles.numel()}, 3], got {tuple(targets.shape)}")
        if handles.numel() and (int(handles.min()) < 0 or int(handles.max()) >= self.num_controls):
            raise ControlError(f"handle indices must lie in [0, {self.num_controls})")
        if torch.unique(handles).numel() != handles.numel():
            raise ControlError("the same control point is grabbed twice")
        if not bool(torch.isfinite(targets).all()):
            raise ControlError("handle targets must be finite numbers")
        if mode not in ("interactive", "batch"):
            raise ControlError(f"mode must be 'interactive' or 'batch', not {mode!r}")
        self.solver.set_handles(handles)
        self.last_result = self.solver.solve(
            targets, mode=mode, iterations=iterations or self.config.iterations,
            tolerance=self.config.batch_tolerance, max_iterations=self.config.batch_max_iterations,
        )
        r = self.last_result
        return deform(self.gaussians, self.binding, self.controls, r.points, r.rotations, r.quaternions)
