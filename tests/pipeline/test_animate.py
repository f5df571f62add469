"""pipeline.animate: frames of a keyed edit are stills, independent of render order, stable where nothing moves."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from uplift.core.camera import Camera
from uplift.core.compositing import seam_ring
from uplift.core.deformer import DeformConfig
from uplift.core.errors import ConfigError, MaskError
from uplift.core.gaussians import Gaussians
from uplift.pipeline.animate import (AnimatedObject, FrameRenderer, ObjectPose, PlateSeam, flicker, hole_mask,
                                     tree_layers)

H, W = 120, 160


def bar() -> Gaussians:  # root-local: a 0.6 x 0.2 x 0.4 bar round the origin
    g = torch.Generator().manual_seed(0)
    n = 800
    means = torch.rand(n, 3, generator=g) * torch.tensor([0.6, 0.2, 0.4]) - torch.tensor([0.3, 0.1, 0.2])
    return Gaussians.from_colors(means, torch.rand(n, 3, generator=g), torch.full((n, 3), 0.02), torch.full((n,), 0.9))


ROOT = np.eye(4)
ROOT[:3, 3] = (0.0, 2.0, 0.0)  # in front of Camera.from_fov's camera


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    mask = np.zeros((H, W), dtype=bool)
    mask[40:80, 50:110] = True
    plate = photo.copy()
    plate[mask] = rng.integers(0, 256, (int(mask.sum()), 3), dtype=np.uint8)
    g = bar()
    obj = AnimatedObject("a", g, DeformConfig(num_controls=16, device="cpu"))
    rest = FrameRenderer(photo, plate, [mask], [obj], backend="torch").deformer("a").controls.double().numpy()
    right = int(np.argmax(rest[:, 0]))
    pinned = [int(i) for i in np.argsort(rest[:, 0])[:8]]
    handles = np.array(sorted(pinned + [right]), dtype=np.int64)

    def pose(lift: float) -> ObjectPose:
        targets = rest[handles].copy()
        targets[list(handles).index(right), 2] += lift
        return ObjectPose("a", handles, targets, ROOT)

    return photo, plate, mask, obj, pose


def renderer(scene) -> FrameRenderer:
    photo, plate, mask, obj, _ = scene
    return FrameRenderer(photo, plate, [mask], [obj], backend="torch")


def test_plate_seam_takes_the_plate_only_in_the_outer_ring():
    rng = np.random.default_rng(1)
    plate, image = (rng.integers(0, 256, (40, 50, 3), dtype=np.uint8) for _ in range(2))
    mask = np.zeros((40, 50), dtype=bool)
    mask[10:30, 15:35] = True
    out = PlateSeam(plate).inpaint(image, mask, mode="seam", dilate=3)
    outer = seam_ring(mask, 3) & ~mask
    assert np.array_equal(out[outer], plate[outer]) and np.array_equal(out[~outer], image[~outer])
    with pytest.raises(ConfigError):
        PlateSeam(plate).inpaint(image, mask, mode="fill")


def test_hole_is_the_masks_and_wherever_the_plate_was_filled(scene):
    photo, plate, mask, _, _ = scene
    extra = np.zeros_like(mask)
    extra[5:8, 5:8] = True
    assert np.array_equal(hole_mask(photo, plate, [extra]), mask | extra)
    with pytest.raises(MaskError):
        hole_mask(photo, plate[:-1], [mask])


def test_frames_depend_on_the_keys_not_on_the_render_order(scene):
    photo, *_, pose = scene
    lifts = [0.0, 0.03, 0.06, 0.09, 0.12]
    cam = Camera.from_fov(W, H)
    forward, backward = renderer(scene), renderer(scene)
    ahead = [forward.frame([pose(z)], cam) for z in lifts]
    back = [backward.frame([pose(z)], cam) for z in reversed(lifts)][::-1]
    alone = renderer(scene).frame([pose(lifts[2])], cam)
    for a, b in [*zip(ahead, back), (ahead[2], alone)]:
        d = np.abs(a.final.astype(int) - b.final.astype(int))
        # converged ARAP agrees to its tolerance; a pixel on the alpha threshold may flip its seam
        assert (d.max(-1) > 2).mean() <= 1e-3 and d.mean() < 0.01
    finals = [c.final.astype(int) for c in ahead]
    steps = [np.abs(b - a).mean() for a, b in zip(finals, finals[1:])]
    assert min(steps) > 0.01  # the object does move, every frame
    swept = np.logical_or.reduce([c.region for c in ahead])
    assert 0.2 < (~swept).mean() < 1.0
    for c in ahead:
        assert np.array_equal(c.final[~swept], photo[~swept])


def test_a_held_pose_renders_identical_frames_so_the_seam_cannot_flicker(scene):
    *_, pose = scene
    cam = Camera.from_fov(W, H)
    job = renderer(scene)
    held = [job.frame([pose(0.05)], cam) for _ in range(3)]
    ring = held[0].seam_mask
    assert ring.sum() > 50
    assert flicker([c.final for c in held], ring) == 0.0
    moving = [job.frame([pose(z)], cam).final for z in (0.0, 0.05, 0.1)]
    assert flicker(moving, ring) > 0.5  # the measure does see motion


def test_tree_layers_rebuild_the_final_frame(scene):
    *_, pose = scene
    job = renderer(scene)
    c = job.frame([pose(0.08)], Camera.from_fov(W, H))
    layers = tree_layers(c, job.photo, job.plate)
    # The "Uplift Composite" tree, in numpy: Mix(photo, Mix(AlphaOver(plate, object), seam_fill, seam_mask), region).
    obj, a = layers["object"][..., :3], layers["object"][..., 3:]
    over = obj * a + layers["plate"][..., :3] * (1 - a)
    seamed = np.where(layers["seam_mask"][..., :1] > 0.5, layers["seam_fill"][..., :3], over)
    out = np.where(layers["region"][..., :1] > 0.5, seamed, layers["photo"][..., :3])
    assert np.abs(np.rint(out * 255) - c.final).max() <= 1
    assert sorted(layers) == sorted(("photo", "plate", "object", "seam_fill", "seam_mask", "region"))


def test_the_camera_must_render_the_photo_size(scene):
    *_, pose = scene
    with pytest.raises(ConfigError, match="100%"):
        renderer(scene).frame([pose(0.0)], Camera.from_fov(W // 2, H // 2))


def test_frames_reproject_the_photo_like_a_still(scene):
    """With each object's photo source (in its root's frame), a frame at the rest pose shows the
    photo's own pixels wherever the photo saw the object, as `uplift edit` does."""
    import dataclasses

    from uplift.core.render.reprojection import PhotoSource

    photo, plate, mask, obj, pose = scene
    camera = Camera.from_fov(W, H)
    in_root = Camera(W, H, camera.K, camera.world_to_camera @ ROOT)  # the photo camera in the root's frame
    seen = dataclasses.replace(obj, photo=PhotoSource.from_photo(photo, in_root, obj.gaussians, backend="torch"))
    with_photo = FrameRenderer(photo, plate, [mask], [seen], backend="torch").frame([pose(0.0)], camera)
    without = renderer(scene).frame([pose(0.0)], camera)
    solid = with_photo.object_rgba[..., 3] > 0.99
    assert solid.mean() > 0.05  # the object covers part of the frame
    assert np.abs(with_photo.final[solid].astype(int) - photo[solid]).mean() < 1.0
    assert np.abs(without.final[solid].astype(int) - photo[solid]).mean() > 20  # lifted colours are not the photo
