"""`uplift edit` as plain functions: segment → lift → inpaint → deform → render → compose.

Each stage is a function over plain data (numpy images, `Camera`, `Gaussians`) and a
`Services` object; `run_edit` runs them in order. `prepare` (segment, lift, inpaint)
depends only on the photo and the selection, so a caller trying several edits of one
object (the quality benchmark, the Blender extension) runs it once and calls
`apply_edit` (deform, render, compose) per edit.

Working resolution: photos larger than `EditConfig.max_working_size` on their long side
are segmented, lifted, inpainted and rendered at that size; the results are upsampled
and composited at the photo's full resolution. Every pixel outside the edited region
(the old object's dilated mask united with the new silhouette's) is copied from the
photo, so the photo is untouched there at any resolution.

Reprojection (`EditConfig.reproject`, on by default): the posed object shows the photo's own
pixels wherever the photo saw it (`core.render.reprojection`), sampled at the photo's full
resolution; the render's source-coordinate field is upsampled, which is exact inside a splat.
With no edit the object region reproduces the photo.

The composite: final = photo outside the region; inside it, the render alpha-composited
(straight alpha) over the inpainted plate, then the seam pass (`inpaint(mode='seam')`)
in a ring around the new silhouette.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, ContextManager

import numpy as np

from ..core.camera import Camera
from ..core.compositing import alpha_over, dilate, seam_ring
from ..core.drags import DEFAULT_PIN_RADIUS
from ..core.errors import ConfigError, ControlError, MaskError
from ..core.gaussians import Gaussians
from ..core.image_io import to_float, to_uint8
from ..core.transforms import ObjectFrame, Similarity, apply_similarity, camera_edit, object_frame

# Stage names, in the order `run_edit` runs them (progress lines and timings use these).
PREPARE_STAGES = ("segment", "lift", "inpaint")
EDIT_STAGES = ("deform", "render", "compose")
STAGES = PREPARE_STAGES + EDIT_STAGES

Vec3 = tuple[float, float, float]


def _set_vec3s(record, names, error, prefix: str = "") -> None:
    """Store each named field of a frozen dataclass as a tuple of three finite floats."""
    for name in names:
        raw = getattr(record, name)
        try:
            value = tuple(float(v) for v in raw)
        except (TypeError, ValueError):
            value = ()
        if len(value) != 3 or not all(math.isfinite(v) for v in value):
            raise error(f"{prefix}{name} must be three finite numbers, got {raw!r}")
        object.__setattr__(record, name, value)


@dataclass(frozen=True)
class Drag:
    """Grab the control point nearest `source` and move it by `target - source` (see
    `core.drags`). Both are in the object's frame: the camera's axes (x right, y down,
    z forward), in units of the object's size, relative to its centre — so (0, -0.5, 0) is
    the top of the object's box. `source == target` pins that point."""

    source: Vec3
    target: Vec3

    def __post_init__(self) -> None:
        from ..core.drags import MAX_DRAG_SIZES

        _set_vec3s(self, ("source", "target"), ControlError, "a drag's ")
        if max(map(abs, self.source + self.target)) > MAX_DRAG_SIZES:
            raise ControlError(f"a drag's ends must lie within {MAX_DRAG_SIZES:g} object sizes of the object's "
                               f"centre, got {self.source} -> {self.target}")


@dataclass(frozen=True)
class EditSpec:
    """What to do to the object: drags first (in the object's frame), then the rigid edit
    (see `core.transforms.camera_edit`: degrees about the centre with the camera's axes,
    translation in object sizes, uniform scale)."""

    rotate_deg: Vec3 = (0.0, 0.0, 0.0)  # yaw, pitch, roll
    translate: Vec3 = (0.0, 0.0, 0.0)   # camera x right, y down, z forward; object sizes
    scale: float = 1.0
    drags: tuple[Drag, ...] = ()

    def __post_init__(self) -> None:
        _set_vec3s(self, ("rotate_deg", "translate"), ConfigError)
        if not (math.isfinite(self.scale) and 0.05 <= self.scale <= 20):
            raise ConfigError(f"scale must be between 0.05 and 20, got {self.scale}")
        if any(abs(a) > 360 for a in self.rotate_deg):
            raise ConfigError(f"rotation angles must be within ±360 degrees, got {self.rotate_deg}")
        if any(abs(t) > 100 for t in self.translate):
            raise ConfigError(f"translation must be within ±100 object sizes, got {self.translate}")
        object.__setattr__(self, "drags", tuple(self.drags))

    @property
    def is_identity(self) -> bool:
        return (self.rotate_deg == (0.0, 0.0, 0.0) and self.translate == (0.0, 0.0, 0.0) and self.scale == 1.0
                and all(d.source == d.target for d in self.drags))


