"""Triangle meshes as splat surfaces: load any mesh file (`trimesh`), sample its surface
uniformly by area, and lay flat Gaussians in it.

Loading (`load_surface_mesh`): OBJ, glTF/GLB, PLY and STL through `trimesh` (imported
lazily); multi-mesh scenes are flattened with their node transforms. Colours kept per part:
a baseColor texture through the UVs (times the baseColor factor), else vertex colours, else
a material's flat colour (`face_colors`). The up axis follows the format (glTF and OBJ are
Y up, PLY/STL/OFF Z up) and is turned into Uplift's Z up the way Blender's importers do:
(x, y, z) -> (x, -z, y), so a glTF model's front (+Z) faces -Y, towards a photo camera.
Bad input (unreadable, no triangles, non-finite, all faces zero-area, over `MAX_FACES` or
`MAX_MESH_BYTES`) raises `MeshFormatError` with a one-line message.

Sampling (`sample_surface`): faces drawn by systematic sampling of the cumulative area (the
count per face is proportional to its area within one sample), points inside a face from the
R2 low-discrepancy sequence mapped onto the triangle by the area-preserving square-root map,
so large faces are covered evenly instead of in random clumps. Deterministic for a seed.

Silhouette (`silhouette`): the mesh's triangles filled through a camera (what a fit looks
like over the photo, without rendering splats).

Splats (`surface_gaussians`): a disc per sample lying in its face, `TANGENT_SIGMA` sample
spacings wide along the surface and `FLATNESS` of that along the normal. A 3D Gaussian has no
front or back, and no renderer culls (the GLSL draw disables face culling), so every splat is
visible from both sides.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import MeshFormatError

MAX_FACES = 5_000_000                 # triangles in one file, all parts together
MAX_MESH_BYTES = 512 * 1024 * 1024    # file size (a glTF's side files not counted)
MAX_COORDINATE = 1e15                 # |x| beyond this is refused: squares of it overflow float32 maths
UP_AXES = ("auto", "y", "z")
FORMAT_UP = {".glb": "y", ".gltf": "y", ".obj": "y", ".ply": "z", ".stl": "z", ".off": "z"}
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # Blender's glTF/OBJ import
TANGENT_SIGMA = 0.6   # splat std along the surface, in sample spacings (neighbours overlap: no pinholes)
FLATNESS = 0.1        # splat std along the normal relative to its std along the surface
R2 = (0.7548776662466927, 0.5698402909980532)  # 1/g, 1/g^2 for the plastic number g


@dataclass(frozen=True)
class SurfaceMesh:
    """One flattened triangle mesh in Uplift's world axes (Z up), with what it knows of its colours."""

    vertices: np.ndarray                      # [V, 3] float64
    faces: np.ndarray                         # [F, 3] int64
    uv: np.ndarray | None = None              # [V, 2] texture coordinates (v up); rows of untextured parts unused
    face_texture: np.ndarray | None = None    # [F] int: index into `textures`, -1 for none
    textures: tuple[np.ndarray, ...] = ()     # float32 [h, w, 3] baseColor images in [0, 1] (factor applied)
    vertex_colors: np.ndarray | None = None   # [V, 3] in [0, 1]; NaN rows: that vertex has none
    face_colors: np.ndarray | None = None     # [F, 3] in [0, 1]; NaN rows: that face has none
    name: str = "mesh"

    @property
    def face_areas(self) -> np.ndarray:  # [F]
        v = self.vertices[self.faces]
        return 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)

    @property
    def area(self) -> float:
        return float(self.face_areas.sum())

    @property
    def signed_volume(self) -> float:
        """Enclosed volume, positive when the faces wind counter-clockwise seen from outside (normals
        point out); about the bounding box's centre, so an open surface through it gives about 0."""
        lo, hi = self.bounds()
        v = self.vertices[self.faces] - (lo + hi) / 2
        return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6)

    @property
    def has_colors(self) -> bool:
        return bool(self.textures) or self.vertex_colors is not None or self.face_colors is not None

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:  # lowest and highest corner of the used vertices
        used = self.vertices[np.unique(self.faces)]
        return used.min(0), used.max(0)

    def with_vertices(self, vertices: np.ndarray) -> "SurfaceMesh":
        return replace(self, vertices=np.asarray(vertices, np.float64))


