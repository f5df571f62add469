"""A known scene for the mesh lifter's tests: a coloured box posed in front of a photo camera,
rendered (as dense surface splats) over a grey background into a photo and its mask."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BACKGROUND = 0.3


@dataclass
class BoxScene:
    camera: object        # core.camera.Camera (60 degree horizontal field of view: a PNG photo's default)
    image: np.ndarray     # uint8 [H, W, 3]
    mask: np.ndarray      # bool [H, W]
    posed: object         # trimesh.Trimesh in the camera's world (Blender axes, Z up)
    canonical: object     # the same box at the origin, unturned
    truth: object         # Gaussians of the posed box's surface (what rendered the photo)


def box_scene(width: int = 128, height: int = 96, yaw_deg: float = 30.0, depth: float = 2.5,
              colors: str = "face", gain: float = 1.0) -> BoxScene:
    """colors: 'face' (a colour per triangle), 'vertex' or 'none' (the file has no colour; the photo
    shows the face colours anyway). gain multiplies the colours the photo shows (not the file's)."""
    import torch
    import trimesh

    from uplift.core.camera import Camera
    from uplift.core.mesh_surface import SurfaceMesh, sample_surface, surface_gaussians
    from uplift.core.render import render
    from uplift.core.transforms import axis_angle_matrix

    torch.set_num_threads(1)
    canonical = trimesh.creation.box(extents=[1.0, 0.6, 0.8])
    rng = np.random.default_rng(1)
    face_rgb = (rng.random((len(canonical.faces), 3)) * 180 + 50).astype(np.uint8)
    if colors == "face":
        canonical.visual.face_colors = face_rgb
    elif colors == "vertex":
        canonical.visual.vertex_colors = (rng.random((len(canonical.vertices), 3)) * 180 + 50).astype(np.uint8)
    seen_rgb = canonical.visual.face_colors[:, :3] / 255.0 if colors != "none" else face_rgb / 255.0
    R = axis_angle_matrix(np.array([0, 0, 1.0]), np.radians(yaw_deg)) @ axis_angle_matrix(np.array([1.0, 0, 0]),
                                                                                          np.radians(-15))
    posed = canonical.copy()
    posed.apply_transform(np.block([[R, np.array([[0.2], [depth], [0.1]])], [np.zeros((1, 3)), np.ones((1, 1))]]))
    camera = Camera.from_fov(width, height)
    surface = SurfaceMesh(np.asarray(posed.vertices, float), np.asarray(posed.faces),
                          face_colors=np.clip(seen_rgb * gain, 0, 1))
    s = sample_surface(surface, 60_000, seed=7)
    truth = surface_gaussians(s, s.colors)
    rgba = render(truth, camera, backend="torch").rgba.numpy().astype(np.float64)
    photo = rgba[..., :3] * rgba[..., 3:] + BACKGROUND * (1 - rgba[..., 3:])
    return BoxScene(camera, (photo * 255).round().astype(np.uint8), geometric_mask(posed, camera), posed, canonical,
                    truth)


def geometric_mask(mesh, camera) -> np.ndarray:
    """bool [H, W]: the pixels whose centre's ray hits the mesh (exact, unlike a splat render's alpha,
    whose tails widen every silhouette by about a pixel)."""
    h, w = camera.height, camera.width
    ys, xs = np.mgrid[0:h, 0:w]
    rays = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs, dtype=float)], -1).reshape(-1, 3) @ np.linalg.inv(camera.K).T
    c2w = camera.camera_to_world
    d = rays @ c2w[:3, :3].T                                                     # [P, 3] world directions
    o = c2w[:3, 3]
    tri = np.asarray(mesh.vertices, float)[np.asarray(mesh.faces)]              # [F, 3, 3]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    p = np.cross(d[:, None, :], e2[None])                                         # [P, F, 3]  (Moeller-Trumbore)
    det = (p * e1[None]).sum(-1)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    t = o[None, None, :] - tri[None, :, 0]
    u = (t * p).sum(-1) * inv
    q = np.cross(t, e1[None])
    v = (d[:, None, :] * q).sum(-1) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & ((q * e2[None]).sum(-1) * inv > 0)
    return hit.any(1).reshape(h, w)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def silhouette(g, camera) -> np.ndarray:
    from uplift.core.render import render

    return render(g, camera, backend="torch").rgba[..., 3].numpy() > 0.5


def nearest_face(points: np.ndarray, mesh) -> tuple[np.ndarray, np.ndarray]:
    """For points on or near a small trimesh: (face index [N], distance to that face's plane [N]),
    over the faces whose triangle contains the point's projection (brute force, no rtree)."""
    corners = np.asarray(mesh.vertices, float)[np.asarray(mesh.faces)]        # [F, 3, 3]
    a, e1, e2 = corners[:, 0], corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    normal = np.cross(e1, e2)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    rel = points[:, None, :] - a[None]                                        # [N, F, 3]
    plane = np.abs((rel * normal[None]).sum(-1))
    d11, d12, d22 = (e1 * e1).sum(1), (e1 * e2).sum(1), (e2 * e2).sum(1)
    r1, r2 = (rel * e1[None]).sum(-1), (rel * e2[None]).sum(-1)
    det = d11 * d22 - d12 ** 2
    u, v = (d22 * r1 - d12 * r2) / det, (d11 * r2 - d12 * r1) / det
    inside = (u >= -1e-6) & (v >= -1e-6) & (u + v <= 1 + 1e-6)
    distance = np.where(inside, plane, np.inf)
    face = distance.argmin(1)
    return face, distance[np.arange(len(points)), face]
