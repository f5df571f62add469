"""The edit pipeline over real photos with the embedded backends (GrabCut, inflation
lifting, Telea): identity, locality of the change, drags, working resolution, --keep
files, progress, and input validation."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from uplift.core.camera import Camera
from uplift.core.compositing import dilate
from uplift.core.errors import ConfigError, ControlError, MaskError
from uplift.core.image_io import load_image, load_mask
from uplift.pipeline.edit import (
    STAGES, Drag, EditConfig, EditRequest, EditSpec, apply_edit, drag_handles, prepare, render_object, run_edit,
)
from uplift.services.config import ServerConfig
from uplift.services.local import LocalServices

SMALL = (450, 300)                    # truck.jpg at a quarter of its size: fast on a CPU
TRUCK_BOX_SMALL = (19, 69, 431, 214)  # the truck in that image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.fixture(scope="module")
def services():
    return LocalServices(ServerConfig(segment="grabcut", lift="inflate", inpaint="telea"))


@pytest.fixture(scope="module")
def small_truck(shared_data):
    image = load_image(shared_data / "photos" / "truck.jpg")
    return cv2.resize(image, SMALL, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def prepared(small_truck, services):
    request = EditRequest(small_truck, Camera.from_fov(*SMALL), box=TRUCK_BOX_SMALL)
    return prepare(request, services, EditConfig())


def test_segmentation_finds_the_truck(prepared):
    ys, xs = np.nonzero(prepared.mask)
    x0, y0, x1, y1 = TRUCK_BOX_SMALL
    assert prepared.mask.mean() > 0.2  # the truck is about a third of the picture
    assert xs.min() >= x0 - 1 and xs.max() <= x1 + 1 and ys.min() >= y0 - 1 and ys.max() <= y1 + 1
    assert prepared.plate.shape == prepared.image.shape


DOG_BOX = (0, 205, 430, 534)  # the bulldog in dog.jpg (800x534, below the working-size cap)


def test_identity_keeps_the_photo_outside_and_reproduces_it_inside(shared_data, services):
    """No edit: exactly the photo outside the object's mask (its edge halo, which the plate's
    hole also takes, included: nothing moved next to it), >= 35 dB inside it, and the
    reprojected render alone (before compose keeps unmoved pixels) >= 35 dB too; without
    reprojection the lifted colours alone stay well below. At the photo's own resolution."""
    photo = load_image(shared_data / "photos" / "dog.jpg")
    config = EditConfig()
    request = EditRequest(photo, Camera.from_fov(photo.shape[1], photo.shape[0]), box=DOG_BOX)
    result = run_edit(request, EditSpec(), services, config)
    mask, final = result.prepared.mask, result.final
    assert final.shape == photo.shape and final.dtype == np.uint8
    assert mask.mean() > 0.15
    assert np.array_equal(final[~mask], photo[~mask])  # exactly the photo's pixels
    assert (result.prepared.plate[~mask & dilate(mask, config.hole_dilate)] != photo[~mask & dilate(
        mask, config.hole_dilate)]).any()  # (the plate did change that halo)
    inside = psnr(final[mask], photo[mask])
    assert inside >= 35.0, f"identity edit reproduces the object at only {inside:.1f} dB"
    # The render alone, one pixel in from the mask's edge: on the edge itself the photo mixes the
    # object with what is behind it, and the render's straight colour is the object's own there
    # (`PhotoSource.sampled_image`); compose keeps those pixels unmoved anyway (`inside` above).
    interior = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    object_only = psnr(np.round(result.composite.object_rgba[..., :3] * 255)[interior], photo[interior])
    assert object_only >= 35.0, f"the reprojected object alone reaches only {object_only:.1f} dB"
    lifted = render_object(result.prepared.gaussians, result.prepared.work_camera, "torch")
    assert psnr(np.round(lifted[..., :3] * 255)[interior], photo[interior]) < object_only - 5