@dataclass(frozen=True)
class SurfaceSamples:
    points: np.ndarray       # [n, 3]
    normals: np.ndarray      # [n, 3] unit face normals (either side: splats are two-sided)
    face_index: np.ndarray   # [n] int64
    colors: np.ndarray | None  # [n, 3] in [0, 1] from the mesh; NaN rows where it has none; None: no colour at all
    spacing: float           # sqrt(area / n): the mean distance between neighbouring samples

    @property
    def colored(self) -> np.ndarray:  # [n] bool: the mesh gave this sample a colour
        return np.zeros(len(self.points), bool) if self.colors is None else ~np.isnan(self.colors[:, 0])


# -- loading ---------------------------------------------------------------------------------

def load_surface_mesh(path, up: str = "auto", name: str | None = None) -> SurfaceMesh:
    """Read a mesh file -> SurfaceMesh in Z-up world axes. up: 'auto' (by format), 'y' or 'z';
    name: what messages call the file (default: its path)."""
    path = Path(path)
    name = name or str(path)
    if up not in UP_AXES:
        raise MeshFormatError(f"the up axis must be one of {', '.join(UP_AXES)}, not {up!r}")
    suffix = path.suffix.lower()
    if suffix not in FORMAT_UP:
        raise MeshFormatError(f"mesh {name}: unsupported format {suffix or '(no extension)'!r}; "
                              f"use one of {', '.join(sorted(FORMAT_UP))}")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise MeshFormatError(f"mesh {name} does not exist") from None
    except OSError as exc:
        raise MeshFormatError(f"cannot read mesh {name}: {exc.strerror or exc}") from None
    if not path.is_file():
        raise MeshFormatError(f"mesh {name} is not a file")
    if size > MAX_MESH_BYTES:
        raise MeshFormatError(f"mesh {name} is {size / 2**20:.0f} MiB, over the {MAX_MESH_BYTES // 2**20} MiB limit")
    if size == 0:
        raise MeshFormatError(f"mesh {name} is empty (0 bytes)")
    try:
        import trimesh
    except ImportError as exc:
        raise MeshFormatError(f"reading meshes needs the Python package 'trimesh' ({exc})") from None
    try:
        scene = trimesh.load(str(path), force="scene", process=False)  # keep NaNs to report them
        parts = [g for g in scene.dump() if isinstance(g, trimesh.Trimesh)]
    except Exception as exc:  # a third-party parser: any failure means "unreadable", reported with its text
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise MeshFormatError(f"cannot read mesh {name}: {type(exc).__name__}: {first}") from None
    mesh = _from_parts(parts, name)
    if (FORMAT_UP[suffix] if up == "auto" else up) == "y":
        mesh = mesh.with_vertices(mesh.vertices @ Y_UP_TO_Z_UP.T)
    return mesh


def check_triangle_count(count: int, name: str) -> None:
    """Before reading a mesh's arrays (a file's or a Blender object's): some triangles, not too many."""
    if count == 0:
        raise MeshFormatError(f"mesh {name} has no triangles (empty, a point cloud, or only edges)")
    if count > MAX_FACES:
        raise MeshFormatError(f"mesh {name} has {count} triangles, over the limit of {MAX_FACES}")


def check_vertices(vertices: np.ndarray, name: str) -> None:  # [V, 3]
    if not np.isfinite(vertices).all():
        raise MeshFormatError(f"mesh {name} has NaN or infinite vertex coordinates")
    if np.abs(vertices).max() > MAX_COORDINATE:
        raise MeshFormatError(f"mesh {name} has coordinates beyond ±{MAX_COORDINATE:g}")


def check_area(mesh: SurfaceMesh) -> SurfaceMesh:
    if not mesh.area > 0:
        raise MeshFormatError(f"all {len(mesh.faces)} triangles of mesh {mesh.name} have zero area")
    return mesh


