"""Animation frames: pose every lifted object from its keyed handles, render, composite.

One frame is a still: ARAP (batch, to convergence) -> LBS -> `edit.render_object` ->
`edit.compose`, the same code path as `uplift edit` and Compose & Export. What does not
change between frames is built once per `FrameRenderer`: the photo, the plate, the hole
(where the plate differs from the photo), and each object's deformer (controls, graph,
skin binding; the ARAP factorisation is cached per handle set inside the solver).

Temporal stability:
- batch ARAP warm-starts from the previous frame but runs to convergence, so a frame's
  pose depends on its keys, not on the order frames are rendered (up to the solver's
  tolerance, which `ANIMATION_TOLERANCE` tightens);
- outside the edited region (hole ∪ dilated silhouette) every frame is the photo itself;
- the seam pass is `PlateSeam`: deterministic, from the static plate, so a still object
  has a still seam (no per-frame inpainting noise).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..core.camera import Camera
from ..core.compositing import SEAM_WIDTH, seam_ring
from ..core.errors import ConfigError, MaskError
from ..core.gaussians import Gaussians
from .edit import Composite, EditConfig, Prepared, compose, render_object_layers

ANIMATION_TOLERANCE = 1e-8  # batch ARAP stop rule for frames: tighter than an edit's, so order does not show


@dataclass(frozen=True)
class ObjectPose:
    """One lifted object at one frame, as read from the scene."""
    uid: str
    handle_idx: np.ndarray   # [H] int64 control indices that are handles (pinned or keyed)
    targets: np.ndarray      # [H, 3] float64 their positions in the root's local frame
    root_matrix: np.ndarray  # [4, 4] the root's world matrix


@dataclass(frozen=True)
class AnimatedObject:
    uid: str
    gaussians: Gaussians      # at rest, root-local frame
    deform: object            # core.deformer.DeformConfig (the live session's), None: no controls
    photo: object = None      # core.render.reprojection.PhotoSource in the root's frame; None: no reprojection


class PlateSeam:
    """The seam pass of `edit.compose` for animation: inside the seam ring, the pixels
    outside the (grown) silhouette take the static plate, the rest keep the composite.
    Deterministic and a function of this frame's silhouette only, so it cannot flicker
    where the object stands still. Quacks like `Services.inpaint`."""

    def __init__(self, plate: np.ndarray):  # uint8 [H, W, 3]
        self.plate = plate

    def inpaint(self, image: np.ndarray, mask: np.ndarray, mode: str = "seam", dilate: int = 0,
                prompt: str | None = None) -> np.ndarray:  # uint8 [H, W, 3], bool [H, W] -> uint8 [H, W, 3]
        if mode != "seam":
            raise ConfigError(f"the animation's seam pass only fills seams, not {mode!r}")
        if image.shape != self.plate.shape or mask.shape != image.shape[:2]:
            raise MaskError(f"seam pass: image {image.shape}, mask {mask.shape} and plate {self.plate.shape} differ")
        outside = seam_ring(mask, int(dilate) or SEAM_WIDTH) & ~mask
        return np.where(outside[..., None], self.plate, image)


def hole_mask(photo: np.ndarray, plate: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """Where the edit may change the photo even with no object: the objects' masks and
    wherever the plate was filled (plate != photo). -> bool [H, W]"""
    if photo.shape != plate.shape:
        raise MaskError(f"the plate is {plate.shape[1]}x{plate.shape[0]} but the photo is "
                        f"{photo.shape[1]}x{photo.shape[0]}")
    hole = np.any(photo != plate, axis=-1)
    for mask in masks:
        if mask.shape != hole.shape:
            raise MaskError(f"an object's mask is {mask.shape[1]}x{mask.shape[0]} but the photo is "
                            f"{hole.shape[1]}x{hole.shape[0]}")
        hole |= mask
    return hole


class FrameRenderer:
    """Renders frames of one scene; keep one per render job (it caches per-object solvers)."""

    def __init__(self, photo: np.ndarray, plate: np.ndarray, masks: list[np.ndarray],
                 objects: list[AnimatedObject], config: EditConfig = EditConfig(), backend: str = "auto"):
        self.photo, self.plate = photo, plate        # uint8 [H, W, 3] each
        self.hole = hole_mask(photo, plate, masks)  # bool [H, W]
        self.objects = {o.uid: o for o in objects}
        self.config, self.backend = config, backend
        self.seam = PlateSeam(plate)
        self._deformers: dict[str, object] = {}
        self._poses: dict[str, tuple[bytes, Gaussians]] = {}  # uid -> (handles + targets, posed local set)
        self._photo_sources: dict[tuple[str, ...], object] = {}  # uids in render order -> combined PhotoSource

    def deformer(self, uid: str):
        if uid not in self._deformers:
            from ..core.deformer import Deformer

            obj = self.objects[uid]
            self._deformers[uid] = Deformer(obj.gaussians, dataclasses.replace(
                obj.deform, batch_tolerance=min(obj.deform.batch_tolerance, ANIMATION_TOLERANCE)))
        return self._deformers[uid]

    def photo_source(self, uids: tuple[str, ...]):
        """The objects' photo sources combined in this order, built once per render (None when one
        of them has no photo, or reprojection is off)."""
        if uids not in self._photo_sources:
            sources = [self.objects[uid].photo for uid in uids]
            photo = None
            if self.config.reproject and sources and all(src is not None for src in sources):
                from ..core.render.reprojection import PhotoSource

                photo = PhotoSource.combine(sources)
            self._photo_sources[uids] = photo
        return self._photo_sources[uids]

    def posed(self, pose: ObjectPose) -> Gaussians:
        """The object's Gaussians at this pose, in world space."""
        import torch

        from ..core.transforms import apply_similarity, similarity_from_matrix

        obj = self.objects[pose.uid]
        local = obj.gaussians
        if obj.deform is not None and len(pose.handle_idx):
            # Same handles as the last frame (a held key, no keys): reuse the pose. Solving again would
            # walk on from the converged state and move pixels by a rounding level: visible flicker.
            key = np.asarray(pose.handle_idx, dtype=np.int64).tobytes() + np.asarray(pose.targets, np.float64).tobytes()
            cached = self._poses.get(pose.uid)
            if cached is not None and cached[0] == key:
                local = cached[1]
            else:
                local = self.deformer(pose.uid).update(
                    torch.as_tensor(pose.handle_idx, dtype=torch.long),
                    torch.as_tensor(pose.targets, dtype=torch.float32), mode="batch").to(local.device)
                self._poses[pose.uid] = (key, local)
        return apply_similarity(local, similarity_from_matrix(pose.root_matrix))

    def frame(self, poses: list[ObjectPose], camera: Camera) -> Composite:
        """Pose, render and composite one frame exactly as a still."""
        from ..core.gaussians import concat

        H, W = self.photo.shape[:2]
        if (camera.width, camera.height) != (W, H):
            raise ConfigError(f"the camera renders {camera.width}x{camera.height} but the photo is {W}x{H}: "
                              "keep the render resolution equal to the photo's (100%)")
        world = concat([self.posed(p) for p in poses])
        # As a still: the photo's own pixels wherever the photo saw the posed surfaces.
        photo = self.photo_source(tuple(p.uid for p in poses))
        layers = render_object_layers(world, camera, self.backend, photo=photo)
        prepared = Prepared(self.photo, camera, camera, self.hole, self.hole, world, self.plate, None)
        # The hole already holds the plate's whole filled area: no further growth.
        return compose(prepared, layers.rgba, self.seam, dataclasses.replace(self.config, hole_dilate=0),
                       unmoved=layers.unmoved, still=layers.still)