@dataclass(frozen=True)
class EditConfig:
    """How the pipeline runs. Pixel radii are at the working resolution."""

    max_working_size: int = 1024     # long side (px) the models see; larger photos are downscaled
    hole_dilate: int = 6             # grow the old mask by this before filling the plate (covers edge halos)
    silhouette_dilate: int = 6       # grow the new silhouette by this for the composited region
    silhouette_threshold: float = 0.5  # render alpha above this is the new silhouette
    seam_width: int = 2              # seam pass: a ring this many px each side of the boundary of the
    seam_offset: int = 1             # new silhouette grown by seam_offset px: by default from 1 px inside
                                     # to 3 px outside, mostly on the plate's side, keeping the object's pixels
    seam: bool = True                # run the seam pass
    render_backend: str = "auto"     # core.render backend: auto | torch | gsplat
    reproject: bool = True           # show the photo's own pixels where the photo saw the object
    pin_radius: float = DEFAULT_PIN_RADIUS  # with drags: controls farther than this (object sizes) from every
                                     # drag source stay where they are; 0 pins nothing
    inpaint_prompt: str | None = None  # for inpainting backends that take one
    deform: object | None = None     # core.deformer.DeformConfig; None = its defaults

    def __post_init__(self) -> None:
        if not 64 <= self.max_working_size <= 8192:
            raise ConfigError(f"max_working_size must be in 64..8192 px, got {self.max_working_size}")
        for name in ("hole_dilate", "silhouette_dilate", "seam_width", "seam_offset"):
            if not 0 <= getattr(self, name) <= 200:
                raise ConfigError(f"{name} must be in 0..200 px, got {getattr(self, name)}")
        if self.seam and self.seam_width + self.seam_offset > self.silhouette_dilate:
            raise ConfigError("seam_width + seam_offset must not exceed silhouette_dilate, so the seam stays "
                              "inside the edited region")
        if not 0 < self.silhouette_threshold < 1:
            raise ConfigError(f"silhouette_threshold must be in (0, 1), got {self.silhouette_threshold}")
        if self.pin_radius < 0:
            raise ConfigError(f"pin_radius must be >= 0, got {self.pin_radius}")


@dataclass(frozen=True)
class EditRequest:
    """The photo, its camera and the selection: a box and/or points (photo pixels), or a
    ready mask (then nothing is segmented)."""

    image: np.ndarray                 # uint8 [H, W, 3]
    camera: Camera                    # the photo's camera, at the photo's size
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1
    points: tuple[tuple[float, float], ...] = ()          # (x, y)
    labels: tuple[int, ...] = ()      # 1 object / 0 background per point; all 1 when empty
    mask: np.ndarray | None = None    # bool [H, W]

    def __post_init__(self) -> None:
        img = self.image
        if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
            raise ConfigError("the photo must be a uint8 [H, W, 3] RGB array")
        h, w = img.shape[:2]
        if (self.camera.width, self.camera.height) != (w, h):
            raise ConfigError(f"the camera is {self.camera.width}x{self.camera.height} but the photo is {w}x{h}")
        if self.mask is not None:
            if self.mask.shape != (h, w):
                raise MaskError(f"the mask is {self.mask.shape[1]}x{self.mask.shape[0]} but the photo is {w}x{h}")
            if not self.mask.any():
                raise MaskError("the mask is empty: no pixel is selected")
            return
        if self.box is None and not self.points:
            raise ConfigError("select the object with a box, at least one point, or a mask")
        if self.box is not None:
            x0, y0, x1, y1 = (float(v) for v in self.box)
            if not (x1 > x0 and y1 > y0):
                raise ConfigError(f"the box {self.box} must have x0 < x1 and y0 < y1")
            if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
                raise ConfigError(f"the box {self.box} lies outside the {w}x{h} photo")
        for x, y in self.points:
            if not (0 <= x < w and 0 <= y < h):
                raise ConfigError(f"the point ({x}, {y}) lies outside the {w}x{h} photo")
        if self.labels and len(self.labels) != len(self.points):
            raise ConfigError(f"{len(self.points)} points but {len(self.labels)} labels")