def _from_parts(parts: list, name: str) -> SurfaceMesh:
    parts = [p for p in parts if len(p.faces)]
    check_triangle_count(sum(len(p.faces) for p in parts), name)
    vertices, faces, uvs, face_texture, textures, vcolors, fcolors = [], [], [], [], [], [], []
    offset = 0
    for part in parts:
        v = np.asarray(part.vertices, np.float64)
        f = np.asarray(part.faces, np.int64) + offset
        texture, uv, vertex_rgb, face_rgb = _part_colors(part)
        vertices.append(v)
        faces.append(f)
        uvs.append(uv if uv is not None else np.zeros((len(v), 2)))
        face_texture.append(np.full(len(f), len(textures) if texture is not None else -1))
        if texture is not None:
            textures.append(texture)
        vcolors.append(vertex_rgb if vertex_rgb is not None else np.full((len(v), 3), np.nan))
        fcolors.append(face_rgb if face_rgb is not None else np.full((len(f), 3), np.nan))
        offset += len(v)
    V, F = np.concatenate(vertices), np.concatenate(faces)
    check_vertices(V, name)
    vcol, fcol = np.concatenate(vcolors), np.concatenate(fcolors)
    mesh = SurfaceMesh(V, F, uv=np.concatenate(uvs) if textures else None,
                       face_texture=np.concatenate(face_texture) if textures else None, textures=tuple(textures),
                       vertex_colors=None if np.isnan(vcol).all() else vcol,
                       face_colors=None if np.isnan(fcol).all() else fcol, name=name)
    return check_area(mesh)


def _part_colors(part):
    """-> (texture float32 [h, w, 3] | None, uv [V, 2] | None, vertex colours [V, 3] | None,
    face colours [F, 3] | None), each in [0, 1]."""
    visual = part.visual
    kind = getattr(visual, "kind", None)
    if kind == "vertex":
        return None, None, np.asarray(visual.vertex_colors, np.float64)[:, :3] / 255.0, None
    if kind == "face":
        return None, None, None, np.asarray(visual.face_colors, np.float64)[:, :3] / 255.0
    if kind != "texture":
        return None, None, None, None
    material = getattr(visual, "material", None)
    image = getattr(material, "baseColorTexture", None)
    factor = getattr(material, "baseColorFactor", None)
    if image is None and hasattr(material, "image"):  # SimpleMaterial (OBJ + MTL): Kd only without map_Kd, as
        image = material.image                        # Blender's importer (trimesh writes Kd 0.4 beside maps)
        factor = getattr(material, "diffuse", None) if image is None else None
    factor = None if factor is None else np.asarray(factor, np.float64).reshape(-1)[:3]
    if factor is not None and factor.max() > 1.0:  # trimesh keeps uint8 colours
        factor = factor / 255.0
    uv = getattr(visual, "uv", None)
    if image is not None and uv is not None and len(uv) == len(part.vertices):
        texture = np.asarray(image.convert("RGB"), np.float32) / 255.0
        if factor is not None:
            texture = texture * factor.astype(np.float32)
        return texture, np.asarray(uv, np.float64), None, None
    return None, None, None, None if factor is None else np.tile(factor, (len(part.faces), 1))


# -- sampling ----------------------------------------------------------------------------------

def sample_surface(mesh: SurfaceMesh, count: int, seed: int = 0) -> SurfaceSamples:
    """`count` points spread uniformly by area over the mesh's faces (see module doc)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = np.random.default_rng(seed)
    areas = mesh.face_areas
    cumulative = np.cumsum(areas)
    total = cumulative[-1]
    u = (np.arange(count) + rng.random()) / count * total
    face = np.minimum(np.searchsorted(cumulative, u, side="right"), len(areas) - 1)
    first = np.searchsorted(face, face, side="left")  # `face` is sorted: rank of each sample within its face
    rank = np.arange(count) - first
    shift = rng.random((len(areas), 2))
    r1 = np.mod(shift[face, 0] + rank * R2[0], 1.0)
    r2 = np.mod(shift[face, 1] + rank * R2[1], 1.0)
    root = np.sqrt(r1)  # square -> triangle, area-preserving
    bary = np.stack([1.0 - root, root * (1.0 - r2), root * r2], 1)
    corners = mesh.vertices[mesh.faces[face]]                     # [n, 3, 3]
    points = np.einsum("nk,nkd->nd", bary, corners)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    return SurfaceSamples(points, normals, face, _sample_colors(mesh, face, bary), math.sqrt(total / count))


def _sample_colors(mesh: SurfaceMesh, face: np.ndarray, bary: np.ndarray) -> np.ndarray | None:
    if not mesh.has_colors:
        return None
    colors = np.full((len(face), 3), np.nan)
    corners = mesh.faces[face]
    if mesh.textures:
        which = mesh.face_texture[face]
        uv = np.einsum("nk,nkd->nd", bary, mesh.uv[corners])
        for t, image in enumerate(mesh.textures):
            sel = which == t
            colors[sel] = sample_texture(image, uv[sel])
    if mesh.vertex_colors is not None:
        open_ = np.isnan(colors[:, 0])
        colors[open_] = np.einsum("nk,nkd->nd", bary[open_], mesh.vertex_colors[corners[open_]])
    if mesh.face_colors is not None:
        open_ = np.isnan(colors[:, 0])
        colors[open_] = mesh.face_colors[face[open_]]
    return np.clip(colors, 0.0, 1.0)  # NaN stays NaN


def sample_texture(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup: image [h, w, 3], uv [n, 2] (v up; texel centres at +0.5) -> [n, 3]. UVs
    outside [0, 1] repeat, but no lookup blends across the image's border: an atlas's or a
    quad's opposite edge does not bleed in."""
    h, w = image.shape[:2]
    u, v = uv[:, 0], 1.0 - uv[:, 1]
    x = np.where((u >= 0) & (u <= 1), u, np.mod(u, 1.0)) * w - 0.5
    y = np.where((v >= 0) & (v <= 1), v, np.mod(v, 1.0)) * h - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    xa, xb = np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1)
    ya, yb = np.clip(y0, 0, h - 1), np.clip(y0 + 1, 0, h - 1)
    top = image[ya, xa] * (1 - fx) + image[ya, xb] * fx
    bottom = image[yb, xa] * (1 - fx) + image[yb, xb] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float64)