def tree_layers(composite: Composite, photo: np.ndarray, plate: np.ndarray) -> dict[str, np.ndarray]:
    """The "Uplift Composite" tree's layers for one frame (`keep.layer_arrays`, the same files
    Compose & Export writes), as float32 [H, W, 4] straight-alpha images, top-down:
    Mix(photo, Mix(AlphaOver(plate, object), seam_fill, seam_mask), region) reproduces `composite.final`."""
    from ..core.image_io import to_float
    from .keep import layer_arrays

    def rgba(array: np.ndarray) -> np.ndarray:
        out = np.ones(array.shape[:2] + (4,), dtype=np.float32)
        if array.dtype == bool:
            out[..., :3] = array[..., None]
        else:
            out[..., :array.shape[2]] = to_float(array)
        return out

    layers = layer_arrays(photo, plate, composite)
    del layers["final"]  # the tree's output, not one of its inputs
    return {name: rgba(array) for name, array in layers.items()}


def flicker(frames: list[np.ndarray], ring: np.ndarray) -> float:
    """Mean absolute frame-to-frame change (0..255) inside `ring` (bool [H, W]) over uint8 frames."""
    if len(frames) < 2 or not ring.any():
        return 0.0
    diffs = [np.abs(a.astype(np.int16) - b.astype(np.int16))[ring].mean() for a, b in zip(frames, frames[1:])]
    return float(np.mean(diffs))