@dataclass
class Prepared:
    """The photo's object, lifted, and the plate without it (output of `prepare`)."""

    image: np.ndarray          # uint8 [H, W, 3] the photo
    camera: Camera             # at the photo's size
    work_camera: Camera        # at the working size
    mask: np.ndarray           # bool [H, W] the object at the photo's size
    work_mask: np.ndarray      # bool [h, w]
    gaussians: Gaussians       # lifted, in the photo camera's world
    plate: np.ndarray          # uint8 [H, W, 3] photo with the dilated object filled
    segment_score: float | None
    timings: dict[str, float] = field(default_factory=dict)
    _deformer: object | None = field(default=None, repr=False, compare=False)
    _photo_source: object = field(default=None, repr=False, compare=False)  # cached core.render.reprojection.PhotoSource

    def deformer(self, config=None):
        """The `core.deformer.Deformer` of `gaussians` (FPS, graph, factorisation, binding),
        built on first use and reused by every later edit with an equal DeformConfig."""
        from ..core.deformer import DeformConfig, Deformer

        config = config if config is not None else DeformConfig()
        if self._deformer is None or self._deformer.config != config:
            self._deformer = Deformer(self.gaussians, config)
        return self._deformer

    @property
    def work_scale(self) -> float:
        return self.work_camera.width / self.camera.width

    def photo_source(self, backend: str = "auto"):
        """The photo, at full size, as the lifted object's colour source (visibility computed on
        first use at the working size, then cached: it depends only on the rest object)."""
        if self._photo_source is None:
            from ..core.render.reprojection import PhotoSource, photo_visibility

            visibility = photo_visibility(self.gaussians, self.work_camera, backend=backend)
            self._photo_source = PhotoSource(to_float(self.image), self.camera, self.gaussians, visibility)
        return self._photo_source

    @property
    def frame(self) -> ObjectFrame:
        return object_frame(self.gaussians, self.work_camera)


@dataclass
class Composite:
    """Output of `compose`, all at the photo's size."""

    final: np.ndarray          # uint8 [H, W, 3]
    object_rgba: np.ndarray    # float32 [H, W, 4] straight alpha on the 8-bit grid: what was composited
                               # over the plate (exactly object.png)
    seam_fill: np.ndarray      # uint8 [H, W, 3] object over plate after the seam pass, before the photo
                               # is put back outside the region
    silhouette: np.ndarray     # bool [H, W] new object mask (alpha > threshold)
    region: np.ndarray         # bool [H, W] pixels that may differ from the photo
    seam_mask: np.ndarray      # bool [H, W] ring the seam pass inpainted


@dataclass
class EditResult:
    prepared: Prepared
    edited: Gaussians          # the Gaussians after drags and the rigid edit
    transform: Similarity      # the rigid edit that was applied after the drags
    composite: Composite
    timings: dict[str, float]  # seconds per stage, in STAGES order

    @property
    def final(self) -> np.ndarray:  # uint8 [H, W, 3]
        return self.composite.final


StageContext = Callable[[str], ContextManager]  # e.g. cli.progress.Progress().stage


@contextlib.contextmanager
def _stage(name: str, timings: dict[str, float], stage: StageContext | None):
    with (stage(name) if stage is not None else contextlib.nullcontext()):
        start = time.perf_counter()
        yield
        timings[name] = time.perf_counter() - start


# -- resampling -----------------------------------------------------------------------