# -- splats ------------------------------------------------------------------------------------

def tangent_frames(normals: np.ndarray) -> np.ndarray:
    """[n, 3] unit normals -> rotations [n, 3, 3] with columns (t1, t2, normal), det +1."""
    helper = np.where((np.abs(normals[:, 0]) < 0.9)[:, None], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    t1 = np.cross(normals, helper)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(normals, t1)
    return np.stack([t1, t2, normals], -1)


def surface_gaussians(samples: SurfaceSamples,
                      colors: np.ndarray,          # [n, 3] in [0, 1]
                      spacing: float | None = None, opacity: float = 0.995,
                      tangent_sigma: float = TANGENT_SIGMA, flatness: float = FLATNESS):
    """Flat discs in the surface, `tangent_sigma` * spacing wide (default spacing: the samples')."""
    import torch

    from . import quaternion
    from .gaussians import Gaussians

    n = len(samples.points)
    sigma = tangent_sigma * (samples.spacing if spacing is None else spacing)
    scales = np.tile([sigma, sigma, sigma * flatness], (n, 1))
    quats = quaternion.from_matrix(torch.from_numpy(tangent_frames(samples.normals)))
    return Gaussians.from_colors(means=torch.from_numpy(samples.points).float(),
                                 colors=torch.from_numpy(np.asarray(colors, np.float64)).float(),
                                 scales=torch.from_numpy(scales).float(), opacities=torch.full((n,), opacity),
                                 quats=quats.float())


# -- silhouette --------------------------------------------------------------------------------

SUBPIXEL_BITS = 4  # cv2.fillPoly's fixed-point fraction: vertices at 1/16 pixel


def silhouette(mesh: SurfaceMesh, camera) -> np.ndarray:
    """bool [H, W]: the photo pixels (centres) the mesh's triangles cover through `camera`
    (core.camera.Camera). Triangles with a corner behind the camera are left out."""
    import cv2

    out = np.zeros((camera.height, camera.width), np.uint8)
    uv, z = camera.project(mesh.vertices)
    front = (z > 1e-9)[mesh.faces].all(1)
    corners = uv[mesh.faces[front]] - 0.5                   # cv2's pixel centres are integers
    limit = 4.0 * max(camera.width, camera.height)          # far outside the frame: clip (int32 overflow)
    fixed = np.round(np.clip(corners, -limit, limit) * (1 << SUBPIXEL_BITS)).astype(np.int32)
    lo, hi = fixed.min(1) >> SUBPIXEL_BITS, fixed.max(1) >> SUBPIXEL_BITS
    on_frame = (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < camera.width) & (lo[:, 1] < camera.height)
    for triangle in fixed[on_frame]:  # one by one: fillPoly fills overlapping polygons by parity
        cv2.fillConvexPoly(out, triangle, 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return out.astype(bool)
