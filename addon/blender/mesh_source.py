"""A Blender mesh object as the mesh lifter's input (`core.mesh_surface.SurfaceMesh`), and the
fit of it to the photo that Fit to Photo, Next Fit and Lift share.

Conversion (`surface_mesh`) reads the evaluated mesh (modifiers applied) in bulk with
`foreach_get`, triangulates it (`loop_triangles`) and applies the object's world matrix.
Each triangle keeps its own three corners (UVs are per corner in Blender). Colours, per
material slot: an Image Texture node linked to the Principled BSDF's Base Color (sampled
through the active UV map), else the Base Color's constant value; any other material gives
no colour of its own. The active colour attribute (vertex paint, a scan's colours; per point or
per corner), where there is one, colours every triangle no texture covers, ahead of the material
constants (`core.mesh_surface`'s order). What has no colour takes the lifter's harmonic fill.

The fit lives in the scene's Uplift properties (so undo and saving keep it): the mesh, its
hypotheses (mesh -> world similarity matrices, best first, with IoUs), which one is chosen, and
a fingerprint of the mesh's world geometry when fitted (`geometry_key`): Lift refuses a mesh
that changed since. The chosen fit's silhouette is a tinted image layer over the photo.
"""
from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

import bpy
import numpy as np

from . import images, scene_io

FIT_RGBA = (0.1, 0.75, 1.0, 0.3)        # the fitted silhouette's tint over the photo
OUTLINE_RGBA = (0.1, 0.75, 1.0, 0.95)   # and its outline


def mesh_object(context) -> bpy.types.Object:
    """The active object when it is a mesh (one line naming what is wrong otherwise)."""
    ob = context.active_object
    if ob is None:
        raise scene_io.SceneStateError("select the mesh to fit (import or model it first)")
    if ob.type != "MESH":
        raise scene_io.SceneStateError(f"{ob.name!r} is a {ob.type.lower()}, not a mesh: select a mesh to fit")
    return ob


def surface_mesh(ob: bpy.types.Object, depsgraph):
    """-> core.mesh_surface.SurfaceMesh of `ob` as evaluated, in world coordinates."""
    from ..core.mesh_surface import SurfaceMesh, check_area, check_triangle_count, check_vertices

    evaluated = ob.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        mesh.calc_loop_triangles()
        count = len(mesh.loop_triangles)
        check_triangle_count(count, repr(ob.name))
        local = _array(mesh.vertices, "co", np.float32, 3)
        corners = _array(mesh.loop_triangles, "vertices", np.int32, 3)
        loops = _array(mesh.loop_triangles, "loops", np.int32, 3)
        material = _array(mesh.loop_triangles, "material_index", np.int32)
        layer = mesh.uv_layers.active
        uv_loops = _array(layer.uv, "vector", np.float32, 2) if layer is not None else None
        slots = [slot.material for slot in evaluated.material_slots]
        corner_colors = _color_attribute(mesh, corners, loops)
        matrix = np.array(evaluated.matrix_world, dtype=np.float64)
    finally:
        evaluated.to_mesh_clear()
    world = local.astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
    vertices = world[corners].reshape(-1, 3)
    check_vertices(vertices, repr(ob.name))
    faces = np.arange(3 * count, dtype=np.int64).reshape(count, 3)
    colors = _material_colors(slots, material, count)
    uv = uv_loops[loops].reshape(-1, 2).astype(np.float64) if uv_loops is not None and colors.textures else None
    if colors.textures and uv is None:  # an image texture but no UV map: the texture cannot be looked up
        colors = _MaterialColors(colors.face_colors, np.full(count, -1), ())
    surface = SurfaceMesh(vertices, faces, uv=uv,
                          face_texture=colors.face_texture if colors.textures else None, textures=colors.textures,
                          vertex_colors=corner_colors,
                          face_colors=None if np.isnan(colors.face_colors).all() else colors.face_colors,
                          name=repr(ob.name))
    return check_area(surface)


def _color_attribute(mesh, corners: np.ndarray, loops: np.ndarray) -> np.ndarray | None:
    """The active colour attribute at each triangle corner: float64 [3 T, 3] sRGB in [0, 1], or None
    (no colour attribute, or one on faces or edges, which vertex paint does not make)."""
    layer = mesh.color_attributes.active_color
    if layer is None or layer.domain not in ("POINT", "CORNER"):
        return None
    rgba = _array(layer.data, "color_srgb", np.float32, 4).reshape(-1, 4)
    at = corners if layer.domain == "POINT" else loops  # [T, 3] vertex or loop indices
    return np.clip(rgba[at.reshape(-1), :3].astype(np.float64), 0.0, 1.0)


def _array(collection, attribute: str, dtype, width: int = 1) -> np.ndarray:
    values = np.empty(len(collection) * width, dtype=dtype)
    collection.foreach_get(attribute, values)
    return values.reshape(-1, width) if width > 1 else values


class _MaterialColors(NamedTuple):
    face_colors: np.ndarray              # [F, 3] sRGB in [0, 1]; NaN rows: none
    face_texture: np.ndarray             # [F] index into textures, -1: none
    textures: tuple[np.ndarray, ...]     # float32 [h, w, 3] sRGB