def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area averaging when shrinking (no aliasing), bilinear when growing."""
    import cv2

    if image.shape[1] == width and image.shape[0] == height:
        return image.copy()
    interp = cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def _resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:  # bool -> bool
    if mask.shape == (height, width):
        return mask.copy()
    return _resize(mask.astype(np.float32), width, height) >= 0.5


def _resize_rgba(rgba: np.ndarray, width: int, height: int) -> np.ndarray:
    """Straight-alpha float RGBA resized through premultiplied colour, so transparent
    pixels' colour never bleeds into the edge."""
    if rgba.shape[:2] == (height, width):
        return rgba.copy()
    premult = np.concatenate([rgba[..., :3] * rgba[..., 3:4], rgba[..., 3:4]], axis=-1).astype(np.float32)
    out = np.clip(_resize(premult, width, height), 0.0, 1.0)
    alpha = out[..., 3:4]
    rgb = np.where(alpha > 1e-6, out[..., :3] / np.maximum(alpha, 1e-6), 0.0)
    return np.concatenate([np.clip(rgb, 0, 1), alpha], axis=-1).astype(np.float32)


def working_camera(camera: Camera, max_size: int) -> Camera:
    factor = min(1.0, max_size / max(camera.width, camera.height))
    return camera if factor >= 1.0 else camera.scaled(factor)


def _full_radius(radius: int, scale: float) -> int:
    return int(math.ceil(radius / scale)) if radius > 0 else 0


# -- stages ------------------------------------------------------------------------------

def segment(request: EditRequest, services, work_camera: Camera, work_image: np.ndarray):
    """-> (mask bool [H, W] at the photo's size, mask at the working size, score or None)."""
    H, W = request.image.shape[:2]
    if request.mask is not None:
        return request.mask.copy(), _resize_mask(request.mask, work_camera.width, work_camera.height), None
    s = work_camera.width / W
    box = None if request.box is None else np.array(request.box, dtype=np.float64) * s
    points = np.array(request.points, dtype=np.float64).reshape(-1, 2) * s
    labels = np.array(request.labels or [1] * len(request.points), dtype=np.int64)
    result = services.segment(work_image, points, labels, box)
    work_mask = np.asarray(result.mask, dtype=bool)
    if not work_mask.any():
        raise MaskError("segmentation found no object in the selection; try a tighter box or more points")
    return _resize_mask(work_mask, W, H), work_mask, float(result.score)


def prepare(request: EditRequest, services, config: EditConfig = EditConfig(),
            stage: StageContext | None = None) -> Prepared:
    """Segment, lift and inpaint (the edit-independent stages)."""
    timings: dict[str, float] = {}
    H, W = request.image.shape[:2]
    work_camera = working_camera(request.camera, config.max_working_size)
    work_image = _resize(request.image, work_camera.width, work_camera.height)
    with _stage("segment", timings, stage):
        mask, work_mask, score = segment(request, services, work_camera, work_image)
    with _stage("lift", timings, stage):
        gaussians = services.lift(work_image, work_mask, work_camera)
        if len(gaussians) == 0:
            raise MaskError("lifting produced no Gaussians; the selected object may be too small")
    with _stage("inpaint", timings, stage):
        filled = services.inpaint(work_image, work_mask, mode="fill", dilate=config.hole_dilate,
                                  prompt=config.inpaint_prompt)
        # Back at full size, keep the photo's own pixels wherever the hole is not.
        hole_full = dilate(mask, _full_radius(config.hole_dilate, work_camera.width / W))
        plate = np.where(hole_full[..., None], _resize(filled, W, H), request.image)
    return Prepared(request.image, request.camera, work_camera, mask, work_mask, gaussians, plate, score, timings)


def prepared_from_layers(image: np.ndarray, plate: np.ndarray, mask: np.ndarray, camera: Camera,
                         gaussians: Gaussians) -> Prepared:
    """A `Prepared` for an object segmented, lifted and filled elsewhere (the Blender
    extension's scene), everything at the photo's size, so `render_object` and `compose`
    serve it as they serve `uplift edit`.
    image, plate: uint8 [H, W, 3]; mask: bool [H, W] the object(s) the plate removed."""
    h, w = image.shape[:2]
    for name, array, shape in (("plate", plate, (h, w, 3)), ("mask", mask, (h, w))):
        if array.shape != shape:
            raise ConfigError(f"the {name} is {array.shape[1]}x{array.shape[0]} but the photo is {w}x{h}")
    if (camera.width, camera.height) != (w, h):
        raise ConfigError(f"the camera renders {camera.width}x{camera.height} but the photo is {w}x{h}: keep the "
                          "render resolution equal to the photo's")
    mask = np.asarray(mask, dtype=bool)
    return Prepared(image, camera, camera, mask, mask, gaussians, plate, None)


