"""Build the configured backends from a `ServerConfig` (`segment`, `lift`, `inpaint` names).

Kept apart from `base.py`, which every backend imports: importing a backend module never
imports the others. Each backend loads lazily, on first use.
"""
from __future__ import annotations

from .base import Inpainter, Lifter, Segmenter


def build_segmenter(config) -> Segmenter | None:
    if config.segment == "grabcut":
        from .grabcut import GrabCutSegmenter
        return GrabCutSegmenter()
    if config.segment == "sam":
        from .sam import SamSegmenter
        return SamSegmenter(config.sam_checkpoint, config.sam_model_type, config.device)
    return None


def build_lifter(config) -> Lifter | None:
    if config.lift == "inflate":
        from .inflate import InflateLifter
        return InflateLifter(device=config.device)
    if config.lift == "trellis":
        from .trellis import TrellisLifter
        return TrellisLifter(config.trellis_model, config.device, seed=config.seed)
    if config.lift == "mesh":
        from .mesh_lift import MeshLifter
        return MeshLifter(config.mesh_lift, config.device)
    return None


def build_inpainter(config) -> Inpainter | None:
    from .opencv_inpaint import METHODS, OpenCVInpainter

    if config.inpaint in METHODS:
        return OpenCVInpainter(config.inpaint)
    if config.inpaint == "lama":
        from .lama import LamaInpainter
        return LamaInpainter(config.lama_model, config.device)
    if config.inpaint == "diffusers":
        from .diffusers_inpaint import DiffusersInpainter
        return DiffusersInpainter(config.diffusers_model, config.device, seed=config.seed, steps=config.diffusers_steps)
    return None


BUILDERS = {"segment": build_segmenter, "lift": build_lifter, "inpaint": build_inpainter}