def test_identity_holds_when_the_models_see_a_smaller_photo(shared_data, services):
    """Working at a third of the photo's size, no edit still gives the photo back inside the object:
    the rest coverage that decides which pixels are unmoved is rendered and resampled exactly as the
    posed layers are (measured 69.6 dB; 30.6 dB when it was rendered at the photo's own size)."""
    image = cv2.resize(load_image(shared_data / "photos" / "truck.jpg"), (900, 600), interpolation=cv2.INTER_AREA)
    request = EditRequest(image, Camera.from_fov(900, 600), box=tuple(2 * v for v in TRUCK_BOX_SMALL))
    result = run_edit(request, EditSpec(), services, EditConfig(max_working_size=300))
    mask = result.prepared.mask
    assert result.prepared.work_scale < 0.5
    assert psnr(result.final[mask], image[mask]) >= 50.0


def test_reprojection_samples_the_full_size_photo(shared_data, services):
    """Rendered at a third of the photo's size, the reprojected object still carries the photo's
    full-resolution detail: much closer to the photo than the upsampled small render."""
    image = load_image(shared_data / "photos" / "truck.jpg")
    image = cv2.resize(image, (900, 600), interpolation=cv2.INTER_AREA)
    request = EditRequest(image, Camera.from_fov(900, 600), box=tuple(2 * v for v in TRUCK_BOX_SMALL))
    p = prepare(request, services, EditConfig(max_working_size=300))
    photo = p.photo_source("torch")
    full = render_object(p.gaussians, p.work_camera, "torch", photo=photo, output_size=(900, 600))
    small = render_object(p.gaussians, p.work_camera, "torch", photo=photo)
    upsampled = cv2.resize(small, (900, 600), interpolation=cv2.INTER_LINEAR)
    inner = cv2.erode(p.mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    sharp, blurred = (psnr(np.round(x[..., :3] * 255)[inner], image[inner]) for x in (full, upsampled))
    assert sharp >= 35.0 and sharp > blurred + 3, (sharp, blurred)


def test_a_turned_object_keeps_photo_detail_on_its_seen_side(prepared, services):
    """Yaw 15 deg: reprojection changes the object (photo pixels instead of lifted colours) and
    leaves the photo outside the region alone; turned off, the render is the lifted colours."""
    edit = EditSpec(rotate_deg=(15, 0, 0))
    on = apply_edit(prepared, edit, services, EditConfig())
    off = apply_edit(prepared, edit, services, EditConfig(reproject=False))
    sil = on.composite.silhouette & off.composite.silhouette
    diff = np.abs(on.final.astype(float) - off.final.astype(float))[sil].mean()
    assert diff > 2.0  # the two renders really differ on the object
    assert np.array_equal(on.final[~on.composite.region], prepared.image[~on.composite.region])


def test_identity_outside_is_exact_on_the_truck_too(prepared, services):
    config = EditConfig()
    result = apply_edit(prepared, EditSpec(), services, config)
    outside = ~prepared.mask  # above the working size too (the rest coverage resampled as the render is)
    assert np.array_equal(result.final[outside], prepared.image[outside])
    # The object comes back close to the photo (the truck's sharp edges cost the inflate lifter a
    # little; the dog above shows the 30 dB bound).
    assert psnr(result.final[prepared.mask], prepared.image[prepared.mask]) > 27.0


def test_yaw_changes_only_the_object_region(prepared, services):
    config = EditConfig()
    result = apply_edit(prepared, EditSpec(rotate_deg=(20, 0, 0)), services, config)
    photo, final, c = prepared.image, result.final, result.composite
    # Recompute the region from its definition, independently of the pipeline's own mask.
    union = dilate(prepared.mask, config.hole_dilate) | dilate(c.silhouette, config.silhouette_dilate)
    assert np.array_equal(final[~union], photo[~union])
    changed = np.abs(final.astype(int) - photo.astype(int)).sum(-1) > 30
    assert changed[prepared.mask].mean() > 0.2, "a 20° yaw should visibly change the object"
    # The turned truck's outline moved, but it still stands where it stood.
    iou = (c.silhouette & prepared.mask).sum() / (c.silhouette | prepared.mask).sum()
    assert 0.5 < iou < 0.97
    assert result.timings.keys() == set(STAGES)


def test_translation_moves_the_silhouette_by_the_object_size(prepared, services):
    result = apply_edit(prepared, EditSpec(translate=(0.1, 0.0, 0.0)), services, EditConfig())
    xs_before = np.nonzero(prepared.mask)[1]
    xs_after = np.nonzero(result.composite.silhouette)[1]
    width = xs_before.max() - xs_before.min()
    shift = xs_after.mean() - xs_before.mean()
    assert shift == pytest.approx(0.1 * width, rel=0.25)


def test_a_drag_moves_the_grabbed_part_and_pins_the_far_side(prepared):
    from uplift.core.deformer import DeformConfig, Deformer

    deformer = Deformer(prepared.gaussians, DeformConfig(num_controls=128))
    frame = prepared.frame
    drag = Drag((0.4, -0.1, 0.0), (0.4, -0.3, 0.0))  # lift the cab's roof on the right up
    idx, targets = drag_handles(deformer, (drag,), frame, prepared.work_camera, pin_radius=0.5)
    posed = deformer.update(torch.as_tensor(idx), torch.as_tensor(targets, dtype=torch.float32), mode="batch")
    # Handles land on their targets; the grabbed one moved by 0.2 object sizes straight up (world +Z).
    assert torch.allclose(deformer.deformed_controls[torch.as_tensor(idx)].double().cpu(),
                          torch.as_tensor(targets), atol=1e-4)
    moves = targets - deformer.controls[torch.as_tensor(idx)].double().cpu().numpy()
    moving = np.linalg.norm(moves, axis=1) > 1e-9
    assert moving.sum() == 1 and len(idx) > 10  # one grabbed control, many pinned ones
    assert np.allclose(moves[moving][0], [0, 0, 0.2 * frame.size], atol=1e-6)
    # Gaussians on the far (left) side stay; those around the drag (seen from the camera) go up.
    rest = prepared.gaussians.means.double().cpu().numpy()
    after = posed.means.double().cpu().numpy()
    x_rel = (rest[:, 0] - frame.center[0]) / frame.size
    z_rel = (rest[:, 2] - frame.center[2]) / frame.size
    far = x_rel < -0.3
    near = (np.abs(x_rel - 0.4) < 0.05) & (np.abs(z_rel - 0.1) < 0.05)
    assert far.sum() > 100 and near.sum() > 10
    assert np.abs(after[far] - rest[far]).max() < 1e-3 * frame.size
    assert (after[near, 2] - rest[near, 2]).mean() > 0.1 * frame.size


def test_prepared_reuses_its_deformer_and_an_edit_never_depends_on_the_one_before(prepared):
    from uplift.core.deformer import DeformConfig
    from uplift.pipeline.edit import deform

    config = EditConfig(deform=DeformConfig(num_controls=128))
    lift_roof = EditSpec(drags=(Drag((0.4, -0.1, 0.0), (0.4, -0.3, 0.0)),))
    push_back = EditSpec(drags=(Drag((-0.3, 0.0, 0.0), (-0.3, 0.0, 0.2)),))
    first = deform(prepared, lift_roof, config)[0]
    deformer = prepared.deformer(config.deform)
    deform(prepared, push_back, config)
    again = deform(prepared, lift_roof, config)[0]
    assert prepared.deformer(config.deform) is deformer  # FPS, graph and binding built once
    size = prepared.frame.size
    assert (first.means - prepared.gaussians.means).abs().max() > 0.05 * size
    assert (again.means - first.means).abs().max() <= 1e-6 * size  # solved from rest, not from push_back
    assert prepared.deformer(DeformConfig(num_controls=64)) is not deformer  # another config, another deformer


def test_drags_far_from_the_object_are_refused(prepared, services):
    with pytest.raises(ControlError, match="object size"):
        apply_edit(prepared, EditSpec(drags=(Drag((3, 0, 0), (3, -1, 0)),)), services, EditConfig())


def test_working_resolution_keeps_full_size_pixels_exact(shared_data, services):
    """A photo above max_working_size is processed small but composited at full size: the
    output has the photo's size and every pixel outside the region is the photo's."""
    image = load_image(shared_data / "photos" / "truck.jpg")
    image = cv2.resize(image, (900, 600), interpolation=cv2.INTER_AREA)
    request = EditRequest(image, Camera.from_fov(900, 600), box=tuple(2 * v for v in TRUCK_BOX_SMALL))
    config = EditConfig(max_working_size=300)
    result = run_edit(request, EditSpec(rotate_deg=(0, 0, 5)), services, config)
    p, c = result.prepared, result.composite
    assert (p.work_camera.width, p.work_camera.height) == (300, 200)
    assert result.final.shape == image.shape and p.mask.shape == image.shape[:2]
    assert np.array_equal(result.final[~c.region], image[~c.region])
    hole = dilate(p.mask, 3 * config.hole_dilate)  # the hole at full size is 3x the working radius
    assert np.array_equal(p.plate[~hole], image[~hole])


def test_progress_sees_every_stage_in_order(prepared, services, small_truck):
    seen = []

    import contextlib

    @contextlib.contextmanager
    def stage(name):
        seen.append(name)
        yield

    request = EditRequest(small_truck, Camera.from_fov(*SMALL), mask=prepared.mask)
    result = run_edit(request, EditSpec(scale=1.1), services, EditConfig(), stage=stage)
    assert seen == list(STAGES)
    assert all(t >= 0 for t in result.timings.values())
    assert result.prepared.segment_score is None  # a given mask is not segmented again


def test_keep_writes_every_intermediate_with_a_readme(prepared, services, tmp_path):
    from uplift.core.ply import read_ply
    from uplift.pipeline.keep import KEPT_FILES, write_kept

    edit = EditSpec(rotate_deg=(10, 0, 0))
    config = EditConfig()
    result = apply_edit(prepared, edit, services, config)
    write_kept(result, tmp_path, photo_name="truck.jpg", edit=edit, config=config)
    readme = (tmp_path / "README.txt").read_text()
    for name in KEPT_FILES:
        assert (tmp_path / name).is_file(), name
        assert name in readme
    h, w = prepared.image.shape[:2]
    assert np.array_equal(load_mask(tmp_path / "mask.png", shape=(h, w)), prepared.mask)
    assert np.array_equal(load_image(tmp_path / "final.png"), result.final)
    assert len(read_ply(tmp_path / "object.ply")) == len(prepared.gaussians)
    assert torch.allclose(read_ply(tmp_path / "edited.ply").means, result.edited.means.cpu())
    assert Camera.load(tmp_path / "camera.json").to_dict() == prepared.camera.to_dict()
    info = json.loads((tmp_path / "edit.json").read_text())
    assert set(info["timings_s"]) == set(STAGES) and info["edit"]["rotate_deg"] == [10.0, 0.0, 0.0]
    assert not list(tmp_path.glob("*.part"))
    # The compositor tree's formula over the kept layers rebuilds final.png (8-bit rounding only).
    layer = {name: load_image(tmp_path / f"{name}.png") for name in ("photo", "plate", "seam_fill")}
    from uplift.core.image_io import load_rgba

    obj = load_rgba(tmp_path / "object.png") / 255.0
    over = np.rint((obj[..., :3] * obj[..., 3:] + layer["plate"] / 255.0 * (1 - obj[..., 3:])) * 255)
    seam = load_mask(tmp_path / "seam_mask.png", allow_empty=True)[..., None]
    region = load_mask(tmp_path / "region.png")[..., None]
    rebuilt = np.where(region, np.where(seam, layer["seam_fill"], over), layer["photo"])
    assert np.abs(rebuilt - result.final.astype(np.float64)).max() <= 1


@pytest.mark.parametrize("bad, error", [
    (dict(box=(10, 10, 5, 20)), ConfigError),
    (dict(box=(500, 10, 600, 20)), ConfigError),
    (dict(points=((460, 10),)), ConfigError),
    (dict(), ConfigError),
    (dict(mask=np.zeros((300, 450), bool)), MaskError),
    (dict(mask=np.ones((10, 10), bool)), MaskError),
])
def test_bad_requests_are_refused_clearly(small_truck, bad, error):
    with pytest.raises(error):
        EditRequest(small_truck, Camera.from_fov(*SMALL), **bad)


def test_camera_must_match_the_photo(small_truck):
    with pytest.raises(ConfigError, match="camera"):
        EditRequest(small_truck, Camera.from_fov(100, 100), box=TRUCK_BOX_SMALL)


@pytest.mark.parametrize("bad", [dict(scale=0.0), dict(scale=float("nan")), dict(rotate_deg=(1000, 0, 0)),
                                 dict(translate=(0, 0, float("inf"))), dict(rotate_deg=(1, 2))])
def test_absurd_edits_are_refused(bad):
    with pytest.raises(ConfigError):
        EditSpec(**bad)


@pytest.mark.parametrize("ends", [((0, 0, 0), (1e30, 0, 0)), ((0, 0, 0), (0, 101, 0)), ((0, 0, 0), (0, 0, float("nan")))])
def test_absurd_drags_are_refused(ends):
    with pytest.raises(ControlError, match="object sizes|finite"):
        Drag(*ends)


def test_bad_config_is_refused():
    with pytest.raises(ConfigError):
        EditConfig(max_working_size=10)
    with pytest.raises(ConfigError, match=r"seam_width \+ seam_offset"):
        EditConfig(seam_width=4, seam_offset=1, silhouette_dilate=4)
    assert EditSpec().is_identity and EditSpec(drags=(Drag((0, 0, 0), (0, 0, 0)),)).is_identity
    assert not EditSpec(scale=1.5).is_identity


def test_layers_without_openexr_skip_the_exr_and_remove_a_stale_one(prepared, services, tmp_path, monkeypatch):
    from uplift.core import exr
    from uplift.pipeline.keep import write_layers

    result = apply_edit(prepared, EditSpec(scale=1.1), services, EditConfig())
    (tmp_path / "layers.exr").write_bytes(b"stale")
    monkeypatch.setattr(exr, "exr_available", lambda: False)
    written = write_layers(tmp_path, prepared, result.composite)
    assert "layers.exr" not in [p.name for p in written] and not (tmp_path / "layers.exr").exists()
    assert all(p.is_file() for p in written) and len(written) == 7


def test_a_part_that_moved_away_leaves_no_ghost_of_the_photo():
    """A flat green object (photo: its own render over red); its right half is moved out of view.
    Where that half was, the composite must show the plate (blue), not the photo's old green pixels
    kept as 'unmoved' through the faint tails of the Gaussians that stayed."""
    from uplift.core.gaussians import Gaussians
    from uplift.core.render import render
    from uplift.core.render.reprojection import PhotoSource
    from uplift.pipeline.edit import compose, prepared_from_layers, render_object_layers

    cam = Camera.from_fov(96, 64)
    xs, zs = np.meshgrid(np.linspace(-0.6, 0.6, 61), np.linspace(-0.4, 0.4, 41))
    means = torch.tensor(np.stack([xs.ravel(), np.full(xs.size, 3.0), zs.ravel()], -1), dtype=torch.float32)
    n = len(means)
    g = Gaussians.from_colors(means, torch.tensor([0.1, 0.9, 0.1]).expand(n, 3), torch.full((n, 3), 0.012),
                              torch.full((n,), 0.95))
    photo = (render(g, cam, backend="torch", background=(0.9, 0.1, 0.1)).rgba[..., :3].numpy() * 255).round()
    photo = photo.clip(0, 255).astype(np.uint8)
    source = PhotoSource.from_photo(photo, cam, g, backend="torch")
    right = means[:, 0] > 0
    posed = Gaussians(means=torch.where(right[:, None], means + torch.tensor([5.0, 0.0, 0.0]), means),
                      quats=g.quats, log_scales=g.log_scales, opacity_logits=g.opacity_logits, sh=g.sh)
    layers = render_object_layers(posed, cam, "torch", photo=source)
    rgba, unmoved = layers.rgba, layers.unmoved
    plate = np.zeros_like(photo)
    plate[...] = (20, 20, 230)
    mask = render(g, cam, backend="torch").rgba[..., 3].numpy() > 0.5
    prepared = prepared_from_layers(photo, plate, mask, cam, g)
    final = compose(prepared, rgba, None, EditConfig(seam=False, hole_dilate=0), unmoved=unmoved).final
    centre = cam.width // 2
    uncovered = mask & (rgba[..., 3] < 0.5)  # where the right half was (the cut's column: faint tails)
    assert uncovered.sum() > 200 and uncovered[:, centre + 1].any()
    assert (final[uncovered][:, 1] > 128).sum() == 0  # no old green left there: the plate shows through
    kept = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # the edge blends with the plate
    kept[:, centre - 3:] = False  # the half that stayed still shows the photo's own pixels
    assert np.abs(final[kept].astype(int) - photo[kept]).max() <= 2
    # The hole grown by 3 px takes the object's edge halo: next to the half that stayed it is the
    # photo's own (`still`), exactly; round the half that went, and where it went, it is redone.
    config = EditConfig(seam=False, hole_dilate=3, silhouette_dilate=3)
    grown = compose(prepared, rgba, None, config, unmoved=unmoved, still=layers.still)
    halo = dilate(mask, 3) & ~mask
    assert not layers.still[:, centre + 2].all() and layers.still[:, :centre - 8].all()  # the moved half is not still
    left, right = halo.copy(), halo.copy()
    left[:, centre - 10:] = False
    right[:, :centre + 10] = False
    assert left.sum() > 50 and np.array_equal(grown.final[left], photo[left])
    assert right.sum() > 50 and (grown.final[right] != photo[right]).any(-1).mean() > 0.9
    assert (grown.final[uncovered][:, 1] > 128).sum() == 0
    without = compose(prepared, rgba, None, config, unmoved=unmoved).final  # the rule before `still`
    assert (without[left] != photo[left]).any(-1).mean() > 0.5


@pytest.mark.parametrize("rest_size, size", [((60, 90), (200, 300)), ((100, 150), (37, 55)), ((64, 64), (64, 64)),
                                             ((50, 70), (173, 211))])
def test_rest_coverage_resampled_over_its_box_equals_the_whole_frame(rest_size, size):
    """`_rest_uncovered` resamples only the box the rest coverage reaches; the whole frame resampled
    (the slow, obvious way) gives the same pixels, at any scale up or down."""
    import torch

    from uplift.core.render.reprojection import resample_box
    from uplift.pipeline.edit import UNMOVED_ALPHA, _rest_uncovered

    rest = np.zeros(rest_size, np.float32)
    rest[10:30, 20:45] = np.random.default_rng(0).random((20, 25)).astype(np.float32)
    rest[11, 21] = 0.005  # below UNMOVED_ALPHA
    H, W = size
    whole = resample_box(torch.from_numpy(rest)[..., None], W, H, (0, 0, W, H))[..., 0].numpy() < UNMOVED_ALPHA
    assert not whole.all()
    assert np.array_equal(_rest_uncovered(rest, W, H), whole)
