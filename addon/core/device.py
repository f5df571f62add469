"""Pick the compute device once; every hot-path tensor lives there as float32."""
from __future__ import annotations

import functools

from .errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


@functools.lru_cache(maxsize=None)
def pick_device(preference: str = "auto"):
    """Return the torch.device for `preference` ('auto' | 'cpu' | 'cuda').

    'auto' takes CUDA when available, else the CPU. 'cuda' without CUDA is a ConfigError.
    """
    import torch

    if preference not in DEVICE_CHOICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICE_CHOICES)}, not {preference!r}")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but torch sees no CUDA device")
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(preference)
