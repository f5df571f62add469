"""`make bench-quality`: does editing in 3D beat pushing pixels in 2D, and does a change
that helps here help on photos it was never tuned on?

Ground truth: objects built from Blender primitives (`bench.quality_scenes`: compact, thin-part
and non-convex kinds, tilted rest poses, strong directional light, four lenses, high-frequency
textures), rendered by Cycles at pose A and at each edited pose B, and composited over real
photos (scikit-image's and the segment-anything photos in tests/data). Each scene's photo A is
written as a PNG carrying its lens as EXIF FocalLengthIn35mmFilm, and the camera is read back
from it (`core.photo.camera_from_photo`), as `uplift edit` does. Photo A goes through the `uplift
edit` pipeline in process (its box from A's mask's bounding box, padded), with the edit that
produced B; the result is compared with the rendered B:

- PSNR and SSIM over the union of A's and B's object masks (where the edit happens); the PSNR
  also after the best shift of the result by a few pixels (`psnr_best_shift`, the protocol of
  the held-out scores: one view cannot tell where the true 3D pivot projects),
- silhouette IoU between the edited object's mask and B's mask,
- PSNR outside the union (where nothing should change; 99 dB = identical).

The scenes are split once by seed into a *tuning* half and a *held-out* half
(`quality_scenes.SPLIT_SEED`). Tune on `--half tuning`; the report gives both halves, means and
medians, and a per-object table, so one object at the median cannot carry a result.

`--baseline REV` (`make bench-quality BASELINE=REV`) also runs another commit's own `uplift edit`
(a detached git worktree, its CLI in a subprocess, from a box, one run per edit) on the same
photos and scores it against the same 2D baseline: the previous landing as a row of the table.

Also reported: identity (photo A through the pipeline with no edit, PSNR against A inside
A's mask), each hole filler's plate against the TRUE background inside the dilated hole
(and on a thin ring at the object's edge, what the seam pass fills), and the 3D edit's
render / compose stage seconds.

The 2D baseline does what a pixel editor would: cut the object out of A with the same
mask the pipeline used, warp it with the 2D similarity (rotation, uniform scale,
translation) that best maps A's true mask onto B's true mask (an oracle fit: moments
for scale and translation, a search over the rotation angle for the best IoU), and
paste it over the same inpainted plate with the same compositing and seam pass.

Backends: 'grabcut' segments with the embedded GrabCut from the box (the held-out protocol);
'oracle' uses A's true mask, isolating lifting from segmentation errors.

Lifters (`--lifter`, comma-separated; rows labelled by lifter beside the same 2D rows): 'inflate'
(the default lifter); 'mesh-true', the mesh lifter (`services.backends.mesh_lift`, fitted, best
hypothesis) given each scene's TRUE mesh (`quality_scenes` writes DIR/<scene>/mesh.ply) unposed:
turned by a random rotation per scene from `MESH_SEED`, as an image-to-3D generator's frame would
be; 'mesh-proxy', the same with a primitive (`PROXIES`: box, cylinder or ellipsoid by the scene's
kind) filling the true mesh's bounding box. The mesh lifters also get an alignment table: the
fit's rotation error to the true pose (best hypothesis, and the closer of the first two: a
mirror-symmetric object's true pose may rank second; a rotationally symmetric one, globe, bottle,
donut, has no single true rotation), centre error (px), rest IoU and fit seconds.

    python -m bench.quality [--out bench-output] [--half tuning|heldout|all] [--backends grabcut,oracle]
                            [--lifter inflate,mesh-true,mesh-proxy]
                            [--inflate thickness_prior=1.0,...] [--baseline REV ...] [--fillers ...]

Prints the tables and writes OUT/quality.md, OUT/quality.json, OUT/quality_scenes.csv and
OUT/quality_examples.png (one scene: A | true B | 3D | 2D per edit) and OUT/quality_fillers.png.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.quality_scenes import EDITS, MESH_FILE, OBJECT_NAMES, scene_key, scene_specs
from uplift.services.backends.opencv_inpaint import METHODS

# skimage.data photos bundled with the package: name -> loader.
REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "tests" / "data" / "photos"  # segment-anything's photos, Apache-2.0 (tests/data/photos/LICENSE-*)


def _photo(name: str):
    def load(_data):
        from PIL import Image

        return np.asarray(Image.open(PHOTOS / name).convert("RGB"))
    return load


# Real photos the objects are composited over: name -> loader(skimage.data).
BACKGROUNDS = {
    "coffee": lambda data: data.coffee(),
    "motorcycle": lambda data: data.stereo_motorcycle()[0],
    "rocket": lambda data: data.rocket(),
    "astronaut": lambda data: data.astronaut(),
    "truck": _photo("truck.jpg"),
    "dog": _photo("dog.jpg"),
    "groceries": _photo("groceries.jpg"),
}
HELD_OUT_EDITS = ("yaw15", "yaw30", "yaw60", "pitch20", "scale1.3")  # the held-out protocol's five edits
HALVES = ("tuning", "heldout")
BOX_PAD = 4  # px around A's mask's bounding box, as a user would draw it
PSNR_CAP = 99.0  # dB reported for identical pixels
FILLERS = METHODS  # every embedded hole filler; Telea first, the one the others are compared with
SHIFT_REACH = 1 / 80  # best-shift search half-width, as a fraction of the image width
SEAM_RING = (1, 2)  # (offset, half-width) px of the thin ring scored for seam filling: EditConfig's defaults
LIFTERS = ("inflate", "mesh-true", "mesh-proxy")
MESH_SEED = 19      # fixes each scene's random rotation of the mesh given to the mesh lifter
PROXIES = {"cylinder": ("mug", "bottle", "lamp"), "sphere": ("globe", "monkey", "donut", "dumbbell")}  # others: box
SYMMETRY_TOLERANCE = 0.002  # a turn maps a mesh onto itself within this fraction of its size beyond sampling noise


# -- scenes ------------------------------------------------------------------------------

def ensure_scenes(folder: Path, size: tuple[int, int], samples: int, names) -> dict:
    """Render the ground-truth scenes in a bpy subprocess unless an identical set is cached."""
    meta_path = folder / "scenes.json"
    wanted = json.loads(json.dumps(scene_key(size, samples)))
    missing = list(names)
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == wanted:
            missing = [n for n in names if n not in meta.get("scenes", {})]
    if not missing:
        return meta
    print(f"[quality] rendering {len(missing)} ground-truth scenes with Cycles into {folder} ...", file=sys.stderr,
          flush=True)
    cmd = [sys.executable, "-m", "bench.quality_scenes", "--out", str(folder), "--size", f"{size[0]}x{size[1]}",
           "--samples", str(samples), "--backgrounds", ",".join(BACKGROUNDS), "--scenes", ",".join(missing)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(meta_path.read_text())


def ensure_meshes(folder: Path, names) -> None:
    """Each scene's true mesh (DIR/<scene>/mesh.ply) in a bpy subprocess, unless there already."""
    missing = [n for n in names if not (folder / n / MESH_FILE).is_file()]
    if missing:
        cmd = [sys.executable, "-m", "bench.quality_scenes", "--out", str(folder), "--meshes-only",
               "--backgrounds", ",".join(BACKGROUNDS), "--scenes", ",".join(missing)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


# -- meshes given to the mesh lifter -------------------------------------------------------

def proxy_shape(kind: str) -> str:
    """The primitive standing in for a kind: 'cylinder', 'sphere' (an ellipsoid) or 'box'."""
    return next((shape for shape, kinds in PROXIES.items() if kind in kinds), "box")


def canonical_rotation(name: str) -> np.ndarray:
    """The scene's random rotation [3, 3] (uniform: a normalised Gaussian quaternion), fixed by
    MESH_SEED and the scene's place in OBJECT_NAMES."""
    rng = np.random.default_rng([MESH_SEED, OBJECT_NAMES.index(name)])
    w, x, y, z = (q := rng.normal(size=4)) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def proxy_mesh(kind: str, lo: np.ndarray, hi: np.ndarray):
    """A primitive (`proxy_shape`) filling the box lo..hi (Z up): a SurfaceMesh."""
    import trimesh

    from uplift.core.mesh_surface import SurfaceMesh

    shape = proxy_shape(kind)
    if shape == "cylinder":
        unit = trimesh.creation.cylinder(radius=0.5, height=1.0, sections=48)
    elif shape == "sphere":
        unit = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    else:
        unit = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    vertices = np.asarray(unit.vertices, np.float64) * (hi - lo) + (lo + hi) / 2
    return SurfaceMesh(vertices, np.asarray(unit.faces, np.int64), name=f"{shape} proxy")


def quarter_turns() -> np.ndarray:
    """The 24 rotations [24, 3, 3] taking the axes onto (signed) axes: a box's symmetries."""
    import itertools

    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            R = np.zeros((3, 3))
            R[range(3), perm] = signs
            if np.linalg.det(R) > 0:
                out.append(R)
    return np.array(out)


def mesh_symmetries(mesh, tolerance: float = SYMMETRY_TOLERANCE) -> np.ndarray:
    """The `quarter_turns` [S, 3, 3] (about the mesh's box centre) that map its surface onto
    itself, within `tolerance` of its size (symmetric mean nearest-sample distance): the poses a
    silhouette of the bare mesh cannot tell apart. Bodies of revolution have more than these."""
    from scipy.spatial import cKDTree

    from uplift.core.mesh_surface import sample_surface

    lo, hi = mesh.bounds()
    centre = (lo + hi) / 2
    points = sample_surface(mesh, 4000, seed=0).points - centre
    tree = cKDTree(points)

    def distance(other: np.ndarray) -> float:  # symmetric mean nearest-sample distance to `points`
        return 0.5 * (tree.query(other)[0].mean() + cKDTree(other).query(points)[0].mean())

    # Two samplings of the same surface already differ by about a third of a sample spacing.
    floor = distance(sample_surface(mesh, 4000, seed=1).points - centre)
    limit = 1.5 * floor + tolerance * float((hi - lo).max())
    return np.array([R for R in quarter_turns() if distance(points @ R.T) <= limit])


def given_mesh(lifter: str, scene, folder: Path):
    """-> (the SurfaceMesh the mesh lifter is given, unposed; rotation [3, 3] from its frame to the
    object's rest frame; its `mesh_symmetries` in the rest frame): the true mesh ('mesh-true') or
    its proxy ('mesh-proxy'), turned by `canonical_rotation`."""
    from uplift.core.mesh_surface import load_surface_mesh

    true = load_surface_mesh(folder / scene.name / MESH_FILE, "z", f"{scene.name} mesh")
    mesh = true if lifter == "mesh-true" else proxy_mesh(scene.kind, *true.bounds())
    R = canonical_rotation(scene.name)
    return mesh.with_vertices(mesh.vertices @ R.T), R.T, mesh_symmetries(mesh)


class RecordedFit:
    """The mesh lifter as the pipeline calls it (fit, then lift through the best hypothesis),
    keeping the fit and its wall time for the alignment table."""

    name = "mesh"

    def __init__(self, lifter) -> None:
        self.lifter = lifter
        self.fits, self.seconds, self.camera = None, float("nan"), None

    def lift(self, image, mask, camera):
        t0 = time.perf_counter()
        self.fits = self.lifter.fit(mask, camera, image)
        self.seconds, self.camera = time.perf_counter() - t0, camera
        return self.lifter.lift(image, mask, camera, self.fits[0].similarity)


@dataclass
class AlignScore:
    lifter: str
    backend: str
    scene: str
    rotation_deg: float        # best hypothesis vs the true rotation
    rotation_top2_deg: float   # the closer of the first two (mirror ambiguity)
    rotation_sym_deg: float    # best hypothesis, modulo the given mesh's own quarter-turn symmetries
    center_px: float           # the mesh's box centre, placed vs true, photo pixels
    rest_iou: float            # the placed mesh's silhouette vs A's true mask
    fit_s: float


def alignment(lifter: str, backend: str, scene, recorded: RecordedFit, to_rest: np.ndarray,
              symmetries: np.ndarray) -> AlignScore:
    """Score the recorded fit against the truth: given frame -> rest (`to_rest`) -> pose A; the
    rest frame's `symmetries` [S, 3, 3] give equally true poses."""
    from uplift.core.mesh_surface import silhouette
    from uplift.core.transforms import Similarity
    from uplift.services.backends.placement import rotation_error_deg

    pose_a = np.asarray(scene.pose_a, np.float64)
    truth = Similarity(pose_a[:3, :3] @ to_rest, pose_a[:3, 3])
    mesh = recorded.lifter.mesh
    # The centre of the object's box in its rest frame (on every symmetry axis), in the given frame.
    rest = mesh.vertices[np.unique(mesh.faces)] @ to_rest.T
    centre = ((rest.min(0) + rest.max(0)) / 2 @ to_rest)[None]
    camera = recorded.camera
    (uv_fit,), _ = camera.project(recorded.fits[0].similarity.apply_points(centre))
    (uv_true,), _ = camera.project(truth.apply_points(centre))
    errors = [rotation_error_deg(f.similarity.rotation, truth.rotation) for f in recorded.fits[:2]]
    equal = [pose_a[:3, :3] @ S @ to_rest for S in symmetries] or [truth.rotation]
    symmetric = min(rotation_error_deg(recorded.fits[0].similarity.rotation, R) for R in equal)
    placed = mesh.with_vertices(recorded.fits[0].similarity.apply_points(mesh.vertices))
    mask = scene.masks["A"]
    if (camera.width, camera.height) != (mask.shape[1], mask.shape[0]):
        raise RuntimeError(f"{scene.name}: the lift ran at {camera.width}x{camera.height}, not the photo's size")
    return AlignScore(lifter, backend, scene.name, errors[0], min(errors), symmetric,
                      float(np.linalg.norm(uv_fit - uv_true)), iou(silhouette(placed, camera), mask), recorded.seconds)


def write_photo(path: Path, image: np.ndarray, lens_35mm: int) -> None:
    """A PNG of `image` carrying its lens where `core.photo` (and any EXIF reader) looks for it:
    FocalLengthIn35mmFilm in the Exif sub-IFD."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x8769] = {0xA405: int(lens_35mm)}  # (filling get_ifd()'s dict is lost by Pillow's PNG writer)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, exif=exif)


def background(name: str, size: tuple[int, int]) -> np.ndarray:
    """A bundled skimage photo, centre-cropped to the render's aspect and resized: uint8 [h, w, 3]."""
    import cv2
    import skimage.data

    img = BACKGROUNDS[name](skimage.data)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    w, h = size
    H, W = img.shape[:2]
    if W / H > w / h:
        cw = int(round(H * w / h))
        img = img[:, (W - cw) // 2:(W - cw) // 2 + cw]
    else:
        ch = int(round(W * h / w))
        img = img[(H - ch) // 2:(H - ch) // 2 + ch]
    return cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_AREA)


def over(rgba: np.ndarray, bg: np.ndarray) -> np.ndarray:  # uint8 [h, w, 4] straight over uint8 [h, w, 3]
    from uplift.core.compositing import alpha_over
    from uplift.core.image_io import to_float, to_uint8

    return to_uint8(alpha_over(to_float(rgba), to_float(bg)))


# -- metrics -------------------------------------------------------------------------------

def psnr(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    if not region.any():
        return float("nan")
    mse = np.mean((a[region].astype(np.float64) - b[region].astype(np.float64)) ** 2)
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(255.0 ** 2 / mse))


def psnr_best_shift(a: np.ndarray, b: np.ndarray, region: np.ndarray, reach: int) -> float:
    """PSNR of `a` against `b` over `region` after the best whole-pixel shift of `a` by up to
    `reach` px each way, as the issue's held-out scores are taken: a one-view edit cannot know
    where the true object's 3D centre (the edit's pivot) projects, so a few pixels' offset of the
    whole object is not held against either method."""
    padded = np.pad(a, ((reach, reach), (reach, reach), (0, 0)), mode="edge")
    H, W = region.shape
    return max(psnr(padded[reach + dy:reach + dy + H, reach + dx:reach + dx + W], b, region)
               for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1))


def ssim_in(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    _, full = structural_similarity(a, b, channel_axis=2, data_range=255, full=True)
    return float(full[region].mean())


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


# -- 2D baseline ---------------------------------------------------------------------------

def _similarity_2d(center_a, center_b, scale: float, angle_deg: float) -> np.ndarray:  # -> [2, 3]
    import cv2

    M = cv2.getRotationMatrix2D((float(center_a[0]), float(center_a[1])), angle_deg, scale)
    M[:, 2] += np.asarray(center_b) - np.asarray(center_a)
    return M


def _warp(image: np.ndarray, M: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    import cv2

    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(image, M, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def fit_mask_similarity(mask_a: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
    """The 2D similarity [2, 3] best mapping mask A onto mask B: centroids and the square
    root of the area ratio fix translation and scale; the angle is searched (5° steps over
    the circle, then 0.5° steps around the best) for the highest IoU."""
    ya, xa = np.nonzero(mask_a)
    yb, xb = np.nonzero(mask_b)
    ca = np.array([xa.mean() + 0.5, ya.mean() + 0.5])
    cb = np.array([xb.mean() + 0.5, yb.mean() + 0.5])
    scale = math.sqrt(len(xb) / len(xa))
    size = (mask_a.shape[1], mask_a.shape[0])
    src = mask_a.astype(np.uint8)

    def score(angle):
        return iou(_warp(src, _similarity_2d(ca, cb, scale, angle), size, nearest=True) > 0, mask_b)

    best = max(np.arange(-180, 180, 5.0), key=score)
    best = max(np.arange(best - 5, best + 5.01, 0.5), key=score)
    return _similarity_2d(ca, cb, scale, best)


def warp_cutout(image: np.ndarray, mask: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Cut `mask` out of `image` and warp it by M: float32 [h, w, 4] straight alpha."""
    alpha = mask.astype(np.float32)
    premult = np.concatenate([image.astype(np.float32) / 255 * alpha[..., None], alpha[..., None]], -1)
    warped = _warp(premult, M, (image.shape[1], image.shape[0]))
    a = warped[..., 3:4]
    rgb = np.where(a > 1e-6, warped[..., :3] / np.maximum(a, 1e-6), 0.0)
    return np.concatenate([np.clip(rgb, 0, 1), np.clip(a, 0, 1)], -1).astype(np.float32)


# -- the run -------------------------------------------------------------------------------

@dataclass
class Score:
    backend: str
    edit: str
    method: str   # '3d' | '2d'
    scene: str
    psnr_union: float
    ssim_union: float
    iou: float
    psnr_outside: float
    psnr_union_shift: float          # PSNR over the union after the best small shift (`psnr_best_shift`)
    render_s: float = float("nan")   # 3D only: the render stage (where reprojection runs)
    compose_s: float = float("nan")


@dataclass
class IdentityScore:
    backend: str
    scene: str
    psnr_mask: float     # no edit vs photo A inside A's true mask
    psnr_outside: float  # ... and outside it (99 = identical)


@dataclass
class FillScore:
    filler: str
    scene: str
    psnr_hole: float     # plate vs the true background inside the dilated hole
    ssim_hole: float     # ... SSIM there (rewards continued structure more than PSNR does)
    psnr_ring: float     # thin ring at the object's edge, filled in the photo, vs the photo
    seconds: float       # the hole fill


def available_fillers(names) -> tuple[list[str], list[str]]:
    """-> (fillers that can run here, skipped ones): patchmatch needs the optional pypatchmatch."""
    ok = [n for n in names if n != "patchmatch" or importlib.util.find_spec("patchmatch") is not None]
    return ok, [n for n in names if n not in ok]


def score_fillers(fillers, photo, bg, mask_a, scene, config) -> tuple[list[FillScore], list[np.ndarray]]:
    """Fill A's dilated true mask with each filler through `LocalServices.inpaint` (the pipeline's
    call) and score the plate against the true background; also a thin seam-like ring.
    -> (scores, plates uint8 [H, W, 3] in `fillers` order)."""
    from uplift.core.compositing import dilate, seam_ring
    from uplift.services.config import ServerConfig
    from uplift.services.local import LocalServices

    hole = dilate(mask_a, config.hole_dilate)
    offset, width = SEAM_RING
    ring = seam_ring(dilate(mask_a, offset), width)
    scores, plates = [], []
    for name in fillers:
        services = LocalServices(ServerConfig(segment="none", lift="none", inpaint=name))
        t0 = time.perf_counter()
        plate = services.inpaint(photo, mask_a, mode="fill", dilate=config.hole_dilate)
        seconds = time.perf_counter() - t0
        ringed = services.inpaint(photo, dilate(mask_a, offset), mode="seam", dilate=width)
        scores.append(FillScore(name, scene, psnr(plate, bg, hole), ssim_in(plate, bg, hole),
                                psnr(ringed, photo, ring), seconds))
        plates.append(plate)
    return scores, plates


def evaluate(final, silhouette, truth_b, mask_a, mask_b) -> tuple[float, float, float, float, float]:
    union = mask_a | mask_b
    return (psnr(final, truth_b, union), ssim_in(final, truth_b, union), iou(silhouette, mask_b),
            psnr(final, truth_b, ~union), psnr_best_shift(final, truth_b, union, shift_reach(union.shape)))


def shift_reach(shape: tuple[int, int]) -> int:  # -> px: 4 at 320x240, in proportion to the width
    return max(1, round(SHIFT_REACH * shape[1]))


@dataclass
class Results:
    edits: list[Score]
    identity: list[IdentityScore]
    fillers: list[FillScore]
    halves: dict          # scene -> "tuning" | "heldout"
    alignment: list = dataclasses.field(default_factory=list)  # AlignScore per mesh-lifter prepare


@dataclass
class Scene:
    """One scene ready to edit: photo A on disk (with EXIF), its camera, the truths, the box."""
    name: str
    half: str
    photo_path: Path
    photo: np.ndarray                # uint8 [H, W, 3]
    camera: object                   # core.camera.Camera read back from the photo's EXIF
    masks: dict                      # pose -> bool [H, W]
    truths: dict                     # edit -> uint8 [H, W, 3]
    box: tuple[int, int, int, int]
    background: np.ndarray
    kind: str = ""
    pose_a: list | None = None       # the object's rest frame -> world at pose A, 4x4


def load_scenes(out: Path, size, samples, names, edits, log) -> list[Scene]:
    from uplift.core.camera import Camera
    from uplift.core.image_io import load_rgba
    from uplift.core.photo import camera_from_photo

    meta = ensure_scenes(out / "scenes", size, samples, names)
    scenes = []
    for name in names:
        entry = meta["scenes"][name]
        spec = entry["spec"]
        renders = {pose: load_rgba(out / "scenes" / name / f"{pose}.png") for pose in ("A", *edits)}
        masks = {pose: r[..., 3] >= 128 for pose, r in renders.items()}
        bg = background(spec["background"], size)
        photo = over(renders["A"], bg)
        path = out / "photos" / f"{name}.png"
        write_photo(path, photo, spec["lens_35mm"])
        camera = camera_from_photo(path)
        truth_camera = Camera.from_dict(entry["camera"])
        if not np.allclose(camera.K, truth_camera.K, rtol=1e-6):
            raise RuntimeError(f"{name}: the photo's EXIF camera {camera.K[0, 0]:.2f} px differs from the render's "
                               f"{truth_camera.K[0, 0]:.2f} px")
        ys, xs = np.nonzero(masks["A"])
        box = (max(0, xs.min() - BOX_PAD), max(0, ys.min() - BOX_PAD),
               min(size[0], xs.max() + 1 + BOX_PAD), min(size[1], ys.max() + 1 + BOX_PAD))
        scenes.append(Scene(name, spec["half"], path, photo, camera, masks,
                            {e: over(renders[e], bg) for e in edits}, box, bg, spec["kind"], entry["poses"]["A"]))
        log(f"[quality] {name} ({spec['half']}, {spec['family']}, {spec['lens_35mm']} mm, tilt {spec['tilt_deg']:+.0f} deg, "
            f"x{spec['frequency']:g} texture, over {spec['background']})")
    return scenes


def parse_overrides(text: str, config_type, what: str):
    """'name=value,...' -> config_type(**values), each value parsed as the field's default's type."""
    if not text:
        return config_type()
    defaults = config_type()
    values = {}
    for item in text.split(","):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not hasattr(defaults, key):
            raise SystemExit(f"--{what}: unknown setting {key!r}; choose from "
                             f"{', '.join(f.name for f in dataclasses.fields(config_type))}")
        kind = type(getattr(defaults, key))
        values[key] = (raw.strip().lower() in ("1", "true", "yes", "on")) if kind is bool else kind(raw)
    return dataclasses.replace(defaults, **values)


def _ablate_compose(drop: tuple[str, ...]):
    """pipeline.edit.compose without some of its keep-the-photo rules."""
    from uplift.pipeline import edit as edit_module

    original = edit_module.compose

    def compose(prepared, rgba, services, config, *, unmoved=None, still=None):
        return original(prepared, rgba, services, config, unmoved=None if "unmoved" in drop else unmoved,
                        still=None if "still" in drop or "unmoved" in drop else still)
    return edit_module, "compose", compose


def _ablate_band():
    """Reprojection samples the raw photo, silhouette band included (before ae9f29e)."""
    from uplift.core.render.reprojection import PhotoSource

    def sampled_image(self):
        return self.image.detach().cpu().float()
    return PhotoSource, "sampled_image", sampled_image


def _ablate_share_smoothing():
    """The photo's share per pixel as rendered, not opened and smoothed at seams (before 8a5aca5)."""
    from uplift.core.render import reprojection

    return reprojection, "smooth_share", lambda share, alpha: share
    

# Named ablations of rules added after the inflate change (`--ablate`), each switched off in
# process by swapping one function for the duration of the run: attribution without a checkout.
ABLATIONS = {
    "no_still": lambda: _ablate_compose(("still",)),
    "no_unmoved": lambda: _ablate_compose(("unmoved",)),
    "no_band": _ablate_band,
    "no_share_smoothing": _ablate_share_smoothing,
}


@contextlib.contextmanager
def ablated(names):
    """Apply the named ABLATIONS for the duration of the block, then restore every function."""
    swapped = []
    try:
        for name in names:
            owner, attr, replacement = ABLATIONS[name]()
            swapped.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, replacement)
        yield
    finally:
        for owner, attr, original in reversed(swapped):
            setattr(owner, attr, original)


def two_d_edit(scene: Scene, prepared, edit: str, services, config):
    """The 2D baseline's composite for `edit`: A's cut-out warped by the oracle similarity."""
    from uplift.pipeline.edit import compose

    M = fit_mask_similarity(scene.masks["A"], scene.masks[edit])
    return compose(prepared, warp_cutout(scene.photo, prepared.mask, M), services, config)


def run(out: Path, scenes: list[Scene], backends, edits, log, *, fillers=FILLERS, inpaint: str = "telea",
        inflate=None, edit_config=None, lifters=("inflate",)) -> Results:
    """Every scene through every backend and lifter; a 3D row's backend is the segmenter for
    'inflate' and 'LIFTER, segmenter' for the others; the 2D rows (which no lifter changes) once
    per segmenter."""
    import torch

    from uplift.core.image_io import save_png
    from uplift.pipeline.edit import EditConfig, EditRequest, EditSpec, apply_edit, prepare
    from uplift.services.backends.inflate import InflateConfig, InflateLifter
    from uplift.services.backends.mesh_lift import MeshLifter, MeshLiftConfig
    from uplift.services.config import ServerConfig
    from uplift.services.local import LocalServices

    torch.manual_seed(0)
    server = ServerConfig(segment="grabcut", lift="inflate", inpaint=inpaint)
    inflate_services = LocalServices(server, lifter=InflateLifter(inflate or InflateConfig()))
    config = edit_config or EditConfig()
    scores: list[Score] = []
    identity: list[IdentityScore] = []
    fills: list[FillScore] = []
    aligned: list[AlignScore] = []
    examples: list[np.ndarray] = []
    for scene in scenes:
        if fillers:
            scene_fills, plates = score_fillers(fillers, scene.photo, scene.background, scene.masks["A"], scene.name, config)
            fills += scene_fills
            if plates and len(fills) == len(scene_fills):  # the first scene: photo | true background | plates
                save_png(out / "quality_fillers.png", np.concatenate([scene.photo, scene.background, *plates], axis=1))
            log(f"[quality] {scene.name} fillers: " + ", ".join(f"{f.filler} {f.psnr_hole:.2f} dB {f.seconds:.1f} s"
                                                                for f in scene_fills))
        for backend in backends:
            request = EditRequest(scene.photo, scene.camera, box=None if backend == "oracle" else scene.box,
                                  mask=scene.masks["A"] if backend == "oracle" else None)
            two_d: dict[str, Score] = {}
            for lifter in lifters:
                label = backend if lifter == "inflate" else f"{lifter}, {backend}"
                services, recorded = inflate_services, None
                if lifter != "inflate":
                    mesh, to_rest, symmetries = given_mesh(lifter, scene, out / "scenes")
                    recorded = RecordedFit(MeshLifter(MeshLiftConfig(), mesh=mesh))
                    services = LocalServices(server, lifter=recorded)
                t0 = time.perf_counter()
                prepared = prepare(request, services, config)
                log(f"[quality] {scene.name} {label}: prepared in {time.perf_counter() - t0:.1f} s "
                    f"(mask IoU {iou(prepared.mask, scene.masks['A']):.3f}, {len(prepared.gaussians)} Gaussians)")
                if recorded is not None:
                    aligned.append(alignment(lifter, backend, scene, recorded, to_rest, symmetries))
                    a = aligned[-1]
                    log(f"[quality] {scene.name} {label}: fit {a.fit_s:.1f} s, rotation {a.rotation_deg:.1f} deg "
                        f"(top 2: {a.rotation_top2_deg:.1f}, mod symmetry {a.rotation_sym_deg:.1f}), centre {a.center_px:.1f} px, rest IoU {a.rest_iou:.3f}")
                same = apply_edit(prepared, EditSpec(), services, config).composite.final
                identity.append(IdentityScore(label, scene.name, psnr(same, scene.photo, scene.masks["A"]),
                                              psnr(same, scene.photo, ~scene.masks["A"])))
                row, deltas = [scene.photo], []
                for edit in edits:
                    rot, trans, scale = EDITS[edit]
                    truth = scene.truths[edit]
                    result = apply_edit(prepared, EditSpec(rotate_deg=rot, translate=trans, scale=scale), services,
                                        config)
                    c3 = result.composite
                    s3 = Score(label, edit, "3d", scene.name,
                               *evaluate(c3.final, c3.silhouette, truth, scene.masks["A"], scene.masks[edit]),
                               result.timings["render"], result.timings["compose"])
                    scores.append(s3)
                    if edit not in two_d:
                        c2 = two_d_edit(scene, prepared, edit, services, config)
                        two_d[edit] = Score(backend, edit, "2d", scene.name,
                                            *evaluate(c2.final, c2.silhouette, truth, scene.masks["A"],
                                                      scene.masks[edit]))
                        scores.append(two_d[edit])
                        row += [np.concatenate([truth, c3.final, c2.final], axis=0)]
                    deltas.append(f"{edit} {s3.psnr_union_shift - two_d[edit].psnr_union_shift:+.2f}")
                if not examples and backend == backends[0]:
                    examples = row
                log(f"[quality] {scene.name} {label}: 3D - 2D shifted " + ", ".join(deltas))
    if examples:
        first = np.concatenate([examples[0], np.zeros_like(examples[0]), np.zeros_like(examples[0])], axis=0)
        save_png(out / "quality_examples.png", np.concatenate([first] + examples[1:], axis=1))
    return Results(scores, identity, fills, {sc.name: sc.half for sc in scenes}, aligned)


# -- another commit's `uplift edit` as a row of the table -----------------------------------

def baseline_checkout(out: Path, rev: str) -> tuple[str, Path]:
    """A detached worktree of `rev` under OUT/baselines/<sha> and a folder whose `uplift` is its addon/
    (for PYTHONPATH) -> (short sha, that folder)."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=10", f"{rev}^{{commit}}"], check=True,
                         capture_output=True, text=True).stdout.strip()
    root = (out / "baselines" / sha).resolve()
    src = root / "src"
    if not (src / "addon").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--force", str(src), sha], check=True,
                       capture_output=True)
    shim = root / "shim"
    shim.mkdir(exist_ok=True)
    if not (shim / "uplift").exists():
        (shim / "uplift").symlink_to(src / "addon", target_is_directory=True)
    return sha, shim


# Runs in the baseline checkout's environment: its own `uplift edit` main once per edit, with its
# run_edit (prepare + apply_edit in every commit since the split) reusing the first edit's prepare,
# so a scene costs one segment / lift / inpaint instead of one per edit. Same photo in every call.
BASELINE_DRIVER = """
import json, sys
from uplift.pipeline import edit as pipeline
prepared = []
def run_edit(request, edit, services, config=pipeline.EditConfig(), stage=None):
    if not prepared:
        prepared.append(pipeline.prepare(request, services, config, stage))
    return pipeline.apply_edit(prepared[0], edit, services, config, stage)
pipeline.run_edit = run_edit
from uplift.cli.main import main
for argv in json.loads(sys.argv[1]):
    code = main(argv)
    if code:
        sys.exit(code)
"""


def run_baseline(out: Path, rev: str, scenes: list[Scene], edits, log) -> list[Score]:
    """`rev`'s own `uplift edit PHOTO --box ... -o FINAL --keep DIR` for every scene and edit (its
    default backends; results cached per commit and photo), scored as the 3D rows are."""
    import os

    from uplift.core.image_io import load_image

    sha, shim = baseline_checkout(out, rev)
    folder = out / "baselines" / sha / "runs"
    env = dict(os.environ, PYTHONPATH=str(shim))
    scores = []
    for scene in scenes:
        digest = _digest(scene.photo_path)
        calls, todo = [], []
        for edit in edits:
            rot, trans, scale = EDITS[edit]
            keep = folder / scene.name / edit
            if not ((keep / "final.png").exists() and (keep / "photo.sha").exists()
                    and (keep / "photo.sha").read_text() == digest):
                keep.mkdir(parents=True, exist_ok=True)
                todo.append(keep)
                calls.append(["edit", str(scene.photo_path.resolve()), "--box", ",".join(str(v) for v in scene.box),
                              "--rotate", ",".join(f"{v:g}" for v in rot),
                              "--translate", ",".join(f"{v:g}" for v in trans), "--scale", f"{scale:g}",
                              "-o", str((keep / "final.png").resolve()), "--keep", str(keep.resolve()), "-q"])
        if calls:
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", BASELINE_DRIVER, json.dumps(calls)], env=env,
                                  capture_output=True, text=True, cwd=str(shim.parent))
            if done.returncode != 0:
                raise RuntimeError(f"baseline {sha} failed on {scene.name}: {done.stderr.strip()[-600:]}")
            for keep in todo:
                (keep / "photo.sha").write_text(digest)
            log(f"[quality] baseline {sha} {scene.name}: {len(calls)} edits in {time.perf_counter() - t0:.1f} s")
        for edit in edits:
            keep = folder / scene.name / edit
            result = load_image(keep / "final.png")
            silhouette = load_image(keep / "new_mask.png")[..., 0] >= 128
            scores.append(Score(f"{rev} = {sha} (grabcut)", edit, "3d", scene.name,
                                *evaluate(result, silhouette, scene.truths[edit], scene.masks["A"], scene.masks[edit])))
    return scores


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the report ----------------------------------------------------------------------------

def _median(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else float("nan")


def _mean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.fmean(values) if values else float("nan")


def _pairs(edits: list[Score], twod: list[Score], half_of: dict, label: str, edit: str, half: str):
    """(3D score, 2D score) per scene of `half` ('all' for both) for rows labelled `label`."""
    ref = {(s.scene, s.edit): s for s in twod}
    return [(s, ref[(s.scene, s.edit)]) for s in edits
            if s.backend == label and s.edit == edit and s.method == "3d" and (s.scene, s.edit) in ref
            and half in ("all", half_of.get(s.scene))]


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties dropped): how often a fair coin splits at least this
    unevenly. Over 8 scenes only 8/0 (p 0.008) and 7/1 (p 0.07) say much; 6/2 is p 0.29."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_rows(edits: list[Score], labels, edit_names, half_of: dict) -> dict:
    """Each row label after the first against the first (this checkout), scene by scene on the same
    photos: the 3D shifted PSNRs' difference, so the shared 2D baseline cancels. A median of per-scene
    differences, not a difference of medians: which scene sits at a row's median can swing the
    latter by a dB while the rows tie scene for scene."""
    if len(labels) < 2:
        return {}
    score = {(s.backend, s.scene, s.edit): s.psnr_union_shift for s in edits if s.method == "3d"}
    out: dict = {}
    for other in labels[1:]:
        for half in (*HALVES, "all"):
            for edit in edit_names:
                diff = [score[(labels[0], scene, edit)] - score[(other, scene, edit)] for scene in half_of
                        if half in ("all", half_of[scene]) and (labels[0], scene, edit) in score
                        and (other, scene, edit) in score]
                if not diff:
                    continue
                wins, losses = sum(d > 0 for d in diff), sum(d < 0 for d in diff)
                out.setdefault(other, {}).setdefault(half, {})[edit] = {
                    "median_diff": _median(diff), "mean_diff": _mean(diff), "wins": wins, "losses": losses,
                    "scenes": len(diff), "sign_p": sign_test_p(wins, losses)}
    return out


def report(results: Results, labels, edits, fillers, two_d_backend: str) -> dict:
    """Per half and per row label: means and medians over scenes of 3D - 2D (the held-out protocol's
    number is the mean of the shifted PSNR difference), IoU, identity, the fillers."""
    out: dict = {"identity": {}, "edits": {}, "per_scene": {}, "fillers": {}}
    twod = [s for s in results.edits if s.method == "2d" and s.backend == two_d_backend]
    for backend in {s.backend for s in results.identity}:
        for half in (*HALVES, "all"):
            ids = [s for s in results.identity if s.backend == backend and half in ("all", results.halves[s.scene])]
            if ids:
                out["identity"].setdefault(backend, {})[half] = {
                    "psnr_mask_min": min(s.psnr_mask for s in ids), "psnr_outside_min": min(s.psnr_outside for s in ids),
                    "scenes": len(ids)}
    for label in labels:
        per_half = {}
        for half in (*HALVES, "all"):
            rows = {}
            for edit in edits:
                pairs = _pairs(results.edits, twod, results.halves, label, edit, half)
                if not pairs:
                    continue
                delta = [a.psnr_union_shift - b.psnr_union_shift for a, b in pairs]
                rows[edit] = {"delta_mean": _mean(delta), "delta_median": _median(delta),
                              "psnr3d_mean": _mean(a.psnr_union_shift for a, _ in pairs),
                              "psnr2d_mean": _mean(b.psnr_union_shift for _, b in pairs),
                              "iou3d_mean": _mean(a.iou for a, _ in pairs), "iou2d_mean": _mean(b.iou for _, b in pairs),
                              "wins": sum(d > 0 for d in delta), "scenes": len(pairs),
                              "render_s": _median(a.render_s for a, _ in pairs)}
            if rows:
                per_half[half] = rows
        out["edits"][label] = per_half
        out["per_scene"][label] = {
            scene: {edit: a.psnr_union_shift - b.psnr_union_shift
                    for edit in edits for a, b in _pairs(results.edits, twod, results.halves, label, edit, "all")
                    if a.scene == scene}
            for scene in results.halves}
    telea = {s.scene: s for s in results.fillers if s.filler == "telea"}
    for name in fillers:
        fs = [s for s in results.fillers if s.filler == name]
        if not fs:
            continue
        row = {"psnr_hole_mean": statistics.fmean(s.psnr_hole for s in fs),
               "psnr_hole_median": _median(s.psnr_hole for s in fs),
               "ssim_hole_median": _median(s.ssim_hole for s in fs),
               "psnr_ring_mean": statistics.fmean(s.psnr_ring for s in fs),
               "seconds_median": _median(s.seconds for s in fs), "scenes": len(fs)}
        paired = [(s, telea[s.scene]) for s in fs if s.scene in telea]
        if paired and name != "telea":
            row["vs_telea_hole_db"] = statistics.fmean(a.psnr_hole - b.psnr_hole for a, b in paired)
            row["vs_telea_ring_db"] = statistics.fmean(a.psnr_ring - b.psnr_ring for a, b in paired)
            row["wins_vs_telea"] = sum(a.psnr_hole > b.psnr_hole for a, b in paired)
        out["fillers"][name] = row
    out["paired"] = {"against": labels[0] if labels else None,
                     "rows": paired_rows(results.edits, list(labels), edits, results.halves)}
    return out


def alignment_summary(scores: list) -> dict:
    """'LIFTER, backend' -> the per-scene alignment rows, then a 'median' row."""
    out: dict = {}
    for a in scores:
        out.setdefault(f"{a.lifter}, {a.backend}", []).append(dataclasses.asdict(a))
    for rows in out.values():
        keys = ("rotation_deg", "rotation_top2_deg", "rotation_sym_deg", "center_px", "rest_iou", "fit_s")
        rows.append({"scene": "median", **{k: _median(r[k] for r in rows) for k in keys}})
    return out


def _table(title: str, header, rows) -> tuple[list[str], list[str]]:
    """One table -> (plain-text lines, markdown lines)."""
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in rows + [tuple(header)]) for i in range(len(header))]
    text = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths))]
    text += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows] + [""]
    md = [f"### {title}\n", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    return text, md


def summarise(summary: dict, edits, halves_of: dict) -> tuple[str, str]:
    """-> (plain-text tables for the terminal, markdown for quality.md)."""
    tables = []
    for backend, by_half in summary["identity"].items():
        tables.append(_table(f"identity ({backend}): no edit vs the photo, min PSNR over scenes (99 = exact)",
                             ("half", "inside the true mask", "outside it", "scenes"),
                             [(h, f"{v['psnr_mask_min']:.1f}", f"{v['psnr_outside_min']:.1f}", v["scenes"])
                              for h, v in by_half.items()]))
    for half in (*HALVES, "all"):
        rows = []
        for label, per_half in summary["edits"].items():
            for edit, r in per_half.get(half, {}).items():
                rows.append((label, edit, f"{r['delta_mean']:+.2f}", f"{r['delta_median']:+.2f}",
                             f"{r['psnr3d_mean']:.2f}", f"{r['psnr2d_mean']:.2f}",
                             f"{r['iou3d_mean']:.3f}", f"{r['iou2d_mean']:.3f}", f"{r['wins']}/{r['scenes']}",
                             f"{r['render_s']:.2f}" if not math.isnan(r["render_s"]) else "-"))
        if rows:
            tables.append(_table(f"3D - 2D, {half} half: PSNR over the union after the best shift (dB); IoU of the "
                                 f"silhouette with the truth",
                                 ("row", "edit", "Δ mean", "Δ median", "3D mean", "2D mean", "IoU 3D", "IoU 2D",
                                  "3D wins", "render s"), rows))
    paired = summary.get("paired", {})
    for other, by_half in paired.get("rows", {}).items():
        rows = [(half, edit, f"{r['median_diff']:+.2f}", f"{r['mean_diff']:+.2f}", f"{r['wins']}/{r['losses']}/{r['scenes']}",
                 f"{r['sign_p']:.2f}") for half, by_edit in by_half.items() for edit, r in by_edit.items()]
        tables.append(_table(f"paired, {paired['against']} vs {other}: per-scene difference of the 3D shifted PSNR "
                             f"(dB; + = {paired['against']} better)",
                             ("half", "edit", "median diff", "mean diff", "wins/losses/scenes", "sign test p"), rows))
    for label, per_scene in summary["per_scene"].items():
        rows = [(scene, halves_of[scene], *(f"{d[e]:+.2f}" if e in d else "-" for e in edits))
                for scene, d in per_scene.items() if d]
        if rows:
            tables.append(_table(f"per object, {label}: 3D - 2D shifted PSNR (dB)", ("scene", "half", *edits), rows))
    for label, rows in summary.get("alignment", {}).items():
        tables.append(_table(f"alignment, {label}: the fit against the true pose A (rotation error: best hypothesis, "
                             f"the closer of the first two, the best modulo the mesh's quarter-turn symmetries)",
                             ("scene", "rotation °", "top-2 °", "mod symmetry °", "centre px", "rest IoU", "fit s"),
                             [(r["scene"], f"{r['rotation_deg']:.1f}", f"{r['rotation_top2_deg']:.1f}",
                               f"{r['rotation_sym_deg']:.1f}", f"{r['center_px']:.1f}", f"{r['rest_iou']:.3f}",
                               f"{r['fit_s']:.1f}") for r in rows]))
    fills = summary["fillers"]
    if fills:
        rows = [(name, f"{v['psnr_hole_mean']:.2f}", f"{v['psnr_hole_median']:.2f}",
                 f"{v['vs_telea_hole_db']:+.2f}" if "vs_telea_hole_db" in v else "-",
                 f"{v['wins_vs_telea']}/{v['scenes']}" if "wins_vs_telea" in v else "-",
                 f"{v['ssim_hole_median']:.3f}",
                 f"{v['psnr_ring_mean']:.2f}", f"{v['vs_telea_ring_db']:+.2f}" if "vs_telea_ring_db" in v else "-",
                 f"{v['seconds_median']:.2f}") for name, v in fills.items()]
        tables.append(_table("hole fillers: plate vs the TRUE background inside the dilated hole (oracle mask); "
                             "ring = thin seam-like ring at the object's edge",
                             ("filler", "hole PSNR mean", "hole PSNR median", "Δ vs telea", "wins vs telea",
                              "hole SSIM median", "ring PSNR mean", "ring Δ vs telea", "fill s (median)"), rows))
    return "\n".join(t for text, _ in tables for t in text), "\n".join(m for _, md in tables for m in md)


def main(argv: list[str] | None = None) -> int:
    from uplift.pipeline.edit import EditConfig
    from uplift.services.backends.inflate import InflateConfig
    from uplift.services.config import ServerConfig

    ap = argparse.ArgumentParser(description="3D-consistency quality benchmark against a 2D baseline.")
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--size", default="480x360")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--half", choices=(*HALVES, "all"), default="all",
                    help="which scenes: the tuning half, the held-out half, or both (default)")
    ap.add_argument("--backends", default="grabcut", help="grabcut (the held-out protocol) and/or oracle")
    ap.add_argument("--objects", default=",".join(OBJECT_NAMES), help="scene names (default: all)")
    ap.add_argument("--edits", default=",".join(HELD_OUT_EDITS), help=f"from {', '.join(EDITS)}")
    ap.add_argument("--fillers", default="", help=f"hole fillers to score (e.g. {','.join(FILLERS)}; default none)")
    ap.add_argument("--inpaint", default=ServerConfig().inpaint, choices=FILLERS,
                    help="the embedded filler the edit pipeline uses (default: the service default)")
    ap.add_argument("--inflate", default="", metavar="NAME=VALUE,...", help="InflateConfig overrides (ablations)")
    ap.add_argument("--edit-config", default="", metavar="NAME=VALUE,...", help="EditConfig overrides (ablations)")
    ap.add_argument("--ablate", default="", metavar="NAME,...", help=f"switch off rules: {', '.join(ABLATIONS)}")
    ap.add_argument("--baseline", action="append", default=[], metavar="REV",
                    help="also score this commit's own `uplift edit` on the same photos (repeatable)")
    ap.add_argument("--lifter", default="inflate", metavar="NAME,...",
                    help=f"lifters whose rows to score, from {', '.join(LIFTERS)} (default inflate)")
    ap.add_argument("--label", default="main", help="the name of this checkout's row")
    ap.add_argument("--two-d-from", type=Path, metavar="QUALITY.json",
                    help="take the 2D rows from an earlier run's quality.json (same scenes, same 2D code) and skip "
                         "this checkout's 3D run: a --baseline-only comparison at the cost of the baselines alone")
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if b not in ("grabcut", "oracle"):
            ap.error(f"unknown backend {b!r}: choose grabcut and/or oracle")
    edits = [e for e in args.edits.split(",") if e]
    unknown = [e for e in edits if e not in EDITS]
    if unknown:
        ap.error(f"unknown edits {unknown}; choose from {', '.join(EDITS)}")
    objects = [o for o in args.objects.split(",") if o]
    if set(objects) - set(OBJECT_NAMES):
        ap.error(f"unknown objects {sorted(set(objects) - set(OBJECT_NAMES))}; choose from {', '.join(OBJECT_NAMES)}")
    lifters = [n for n in args.lifter.split(",") if n]
    if not lifters or set(lifters) - set(LIFTERS):
        ap.error(f"unknown lifters {sorted(set(lifters) - set(LIFTERS))}; choose from {', '.join(LIFTERS)}")
    fillers = [f for f in args.fillers.split(",") if f]
    if set(fillers) - set(FILLERS):
        ap.error(f"unknown fillers {sorted(set(fillers) - set(FILLERS))}; choose from {', '.join(FILLERS)}")
    fillers, skipped = available_fillers(fillers)
    inflate = parse_overrides(args.inflate, InflateConfig, "inflate")
    edit_config = parse_overrides(args.edit_config, EditConfig, "edit-config")
    specs = [s for s in scene_specs(tuple(BACKGROUNDS)) if s.name in objects and args.half in ("all", s.half)]
    args.out.mkdir(parents=True, exist_ok=True)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    for name in skipped:
        log(f"[quality] skipping the {name} filler: its package is not installed")
    start = time.perf_counter()
    scenes = load_scenes(args.out, size, args.samples, [s.name for s in specs], edits, log)
    if set(lifters) - {"inflate"}:
        ensure_meshes(args.out / "scenes", [s.name for s in specs])
    ablations = [a for a in args.ablate.split(",") if a]
    if set(ablations) - set(ABLATIONS):
        ap.error(f"unknown ablations {sorted(set(ablations) - set(ABLATIONS))}; choose from {', '.join(ABLATIONS)}")
    if args.two_d_from:
        earlier = json.loads(args.two_d_from.read_text())["scores"]["edits"]
        wanted = {sc.name for sc in scenes}
        twod = [Score(**e) for e in earlier if e["method"] == "2d" and e["scene"] in wanted and e["edit"] in edits]
        if {(s.scene, s.edit) for s in twod} != {(n, e) for n in wanted for e in edits}:
            ap.error(f"{args.two_d_from} lacks 2D scores for some of these scenes and edits")
        results = Results(twod, [], [], {sc.name: sc.half for sc in scenes})
        labels = []
    else:
        with ablated(ablations):
            results = run(args.out, scenes, backends, edits, log, fillers=fillers, inpaint=args.inpaint,
                          inflate=inflate, edit_config=edit_config, lifters=lifters)
        for s in results.edits + results.identity:
            s.backend = f"{args.label} ({s.backend})"
        labels = list(dict.fromkeys(s.backend for s in results.edits if s.method == "3d"))
    two_d = next((s.backend for s in results.edits if s.method == "2d"), None)  # none in a fillers-only run
    for rev in args.baseline:
        results.edits += run_baseline(args.out, rev, scenes, edits, log)
        labels.append(results.edits[-1].backend)
    with open(args.out / "quality_scenes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["half", *Score.__dataclass_fields__])
        writer.writerows([[results.halves[s.scene], *(getattr(s, k) for k in Score.__dataclass_fields__)]
                          for s in results.edits])
    summary = report(results, labels, edits, fillers, two_d)
    summary["alignment"] = alignment_summary(results.alignment)
    text, md = summarise(summary, edits, results.halves)
    minutes = (time.perf_counter() - start) / 60
    settings = {"scenes": [s.name for s in specs], "halves": results.halves, "size": list(size),
                "samples": args.samples, "inpaint": args.inpaint, "inflate": dataclasses.asdict(inflate),
                "edit_config": dataclasses.asdict(edit_config), "ablate": ablations, "baselines": args.baseline,
                "fillers_skipped": skipped, "lifters": lifters, "mesh_seed": MESH_SEED, "run_minutes": minutes}
    (args.out / "quality.json").write_text(json.dumps({"settings": settings, **summary, "scores": {
        "edits": [dataclasses.asdict(s) for s in results.edits],
        "identity": [dataclasses.asdict(s) for s in results.identity],
        "fillers": [dataclasses.asdict(s) for s in results.fillers],
        "alignment": [dataclasses.asdict(s) for s in results.alignment]}}, indent=1, allow_nan=True, default=str))
    intro = (f"# Quality: 3D edit vs 2D baseline\n\n{len(specs)} scenes ({args.half}), {size[0]}x{size[1]} px, Cycles "
             f"{args.samples} samples. Δ = 3D − 2D PSNR over the union of the true A and B masks after the best shift "
             f"of up to {shift_reach((size[1], size[0]))} px (the held-out protocol: mean over scenes); 2D = the "
             f"oracle similarity warp over {two_d}'s plate. Run time {minutes:.1f} min.\n")
    (args.out / "quality.md").write_text(intro + "\n" + md + "\n")
    print(text)
    print(f"[quality] wrote {args.out / 'quality.md'} and quality.json in {minutes:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