def drag_handles(deformer, drags: tuple[Drag, ...], frame: ObjectFrame, camera: Camera,
                 pin_radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Object-frame drags -> ARAP handles (handle_idx [H], targets [H, 3] world), by the
    one grab rule `core.drags.grab` on the deformer's rest controls."""
    from ..core.drags import format_drag, grab

    to_world = camera.world_to_camera[:3, :3].T  # camera axes -> world
    src = np.array([d.source for d in drags], dtype=np.float64).reshape(-1, 3)  # [D, 3]
    sources = frame.center + (src * frame.size) @ to_world.T
    moves = ((np.array([d.target for d in drags]) - src) * frame.size) @ to_world.T
    controls = deformer.controls.detach().double().cpu().numpy()  # [M, 3] rest
    return grab(controls, sources, moves, pin_radius, labels=[format_drag(d.source, d.target) for d in drags])


def deform(prepared: Prepared, edit: EditSpec, config: EditConfig) -> tuple[Gaussians, Similarity]:
    """Drags (ARAP over control points, then LBS), then the rigid edit about the rest
    object's centre. The deformer is `prepared`'s cached one, solved cold (from rest) so
    an edit never depends on the one before."""
    frame = prepared.frame
    g = prepared.gaussians
    if edit.drags and not all(d.source == d.target for d in edit.drags):
        import torch

        deformer = prepared.deformer(config.deform)
        idx, targets = drag_handles(deformer, edit.drags, frame, prepared.work_camera, config.pin_radius)
        deformer.reset()
        g = deformer.update(torch.as_tensor(idx), torch.as_tensor(targets, dtype=torch.float32),
                            mode="batch").to(prepared.gaussians.device)
    sim = camera_edit(prepared.work_camera, frame, edit.rotate_deg, edit.translate, edit.scale)
    return (g if sim.is_identity() else apply_similarity(g, sim)), sim


def render_object(g: Gaussians, camera: Camera, backend: str = "auto", *, photo=None,
                  output_size: tuple[int, int] | None = None) -> np.ndarray:
    """-> float32 [h, w, 4] straight-alpha RGBA at `camera`'s size, or at `output_size` (W, H),
    a resolution of the same view, with the render upsampled there.

    photo: a `core.render.reprojection.PhotoSource` whose rest Gaussians `g` is a posed copy of;
    the object then shows the photo's pixels where the photo saw it, sampled at the photo's
    own resolution even when `camera` is smaller (the source-coordinate field is upsampled)."""
    return render_object_layers(g, camera, backend, photo=photo, output_size=output_size).rgba


UNMOVED_PX = 0.5  # a pixel whose photo source lies closer than this to itself shows the photo unmoved
UNMOVED_ALPHA = 0.01  # ... where the object covers it as it did in the photo (alpha within this)


@dataclass
class ObjectLayers:
    """The posed object rendered for `compose`."""
    rgba: np.ndarray                  # float32 [H, W, 4] straight alpha
    unmoved: np.ndarray | None = None  # bool [H, W]: the photo's own pixel at its own place (mostly seen,
    # source within UNMOVED_PX, covered as at rest), kept exactly by `compose`; None without a photo
    still: np.ndarray | None = None    # bool [H, W]: the render there is the rest's (coverage within
    # UNMOVED_ALPHA, source within UNMOVED_PX), object or not; None where that is unknown (no photo,
    # or a view other than the photo's)


def render_object_layers(g: Gaussians, camera: Camera, backend: str = "auto", *, photo=None,
                         output_size: tuple[int, int] | None = None) -> ObjectLayers:
    """`render_object`, plus (with a photo) where the photo's own pixels are right (`ObjectLayers`)."""
    from ..core.render import render

    result = render(g, camera, backend=backend, photo=photo, resolve_photo=False)  # resolved below, at (W, H)
    W, H = output_size if output_size is not None else (camera.width, camera.height)
    if photo is None:
        rgba = result.rgba.detach().cpu().numpy()
        if (W, H) != (camera.width, camera.height):
            rgba = _resize_rgba(np.clip(rgba, 0.0, 1.0), W, H)
        return ObjectLayers(np.clip(np.asarray(rgba, dtype=np.float32), 0.0, 1.0))  # RGB is unclamped above
    import torch

    from ..core.device import torch_cpu_threads
    from ..core.render.reprojection import PIXEL_SEEN_FULL, resample_box, resolve

    same_view = (W, H) == (photo.camera.width, photo.camera.height)  # the photo's view at its own size
    with torch_cpu_threads(1):  # many small elementwise ops: see core.render.RenderConfig.cpu_threads
        rest_render = photo.rest_alpha(camera.width, camera.height) if same_view else None  # made first: the
        # photo's edge band (`PhotoSource.sampled_image`, read by resolve) reuses it
        layers = result.layers if (W, H) == (camera.width, camera.height) else result.layers.resampled(W, H)
        premult, alpha, source = resolve(layers, photo)
        (x0, y0), (h, w) = layers.origin, alpha.shape
        ys, xs = np.mgrid[y0:y0 + h, x0:x0 + w] + 0.5
        moved = np.abs(source.cpu().numpy() - np.stack([xs, ys], -1)).max(-1)
        # Only pixels the photo saw that the object covers as it did at rest: where a part moved away,
        # the faint tails of the Gaussians left in place must not keep the photo's pixel of that part
        # (a ghost of the old object); at an unmoved soft edge the photo's own edge pixel is right.
        raw_alpha = layers.alpha.cpu().numpy()
        rest_alpha = None
        if rest_render is not None:
            # The rest at the render's own size, resampled as the posed layers were: where nothing
            # moved the two agree exactly, and a 12 MP photo needs no full-size render of its own.
            if (W, H) != (camera.width, camera.height):
                rest_alpha = resample_box(torch.from_numpy(rest_render)[..., None], W, H,
                                          (x0, y0, x0 + w, y0 + h))[..., 0].numpy()
            else:
                rest_alpha = rest_render[y0:y0 + h, x0:x0 + w]
        same_cover = (np.abs(raw_alpha - rest_alpha) < UNMOVED_ALPHA if rest_alpha is not None
                      else raw_alpha > 1.0 - UNMOVED_ALPHA)
        seen = (layers.seen >= PIXEL_SEEN_FULL * layers.alpha).cpu().numpy() & (raw_alpha > 0) & same_cover
        rgba = np.zeros((H, W, 4), np.float32)
        rgba[y0:y0 + h, x0:x0 + w, :3] = _straight(premult, alpha)
        rgba[y0:y0 + h, x0:x0 + w, 3] = alpha.clamp(0.0, 1.0).cpu().numpy()
        still = None
        if rest_render is not None:  # outside the posed box the object covers nothing now
            still = _rest_uncovered(rest_render, W, H)
            # (pinholes, alpha 0 at rest too, take a source from their neighbours: those decide)
            still[y0:y0 + h, x0:x0 + w] = same_cover & ((moved < UNMOVED_PX) | (raw_alpha <= 0))
    unmoved = np.zeros((H, W), bool)
    unmoved[y0:y0 + h, x0:x0 + w] = seen & (moved < UNMOVED_PX)
    return ObjectLayers(np.clip(rgba, 0.0, 1.0), unmoved, still)


def _rest_uncovered(rest_render: np.ndarray, W: int, H: int) -> np.ndarray:
    """The rest coverage (at the render's size) resampled to W x H as the posed layers are ->
    bool [H, W]: below UNMOVED_ALPHA. Resampled over the box it reaches only: a 24 MP photo's
    whole frame took 0.44 s."""
    import torch

    from ..core.render.reprojection import reach_box, resample_box

    if rest_render.shape == (H, W):
        return rest_render < UNMOVED_ALPHA
    uncovered = np.ones((H, W), bool)
    x0, y0, x1, y1 = reach_box(torch.from_numpy(rest_render > 0), W, H)
    if x1 > x0 and y1 > y0:
        box = resample_box(torch.from_numpy(rest_render)[..., None], W, H, (x0, y0, x1, y1))[..., 0].numpy()
        uncovered[y0:y1, x0:x1] = box < UNMOVED_ALPHA
    return uncovered


def _straight(premult, alpha) -> np.ndarray:  # [H, W, 3], [H, W] tensors -> straight RGB numpy
    safe = alpha.clamp_min(1e-6)[..., None]
    return (premult / safe).where(alpha[..., None] > 1e-6, premult.new_zeros(())).detach().cpu().numpy()


def compose(prepared: Prepared, object_rgba: np.ndarray, services, config: EditConfig, *,
            unmoved: np.ndarray | None = None, still: np.ndarray | None = None) -> Composite:
    """Composite `object_rgba` (float [h, w, 4] straight alpha, working or photo size) over
    the plate, seam it, and keep the photo outside the edited region and at `unmoved` pixels
    (bool [H, W] at the photo's size, from `render_object_layers`: the object shows the photo's
    own pixel there, so neither the plate nor the seam pass may touch it). With `still` (bool
    [H, W], the same), the photo is also kept at every pixel farther than the region's growth from
    anything that changed: the hole's dilation takes the object's edge halo with it, and next to a
    part that did not move that halo is the photo's own (no edit: the photo exactly, everywhere)."""
    image, (H, W) = prepared.image, prepared.image.shape[:2]
    scale = prepared.work_scale
    rgba = to_float(to_uint8(_resize_rgba(object_rgba, W, H)))  # the 8-bit layer export and compositor read
    sil = rgba[..., 3] > config.silhouette_threshold
    hole = dilate(prepared.mask, _full_radius(config.hole_dilate, scale))
    region = hole | dilate(sil, _full_radius(config.silhouette_dilate, scale))
    composite = to_uint8(alpha_over(rgba, to_float(prepared.plate)))
    seam_mask = np.zeros_like(region)
    if config.seam and config.seam_width > 0 and sil.any():
        width = _full_radius(config.seam_width, scale)
        grown = dilate(sil, _full_radius(config.seam_offset, scale))
        seam_mask = seam_ring(grown, width)  # inside the region: width + offset <= silhouette_dilate
        composite = services.inpaint(composite, grown, mode="seam", dilate=width, prompt=config.inpaint_prompt)
    changed = region if unmoved is None else region & ~unmoved
    if still is not None and unmoved is not None:
        moving = ~still
        if not moving.any():  # no edit: the photo, exactly
            changed = np.zeros_like(changed)
        else:  # an object pixel that does not show the photo unmoved (one the lifted object does not
            moving |= prepared.mask & ~unmoved  # cover, say) may have gone with what moved
            reach = max(_full_radius(config.hole_dilate, scale), _full_radius(config.silhouette_dilate, scale))
            changed &= dilate(moving, reach)
    final = np.where(changed[..., None], composite, image)
    return Composite(final, rgba, composite, sil, changed, seam_mask)


def apply_edit(prepared: Prepared, edit: EditSpec, services, config: EditConfig = EditConfig(),
               stage: StageContext | None = None) -> EditResult:
    """Deform, render and compose one edit of a prepared object."""
    timings = dict(prepared.timings)
    with _stage("deform", timings, stage):
        edited, sim = deform(prepared, edit, config)
    with _stage("render", timings, stage):
        photo = prepared.photo_source(config.render_backend) if config.reproject else None
        layers = render_object_layers(edited, prepared.work_camera, config.render_backend, photo=photo,
                                      output_size=(prepared.camera.width, prepared.camera.height) if photo else None)
    with _stage("compose", timings, stage):
        composite = compose(prepared, layers.rgba, services, config, unmoved=layers.unmoved, still=layers.still)
    return EditResult(prepared, edited, sim, composite, timings)


def run_edit(request: EditRequest, edit: EditSpec, services, config: EditConfig = EditConfig(),
             stage: StageContext | None = None) -> EditResult:
    """The whole pipeline, stage by stage (see STAGES)."""
    return apply_edit(prepare(request, services, config, stage), edit, services, config, stage)
