"""`ServerConfig`: everything `uplift serve` and the in-process services are built from."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..core.device import DEVICE_CHOICES
from ..core.errors import ConfigError
from ..core.image_io import MAX_PIXELS
from . import protocol as P

SEGMENT_BACKENDS = ("grabcut", "sam", "none")
LIFT_BACKENDS = ("inflate", "trellis", "none")
MESH_LIFT = "mesh"  # lifts onto a given mesh file (`mesh_lift`); in-process only, so not a `--backend` choice
INPAINT_BACKENDS = ("structure_texture", "membrane", "telea", "ns", "fsr_fast", "fsr_best", "patchmatch", "lama",
                    "diffusers", "none")
# 'auto' reads the encoder size from the checkpoint itself, so a vit_b file never meets a vit_h model.
SAM_MODEL_TYPES = ("auto", "vit_h", "vit_l", "vit_b")


@dataclass(frozen=True)
class ServerConfig:
    host: str = P.DEFAULT_HOST
    port: int = P.DEFAULT_PORT
    segment: str = "grabcut"            # one of SEGMENT_BACKENDS; 'none' serves no /v1/segment
    lift: str = "inflate"               # one of LIFT_BACKENDS
    inpaint: str = "structure_texture"  # one of INPAINT_BACKENDS: smooth fill + faded texture, no Telea streaks
    sam_checkpoint: Path | None = None  # segment_anything .pth state dict
    sam_model_type: str = "auto"
    trellis_model: Path | None = None   # local TrellisImageTo3DPipeline directory
    lama_model: Path | None = None      # big-lama TorchScript file
    diffusers_model: Path | None = None  # local Stable Diffusion inpainting directory
    device: str = "auto"
    token: str | None = None            # when set, every request needs "Authorization: Bearer TOKEN"
    max_upload_bytes: int = P.DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    queue_size: int = P.DEFAULT_QUEUE_SIZE   # jobs waiting behind the running one before 503
    request_timeout_s: float = P.DEFAULT_REQUEST_TIMEOUT_S
    seed: int = 0                       # for backends that sample (TRELLIS, diffusers)
    diffusers_steps: int = 30           # denoising steps of the diffusers backend
    mesh_lift: object | None = None     # backends.mesh_lift.MeshLiftConfig, for lift='mesh'

    def __post_init__(self) -> None:
        for name, choices in (("segment", SEGMENT_BACKENDS), ("lift", LIFT_BACKENDS + (MESH_LIFT,)),
                              ("inpaint", INPAINT_BACKENDS), ("sam_model_type", SAM_MODEL_TYPES),
                              ("device", DEVICE_CHOICES)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {getattr(self, name)!r}")
        for name in ("sam_checkpoint", "trellis_model", "lama_model", "diffusers_model"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be an integer in 0..65535, not {self.port!r}")
        if not self.host:
            raise ConfigError("host must not be empty")
        if self.token is not None and (not self.token or any(c.isspace() for c in self.token)):
            raise ConfigError("token must be a non-empty string without spaces")
        for name in ("max_upload_bytes", "max_pixels"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        if self.diffusers_steps < 1:
            raise ConfigError(f"diffusers_steps must be >= 1, not {self.diffusers_steps}")
        if self.queue_size < 0:
            raise ConfigError(f"queue_size must be >= 0, not {self.queue_size}")
        if not self.request_timeout_s > 0:
            raise ConfigError(f"request_timeout_s must be positive, not {self.request_timeout_s}")
        if (self.lift == MESH_LIFT) != (self.mesh_lift is not None):
            raise ConfigError("the mesh lift backend needs a mesh file (--mesh FILE)" if self.mesh_lift is None
                              else f"a mesh file is given but the lift backend is {self.lift!r}, not {MESH_LIFT!r}")
        for backend, (field_name, path_field, hint) in MODEL_PATHS.items():
            if getattr(self, field_name) == backend and getattr(self, path_field) is None:
                raise ConfigError(f"the {backend} {field_name} backend needs {hint}; nothing is downloaded")


# The heavy backends' weights: backend -> (its ServerConfig kind, the ServerConfig path field, what to give).
MODEL_PATHS = {"sam": ("segment", "sam_checkpoint", "--sam-checkpoint PATH (a segment_anything .pth file)"),
               "trellis": ("lift", "trellis_model", "--trellis-model DIR (a local TRELLIS image-to-3D folder)"),
               "lama": ("inpaint", "lama_model", "--lama-model PATH (big-lama TorchScript .pt)"),
               "diffusers": ("inpaint", "diffusers_model",
                             "--diffusers-model DIR (a local Stable Diffusion inpainting folder)")}


@dataclass(frozen=True)
class RayConfig:
    """How `uplift serve --ray` places the model replicas on a Ray cluster (Ray Serve options)."""
    address: str | None = None          # None: start a local Ray instance on this machine; else join this cluster
    replicas: int = 1                   # replicas at start (fixed unless min/max_replicas autoscale)
    min_replicas: int | None = None     # autoscaling bounds, passed to Ray Serve's autoscaling_config
    max_replicas: int | None = None
    gpus_per_replica: float = 0.0       # Ray's num_gpus per replica (0.5: two replicas share a GPU)
    cpus_per_replica: float = 1.0       # Ray's num_cpus per replica; also its thread count (at least 1)
    max_ongoing: int = 1                # Ray's max_ongoing_requests: jobs one replica runs at once
    object_store_mb: int = 512          # object store of a local Ray instance (images pass through it)
    start_timeout_s: float = 600.0      # replicas must load their backends within this time

    def __post_init__(self) -> None:
        if self.address is not None and not self.address.strip():
            raise ConfigError("the Ray address must not be empty (leave it out to start a local Ray instance)")
        for name in ("replicas", "max_ongoing", "object_store_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be an integer >= 1, not {value!r}")
        if not self.cpus_per_replica > 0:
            raise ConfigError(f"cpus-per-replica must be positive, not {self.cpus_per_replica}")
        if not self.gpus_per_replica >= 0:
            raise ConfigError(f"gpus-per-replica must be >= 0, not {self.gpus_per_replica}")
        if (self.min_replicas is None) != (self.max_replicas is None):
            raise ConfigError("give both --min-replicas and --max-replicas to autoscale, or neither")
        if self.autoscaling and not 0 <= self.min_replicas <= self.replicas <= self.max_replicas:
            raise ConfigError(f"need 0 <= min-replicas <= replicas <= max-replicas, not {self.min_replicas} <= "
                              f"{self.replicas} <= {self.max_replicas}")
        if not self.start_timeout_s > 0:
            raise ConfigError(f"start_timeout_s must be positive, not {self.start_timeout_s}")

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None

    @property
    def threads(self) -> int:
        """Threads a replica's torch / OpenCV / BLAS may use: its CPU share, at least one."""
        return max(1, int(self.cpus_per_replica))
