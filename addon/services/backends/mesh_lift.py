"""lift/mesh — bring your own 3D: any triangle mesh becomes Gaussians on its surface, aligned to
the photo, with the photo's pixels where the photo saw it.

1. Load (`core.mesh_surface.load_surface_mesh`: OBJ, glTF/GLB, PLY, STL through trimesh; the up
   axis by format, or `MeshLiftConfig.up`).
2. Place: `as_placed` keeps the mesh's own coordinates (an artist lined it up through the photo's
   camera), and with `refine` snaps that pose to the mask (`placement.refine_placement`: rotation,
   image position and size from the artist's pose, the artist's depth kept); otherwise the mesh,
   centred and scaled to a unit box (badly scaled files behave as
   any other), is sampled coarsely (`PLACEMENT_SAMPLES`) and aligned to the mask by silhouette
   (`fit_placements`, the one call into `placement`: `fit_k` distinct hypotheses, best first),
   which puts it at the inflate lifter's depth (`inflate.reference_depth`: the mask's box spans
   1 world unit), so a drag means the same for every lifter. A mesh with its own colours takes
   the hypothesis whose colours agree best with the photo (`colour_disagreement`: a symmetric
   shape's silhouettes tie, its texture does not, as in Kholgade et al. 2014).
3. Density, once placed: sample spacing `spacing_px` photo pixels at the object's depth
   (`splat_count`), at most `max_splats`; the surface is sampled again at that count, flat
   two-sided discs (`core.mesh_surface.surface_gaussians`), a closed mesh's `inset_px` inside it
   (`inset`: splats' tails otherwise widen every silhouette by about a pixel).
4. Colours (`photo_colored`): splats the photo saw (`photo_visibility` >= 1/2, projecting inside
   the mask) take the photo's colour; the others the mesh's texture or vertex colour, matched to
   the photo by a per-channel gain fitted where both are known; the rest the harmonic
   fill of the known colours over the Gaussians' k-NN graph (`core.color_fill`).

Pre-made Gaussians enter at step 2 and skip step 3: a splat file given as the mesh (.spz, .splat,
or a .ply with 3DGS properties and no faces: `core.splat_io.is_splat_file`, read by
`read_splat_file`; Z up unless `up='y'`), or `lift_splats(g, image, mask, camera, config)`. They are
placed (as placed, or fitted centred in a unit box as a mesh is) and coloured by step 4, their
own colours playing the texture's part.
A mesh already in memory (Blender's Lift onto Mesh: `blender.mesh_source`) enters as
`MeshLifter(config, mesh=...)`; `MeshLifter.fit` gives the alignment hypotheses in the order
step 2 ranks them and `MeshLifter.lift(..., placement=one of them)` lifts through the one the
artist chose: the CLI (which takes the first) and Blender run the same steps.
Deterministic for a seed (sampling and placement).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.errors import ConfigError, MeshFormatError
from ...core.mesh_surface import UP_AXES

PLACEMENT_SAMPLES = 20_000   # coarse surface sample the alignment runs on
PLACEMENT_SIDE = 384         # px, the alignment's working image: a known shape deserves a sharp silhouette
                             # (bench scenes at 320x240, true meshes unposed, median 3D - 2D at yaw 15 / scale
                             # 1.3: +4.6 / -2.1 dB at placement's default 128 px, +7.7 / +4.9 dB at full size)
MAX_SPLATS = 300_000         # upper bound on the lifted object's Gaussians
MIN_SPLATS = 2_000           # a tiny object in the photo still gets a surface
SPLAT_SPACING_PX = 1.25      # distance between neighbouring splats, photo pixels at the object's depth
SILHOUETTE_INSET_PX = 0.5    # splats of a closed mesh sit this far (photo px) inside it: their tails widen the
                             # render by about a pixel. Bench scenes, true meshes as placed, median edit IoU
                             # 0.946 -> 0.963 (yaw 15); 1 px gives 0.982 but shifts the texture (-1.3 dB)
MAX_FIT_HYPOTHESES = 16
FILL_POINTS = 40_000         # the harmonic colour fill is solved on at most this many splats ...
FILL_NEIGHBOURS = 4          # ... and carried to the rest from this many nearest solved ones
MIN_MATCH_PAIRS = 50         # splats with both a photo and a mesh colour needed to match the texture to the photo
MATCH_GAIN = (0.25, 4.0)     # the texture-to-photo gain is clipped to this range


@dataclass(frozen=True)
class MeshLiftConfig:
    path: Path | None = None         # the mesh file (None: the mesh is given to MeshLifter)
    up: str = "auto"                 # 'auto' (by format: glTF / OBJ Y up, PLY / STL Z up), 'y' or 'z'
    as_placed: bool = False          # keep the mesh's coordinates: it is already lined up through the camera
    refine: bool = False             # with as_placed: snap that pose to the mask (the artist's depth stays)
    fit_k: int = 3                   # alignment hypotheses found (best first); Lift takes the best unless told
    max_splats: int = MAX_SPLATS
    spacing_px: float = SPLAT_SPACING_PX
    inset_px: float = SILHOUETTE_INSET_PX
    match_texture: bool = True       # match the mesh's own colours to the photo's where both are known
    seed: int = 0
    name: str | None = None          # what messages call the mesh (default: its path)

    def __post_init__(self) -> None:
        if self.path is not None and not isinstance(self.path, Path):
            object.__setattr__(self, "path", Path(self.path))
        if self.up not in UP_AXES:
            raise ConfigError(f"the mesh's up axis must be one of {', '.join(UP_AXES)}, not {self.up!r}")
        if self.refine and not self.as_placed:
            raise ConfigError("refine snaps a mesh kept as placed to the photo: use it with --as-placed")
        if isinstance(self.fit_k, bool) or not isinstance(self.fit_k, int) or not 1 <= self.fit_k <= MAX_FIT_HYPOTHESES:
            raise ConfigError(f"--fit must be an integer in 1..{MAX_FIT_HYPOTHESES}, not {self.fit_k!r}")
        if not MIN_SPLATS <= self.max_splats <= 10 * MAX_SPLATS:
            raise ConfigError(f"max_splats must be in {MIN_SPLATS}..{10 * MAX_SPLATS}, not {self.max_splats}")
        if not (math.isfinite(self.spacing_px) and 0.25 <= self.spacing_px <= 16):
            raise ConfigError(f"spacing_px must be in 0.25..16 pixels, not {self.spacing_px}")
        if not (math.isfinite(self.inset_px) and 0 <= self.inset_px <= 4):
            raise ConfigError(f"inset_px must be in 0..4 pixels, not {self.inset_px}")


@dataclass(frozen=True)
class MeshFit:
    """One alignment hypothesis: where the mesh's own coordinates go in the camera's world."""

    similarity: object   # core.transforms.Similarity: mesh coordinates -> world
    iou: float           # its silhouette's IoU with the mask (placement's render view)


class MeshLifter:
    name = "mesh"

    def __init__(self, config: MeshLiftConfig, device: str = "auto", mesh=None, splats=None) -> None:
        """mesh: a `core.mesh_surface.SurfaceMesh`, or splats: `Gaussians` (canonical frame, Z up),
        already in memory; else `config.path` is read: a splat file (`core.splat_io.is_splat_file`)
        gives splats, any other a mesh."""
        from ...core.device import pick_device
        from ...core.mesh_surface import load_surface_mesh

        self.config = config
        self.device = pick_device(device)
        if mesh is None and splats is None and config.path is None:
            raise ConfigError("the mesh lifter needs a mesh file or a mesh")
        # A file is read at start-up, so that a bad one fails there and not at the first lift.
        if mesh is None and splats is None:
            from ...core.splat_io import is_splat_file

            if is_splat_file(config.path):
                splats = load_splats(config.path, config.up)
            else:
                mesh = load_surface_mesh(config.path, config.up, config.name)
        self.mesh, self.splats = mesh, splats
        self.source_name = mesh.name if mesh is not None else (config.name or str(config.path or "splats"))

    def fit(self, mask: np.ndarray, camera, image: np.ndarray | None = None, progress=None, cancel=None) -> list[MeshFit]:
        """The alignment hypotheses of the mesh to the mask, best first (module doc, step 2; with
        `image`, a coloured mesh's best colour agreement first). progress(fraction) is called and
        cancel() polled between steps (True: CancelledError)."""
        if self.config.as_placed:  # one hypothesis: where the mesh is, or that pose snapped to the mask
            from ...core.mesh_surface import silhouette
            from ...core.transforms import Similarity
            from .placement import iou
            from .placement import silhouette as splat_silhouette

            check_in_view(self._probe_points(), self.source_name, mask, camera, True)
            if self.config.refine:
                return [refine_as_placed(self.mesh, self.splats, mask, camera, self.config, self.device)]
            covered = silhouette(self.mesh, camera) if self.splats is None else splat_silhouette(self.splats, camera)
            return [MeshFit(Similarity.identity(), iou(covered, mask))]
        if self.splats is not None:
            return fit_splats(self.splats, mask, camera, self.config, self.device, progress, cancel)
        return fit_mesh(self.mesh, mask, camera, self.config, self.device, image, progress, cancel)

    def _probe_points(self, placement=None) -> np.ndarray:  # [n, 3] points on the source, placed
        from ...core.mesh_surface import sample_surface

        if self.splats is None:
            mesh = self.mesh if placement is None else self.mesh.with_vertices(placement.apply_points(self.mesh.vertices))
            return sample_surface(mesh, 4096, seed=0).points
        points = opaque_means(self.splats)
        return points if placement is None else placement.apply_points(points)

    def lift(self, image: np.ndarray,  # uint8 [H, W, 3]
             mask: np.ndarray,         # bool [H, W]
             camera,                   # -> Gaussians in camera's world
             placement=None):          # Similarity (a MeshFit's): mesh -> world; None: as placed, or the best fit
        from ...core.mesh_surface import sample_surface, surface_gaussians

        cfg = self.config
        if placement is None and (cfg.refine or not cfg.as_placed):
            placement = self.fit(mask, camera, image)[0].similarity
        check_in_view(self._probe_points(placement), self.source_name, mask, camera, cfg.as_placed)
        if self.splats is not None:  # a splat file: its own Gaussians, their colours the texture's part
            from ...core.transforms import apply_similarity

            g = self.splats if placement is None else apply_similarity(self.splats, placement)
            return photo_colored(g, np.ones(len(g), bool), image, mask, camera, self.device,
                                 match_texture=cfg.match_texture)
        placed = self.mesh if placement is None else self.mesh.with_vertices(placement.apply_points(self.mesh.vertices))
        samples = inset(sample_surface(placed, splat_count(placed, camera, cfg), cfg.seed), placed, camera, cfg.inset_px)
        colors = np.full((len(samples.points), 3), 0.5) if samples.colors is None else np.nan_to_num(samples.colors, nan=0.5)
        g = surface_gaussians(samples, colors)
        return photo_colored(g, samples.colored, image, mask, camera, self.device, match_texture=cfg.match_texture)


def fit_placements(g, mask: np.ndarray, camera, k: int, seed: int, device, progress=None, cancel=None) -> list:
    """Canonical-frame Gaussians -> the `k` best distinct (`core.transforms.Similarity` aligning
    them to the mask, its silhouette IoU), best silhouette first (the only call into `placement`).
    The unturned pose is one of the starts: a Y-up format's upright, front-facing model is right
    as it comes."""
    from .placement import PlacementConfig, place_hypotheses

    hypotheses = place_hypotheses(g, mask, camera, PlacementConfig(seed=seed, work_side=PLACEMENT_SIDE), k=k, device=device,
                                  starts=np.eye(3)[None], progress=progress, cancel=cancel)
    return [(h.similarity, float(h.iou)) for h in hypotheses]


def fit_mesh(mesh, mask: np.ndarray, camera, cfg: MeshLiftConfig, device, image: np.ndarray | None = None,
             progress=None, cancel=None) -> list[MeshFit]:
    """-> the mesh's alignment hypotheses (module doc, step 2), each moving the mesh's own
    coordinates into the camera's world, best first; with its own colours and an image, the
    hypothesis whose colours agree best with the photo's first, the others in silhouette order."""
    probe, samples, unit = mesh_probe(mesh, cfg)
    hypotheses = fit_placements(probe, mask, camera, cfg.fit_k, cfg.seed, device, progress, cancel)
    if image is not None and len(hypotheses) > 1 and samples.colored.mean() > 0.5:
        errors = [colour_disagreement(probe, samples, sim, image, mask, camera, device) for sim, _ in hypotheses]
        best = int(np.argmin(errors))
        hypotheses = [hypotheses[best]] + hypotheses[:best] + hypotheses[best + 1:]
    return [MeshFit(similarity.compose(unit), iou) for similarity, iou in hypotheses]


def colour_disagreement(probe, samples, similarity, image: np.ndarray, mask: np.ndarray, camera, device) -> float:
    """Median colour difference between the mesh's own colours (gain-matched) and the photo's over
    the samples the photo sees inside the mask when the probe is placed by `similarity`."""
    from ...core.color_fill import SEEN
    from ...core.render.reprojection import photo_visibility
    from ...core.transforms import apply_similarity

    placed = apply_similarity(probe, similarity)
    backend = "auto" if device.type == "cuda" else "torch"
    seen = (photo_visibility(placed.to(device), camera, backend=backend).cpu().numpy() >= SEEN) & samples.colored
    uv, z = camera.project(placed.means.double().numpy())
    x, y = np.floor(uv[:, 0]), np.floor(uv[:, 1])
    seen &= (z > 0) & (x >= 0) & (x < camera.width) & (y >= 0) & (y < camera.height)
    seen[seen] = _eroded(mask)[y[seen].astype(np.int64), x[seen].astype(np.int64)]
    if seen.sum() < MIN_MATCH_PAIRS:
        return math.inf
    photo = bilinear(image.astype(np.float64) / 255.0, uv[seen])
    own = match_colors(samples.colors[seen], photo, samples.colors[seen])
    return float(np.median(np.abs(own - photo).sum(1)))


def check_in_view(points: np.ndarray, name: str, mask: np.ndarray, camera, as_placed: bool) -> None:
    """Refuse a mesh (or splats), given by `points` [n, 3] on it, that the photo's camera does not see
    over the mask (one line, naming the problem)."""
    uv, z = camera.project(points)
    front = z > 1e-9
    hint = " (leave out --as-placed to align it to the photo)" if as_placed else ""
    if not front.any():
        raise MeshFormatError(f"mesh {name} lies behind the photo's camera{hint}")
    x, y = np.floor(uv[front]).astype(np.int64).T
    inside = (x >= 0) & (x < camera.width) & (y >= 0) & (y < camera.height)
    if not mask[y[inside], x[inside]].any():
        raise MeshFormatError(f"mesh {name} does not cover the mask in the photo's camera{hint}")


def load_splats(path, up: str = "auto"):
    """A splat file (`core.splat_io.read_splat_file`) -> Gaussians in Z-up axes: 'auto' and 'z' keep
    them (Uplift writes Z up, as Blender's world is), 'y' turns a Y-up capture up as a mesh's is."""
    from ...core.mesh_surface import Y_UP_TO_Z_UP
    from ...core.splat_io import read_splat_file
    from ...core.transforms import Similarity, apply_similarity

    g = read_splat_file(path)
    if len(g) == 0:
        raise MeshFormatError(f"splat file {path} has no splats")
    return apply_similarity(g, Similarity(Y_UP_TO_Z_UP, np.zeros(3))) if up == "y" else g


def opaque_means(g) -> np.ndarray:  # [n, 3] float64: the means of the splats that show (all if none does)
    means = g.means.detach().double().cpu().numpy()
    opaque = (g.opacities >= 0.05).cpu().numpy()
    return means[opaque] if opaque.any() else means


def unit_box(lo: np.ndarray, hi: np.ndarray, name: str):
    """The Similarity centring the box lo..hi with its largest side 1 (what the alignment sees)."""
    from ...core.transforms import Similarity

    extent = float((hi - lo).max())
    if not extent > 0:
        raise MeshFormatError(f"mesh {name} has no extent")
    return Similarity(np.eye(3), -(lo + hi) / 2 / extent, 1.0 / extent)


def fit_splats(g, mask: np.ndarray, camera, cfg: MeshLiftConfig, device, progress=None, cancel=None) -> list[MeshFit]:
    """-> the splats' alignment hypotheses as `fit_mesh`'s (centred in a unit box, at most
    PLACEMENT_SAMPLES of them aligned), best silhouette first."""
    probe, unit = splat_probe(g, cfg)
    hypotheses = fit_placements(probe, mask, camera, cfg.fit_k, cfg.seed, device, progress, cancel)
    return [MeshFit(similarity.compose(unit), iou) for similarity, iou in hypotheses]


def mesh_probe(mesh, cfg: MeshLiftConfig):
    """-> (grey Gaussians on PLACEMENT_SAMPLES points of the mesh centred in a unit box, those samples,
    the unit-box Similarity: mesh -> that frame): what the alignment sees."""
    from ...core.mesh_surface import sample_surface, surface_gaussians

    unit = unit_box(*mesh.bounds(), mesh.name)  # centred, largest side 1
    samples = sample_surface(mesh.with_vertices(unit.apply_points(mesh.vertices)), PLACEMENT_SAMPLES, cfg.seed)
    return surface_gaussians(samples, np.full((len(samples.points), 3), 0.5)), samples, unit


def splat_probe(g, cfg: MeshLiftConfig):
    """-> (at most PLACEMENT_SAMPLES of the splats centred in a unit box by their opaque means, that
    unit-box Similarity)."""
    import torch

    from ...core.transforms import apply_similarity

    means = opaque_means(g)
    unit = unit_box(means.min(0), means.max(0), cfg.name or str(cfg.path or "splats"))
    probe = g
    if len(g) > PLACEMENT_SAMPLES:
        probe = g.subset(torch.from_numpy(np.sort(np.random.default_rng(cfg.seed).choice(len(g), PLACEMENT_SAMPLES, replace=False))))
    return apply_similarity(probe, unit), unit


def refine_as_placed(mesh, splats, mask: np.ndarray, camera, cfg: MeshLiftConfig, device) -> MeshFit:
    """The artist's pose (the source's own coordinates) snapped to the mask by `placement.refine_placement`,
    as a fit of the source's own coordinates; the artist's depth stays."""
    from .placement import PlacementConfig, refine_placement

    if mesh is None:
        probe, unit = splat_probe(splats, cfg)
    else:
        probe, _samples, unit = mesh_probe(mesh, cfg)
    refined = refine_placement(probe, mask, camera, unit.inverse(), PlacementConfig(seed=cfg.seed, work_side=PLACEMENT_SIDE),
                               device=device)
    return MeshFit(refined.similarity.compose(unit), float(refined.iou))


def splat_count(mesh, camera, cfg: MeshLiftConfig) -> int:
    """Samples so that neighbours are `spacing_px` photo pixels apart at the object's (median) depth."""
    from ...core.mesh_surface import sample_surface

    _, z = camera.project(sample_surface(mesh, 4096, seed=0).points)
    depth = float(np.median(z[z > 0])) if (z > 0).any() else 1.0
    pixel = depth / (0.5 * (camera.K[0, 0] + camera.K[1, 1]))  # world size of a photo pixel at that depth
    count = mesh.area / (cfg.spacing_px * pixel) ** 2
    return int(np.clip(count, MIN_SPLATS, cfg.max_splats))


def inset(samples, mesh, camera, pixels: float):
    """Move the samples of a closed mesh `pixels` photo pixels (at each one's depth) inwards along
    its normals. A splat's tail reaches about a pixel beyond its centre (its own width plus the
    renderer's 0.3 px^2 low-pass, summed over the splats stacked at a rim), so a solid of splats
    drawn on its true surface looks a pixel fatter than the solid in every view; drawn this far
    inside, it does not. An open surface (signed volume about 0) stays where it is."""
    import dataclasses

    lo, hi = mesh.bounds()
    volume = mesh.signed_volume
    if pixels <= 0 or abs(volume) <= 1e-6 * float((hi - lo).max()) ** 3:
        return samples
    _, z = camera.project(samples.points)
    pixel = np.abs(z) / (0.5 * (camera.K[0, 0] + camera.K[1, 1]))
    return dataclasses.replace(samples, points=samples.points - math.copysign(pixels, volume) * pixel[:, None]
                               * samples.normals)


def lift_splats(g, image: np.ndarray, mask: np.ndarray, camera, cfg: MeshLiftConfig, device: str = "auto"):
    """Pre-made Gaussians (a splat file, canonical frame unless `cfg.as_placed`) -> placed and
    coloured as a mesh's are (their own colours play the texture's part)."""
    return MeshLifter(cfg, device, splats=g).lift(image, mask, camera)


def photo_colored(g, own: np.ndarray,  # [N] bool: the Gaussian's colour came from the mesh (texture / vertex colour)
                  image: np.ndarray, mask: np.ndarray, camera, device, match_texture: bool = True):
    """-> g with the photo's colours where the photo saw it, its own (matched) elsewhere, and
    the harmonic fill where neither is known (module doc, step 4)."""
    import torch

    from ...core.color_fill import SEEN
    from ...core.gaussians import SH_C0
    from ...core.render.reprojection import photo_visibility

    backend = "auto" if device.type == "cuda" else "torch"
    visibility = photo_visibility(g.to(device), camera, backend=backend).cpu().numpy()
    means = g.means.detach().double().cpu().numpy()
    uv, z = camera.project(means)
    x, y = np.floor(uv[:, 0]), np.floor(uv[:, 1])
    in_image = (z > 0) & (x >= 0) & (x < camera.width) & (y >= 0) & (y < camera.height)
    seen = visibility >= SEEN
    seen[in_image] &= _eroded(mask)[y[in_image].astype(np.int64), x[in_image].astype(np.int64)]
    seen &= in_image
    colors = g.base_colors.detach().double().cpu().numpy()
    photo = bilinear(image.astype(np.float64) / 255.0, uv[seen])
    if match_texture:
        colors[own & ~seen] = match_colors(colors[own & seen], photo[own[seen]], colors[own & ~seen])
    colors[seen] = photo
    known = seen | own
    if not known.all() and known.any():
        colors[~known] = harmonic_fill(means, colors, known)
    sh = g.sh.clone()
    sh[:, 0] = torch.from_numpy((colors - 0.5) / SH_C0).to(sh)
    sh[torch.from_numpy(seen | ~known), 1:] = 0.0  # the photo's colour is one view's; the fill has no view
    return g.replace(sh=sh)


def harmonic_fill(points: np.ndarray, colors: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Colours [U, 3] for the unknown points: the harmonic extension of the known colours over the
    k-NN graph (`core.color_fill.laplace_fill`), solved on at most FILL_POINTS of the points (its
    sparse LU took 67 s for 150k unknowns on a sphere) and carried to the others from their
    nearest solved neighbours, inverse-distance weighted: the extension is smooth, so little is lost."""
    from scipy.spatial import cKDTree

    from ...core.color_fill import laplace_fill

    n = len(points)
    if n <= FILL_POINTS:
        return laplace_fill(points, colors, known)[~known]
    subset = np.sort(np.random.default_rng(0).choice(n, FILL_POINTS, replace=False))
    solved = laplace_fill(points[subset], colors[subset], known[subset])
    distance, nearest = cKDTree(points[subset]).query(points[~known], k=FILL_NEIGHBOURS)
    weight = 1.0 / np.maximum(distance, 1e-12)
    return (solved[nearest] * weight[..., None]).sum(1) / weight.sum(1, keepdims=True)


def match_colors(source: np.ndarray, target: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-channel gain taking `source` [P, 3] to `target` [P, 3] (the median ratio: lighting and
    white balance scale colours, and splats straddling an edge in the photo must not flatten it),
    applied to `values` [Q, 3]; unchanged with fewer than MIN_MATCH_PAIRS usable pairs."""
    out = values.copy()
    for c in range(3):
        usable = source[:, c] > 0.05
        if usable.sum() >= MIN_MATCH_PAIRS:
            out[:, c] *= float(np.clip(np.median(target[usable, c] / source[usable, c]), *MATCH_GAIN))
    return np.clip(out, 0.0, 1.0)


def bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """image [H, W, C] float, uv [n, 2] pixels (centres at +0.5, clamped at the border) -> [n, C]."""
    h, w = image.shape[:2]
    x = np.clip(uv[:, 0] - 0.5, 0, w - 1)
    y = np.clip(uv[:, 1] - 0.5, 0, h - 1)
    x0, y0 = np.minimum(np.floor(x).astype(np.int64), w - 2 if w > 1 else 0), np.minimum(np.floor(y).astype(np.int64), h - 2 if h > 1 else 0)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _eroded(mask: np.ndarray) -> np.ndarray:
    """The mask less its outermost pixel ring (mixed with the background), unless that empties it."""
    from ...core.compositing import erode

    inner = erode(mask, 1)
    return inner if inner.any() else mask
