"""Pick the compute device once; every hot-path tensor lives there as float32."""
from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def torch_cpu_threads(count: int):
    """Run with `count` torch CPU threads (0: leave the setting alone).

    Small problems (ARAP at M≈512, one preview frame) lose more to thread hand-offs than
    they gain, most of all when another process holds the second core and an OpenMP
    region waits a scheduler slice for its sleeping worker. torch's thread count is
    process-wide, so it is restored right after.
    """
    import torch

    before = torch.get_num_threads()
    change = bool(count) and count != before
    if change:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(before)