def _material_colors(slots, material_index: np.ndarray, count: int) -> _MaterialColors:
    """Per triangle: a constant colour (NaN: none) or an index into the textures (-1: none)."""
    face_colors = np.full((count, 3), np.nan)
    face_texture = np.full(count, -1, dtype=np.int64)
    textures: list[np.ndarray] = []
    for index, material in enumerate(slots):
        on = material_index == index
        if material is None or not on.any():
            continue
        source = base_color(material)
        if isinstance(source, np.ndarray) and source.ndim == 3:
            face_texture[on] = len(textures)
            textures.append(source)
        elif source is not None:
            face_colors[on] = source
    return _MaterialColors(face_colors, face_texture, tuple(textures))


def base_color(material: bpy.types.Material):
    """A material's own colour: float32 [h, w, 3] sRGB image (an Image Texture node feeding the
    Principled BSDF's Base Color), an sRGB [3] constant (that input unlinked), or None."""
    from ..core.exr import linear_to_srgb

    tree = material.node_tree
    bsdf = None if tree is None else next((n for n in tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled"), None)
    if bsdf is None:
        return None
    socket = bsdf.inputs.get("Base Color")
    if socket is None:
        return None
    if not socket.is_linked:
        return linear_to_srgb(np.array(socket.default_value[:3]))
    node = socket.links[0].from_node
    if node.bl_idname == "ShaderNodeTexImage" and node.image is not None and node.image.size[0] > 0:
        rgba = images.read_rgba(node.image)
        return (linear_to_srgb(rgba[..., :3]) if node.image.is_float else np.clip(rgba[..., :3], 0, 1)).astype(np.float32)
    return None


def geometry_key(mesh) -> str:
    """Fingerprint of a SurfaceMesh's world geometry: the fit holds while it is unchanged."""
    digest = hashlib.sha256(np.ascontiguousarray(mesh.vertices, np.float32).tobytes())
    digest.update(np.ascontiguousarray(mesh.faces, np.int64).tobytes())
    return digest.hexdigest()[:32]


def lift_config(scene):
    """The mesh lifter's settings from the scene's Lift onto Mesh options."""
    from ..services.backends.mesh_lift import MeshLiftConfig

    props = scene.uplift
    return MeshLiftConfig(as_placed=props.use_mesh_as_placed, refine=props.use_mesh_as_placed and props.use_mesh_refine,
                          fit_k=props.fit_count)


# -- the fit stored in the scene ---------------------------------------------------------------

def store_fits(scene, ob: bpy.types.Object, fits, key: str) -> None:
    """Keep Fit to Photo's hypotheses (mesh_lift.MeshFit, best first) for `ob`; the first is chosen."""
    props = scene.uplift
    props.fit_mesh = ob
    props.fit_hypotheses = json.dumps([{"rotation": fit.similarity.rotation.tolist(),
                                        "translation": fit.similarity.translation.tolist(),
                                        "scale": fit.similarity.scale, "iou": fit.iou} for fit in fits])
    props.fit_index = 0
    props.fit_total = len(fits)
    props.fit_key = key


def stored_fits(scene) -> list:
    """[(core.transforms.Similarity: mesh -> world, IoU)] best first; [] when there is no fit."""
    from ..core.transforms import Similarity

    text = scene.uplift.fit_hypotheses
    if not text or scene.uplift.fit_mesh is None:
        return []
    try:
        return [(Similarity(np.array(item["rotation"], dtype=np.float64), np.array(item["translation"], dtype=np.float64),
                            float(item["scale"])), float(item["iou"])) for item in json.loads(text)]
    except (ValueError, KeyError, TypeError):
        raise scene_io.SceneStateError("the stored fit is unreadable: press Fit to Photo again") from None


def chosen_placement(scene):
    """-> core.transforms.Similarity of the chosen fit (mesh -> world)."""
    fits = stored_fits(scene)
    if not fits:
        raise scene_io.SceneStateError("fit a mesh to the photo first (Fit to Photo)")
    return fits[scene.uplift.fit_index % len(fits)][0]


def fitted_mesh(context, scene):
    """-> (the fitted object, its SurfaceMesh now), refusing a mesh changed or gone since the fit."""
    ob = scene.uplift.fit_mesh
    if ob is None or ob.name not in scene.objects:
        raise scene_io.SceneStateError("the fitted mesh is gone: select a mesh and Fit to Photo again")
    surface = surface_mesh(ob, context.evaluated_depsgraph_get())
    if geometry_key(surface) != scene.uplift.fit_key:
        raise scene_io.SceneStateError(f"mesh {ob.name!r} changed since Fit to Photo: press Fit to Photo again")
    return ob, surface


def fit_overlay(silhouette: np.ndarray) -> np.ndarray:
    """bool [H, W] -> float32 [H, W, 4]: a tinted silhouette with an opaque outline."""
    from ..core.compositing import erode

    rgba = np.zeros((*silhouette.shape, 4), dtype=np.float32)
    rgba[silhouette] = FIT_RGBA
    rgba[silhouette & ~erode(silhouette, 1)] = OUTLINE_RGBA
    return rgba


def show_fit(scene, surface) -> None:
    """Draw the chosen fit of `surface` (the mesh's world SurfaceMesh) over the photo."""
    from ..core.mesh_surface import silhouette

    camera = scene_io.camera_of(scene)
    placed = surface.with_vertices(chosen_placement(scene).apply_points(surface.vertices))
    props = scene.uplift
    props.fit_overlay_image = images.show_rgba("Uplift Fit", fit_overlay(silhouette(placed, camera)),
                                               props.fit_overlay_image)
    images.camera_layer(scene_io.scene_camera(scene).data, props.fit_overlay_image, front=True)
