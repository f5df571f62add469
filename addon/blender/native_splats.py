"""Blender 5.3+: the lifted object is a native Gaussian-splat point cloud (`type ==
'GAUSSIAN_SPLAT'`), which EEVEE renders in every view and in F12 renders, and which Geometry
Nodes, other add-ons and Blender's exporters read as real splats. Lines before 5.3 keep the
point proxy (`proxy.py`) and the GLSL draw (`splat_draw.py`); `supported()` is the one gate.

The cloud is built in bulk (`PointCloud.resize` + `foreach_set` of every attribute; points
have no `add()`), holds the root-local Gaussians (the root's world matrix places it, like the
proxy) and takes the role 'PROXY', so everything that finds a root's stand-in finds it. The
live loop writes 'position', 'rotation' and 'scale' after each LBS from flat float32 arrays
the worker made (`core.native_splats.posed_attributes`): three bulk copies, no per-point Python.
"""
from __future__ import annotations

import bpy
import numpy as np

from ..core import native_splats as convention

NATIVE_SPLATS = (5, 3, 0)  # the first Blender with native Gaussian splats


def supported() -> bool:
    """This Blender shows lifted objects as native splats (the one version gate)."""
    return tuple(bpy.app.version) >= NATIVE_SPLATS


def is_native(ob) -> bool:
    return ob is not None and ob.type == "POINTCLOUD" and getattr(ob.data, "type", "") == "GAUSSIAN_SPLAT"


def _write(cloud, arrays: dict[str, tuple[str, np.ndarray]]) -> None:
    for name, (kind, values) in arrays.items():
        attribute = cloud.attributes.get(name)
        if attribute is None or attribute.data_type != kind:
            if attribute is not None:
                cloud.attributes.remove(attribute)
            attribute = cloud.attributes.new(name, kind, "POINT")
        attribute.data.foreach_set(convention.TYPES[kind], values)


def create(root: bpy.types.Object, gaussians, collection: bpy.types.Collection) -> bpy.types.Object:
    """A native splat cloud of `gaussians` (root-local) parented to `root`."""
    cloud = bpy.data.pointclouds.new(f"{root.name} Splats")
    cloud.resize(len(gaussians))
    cloud.type = "GAUSSIAN_SPLAT"
    _write(cloud, convention.all_attributes(gaussians))
    cloud.update_tag()
    ob = bpy.data.objects.new(f"{root.name} Splats", cloud)
    ob.uplift.role, ob.uplift.uid = "PROXY", root.uplift.uid
    ob.parent = root
    ob.hide_select = True  # clicks in the view pick the control empties, as with the point proxy
    collection.objects.link(ob)
    return ob


def write_pose(ob: bpy.types.Object, posed: dict[str, np.ndarray]) -> bool:
    """Write a pose (`core.native_splats.posed_attributes`) to the cloud; False (nothing written)
    when its point count differs."""
    cloud = ob.data
    if len(cloud.points) * 3 != posed[convention.POSITION].size:
        return False
    for name in convention.POSED:
        attribute = cloud.attributes.get(name)
        if attribute is None:
            return False
        attribute.data.foreach_set(convention.TYPES[attribute.data_type], posed[name])
    cloud.update_tag()
    return True


def upgrade(root: bpy.types.Object) -> bpy.types.Object | None:
    """A root saved before 5.3 (a point proxy mesh) gets a native cloud of its rest Gaussians in
    the proxy's place; the live loop's restore then writes the saved pose. Returns the new
    cloud, or None when there was nothing to upgrade."""
    from . import scene_io

    old = scene_io.proxy_of(root)
    if not supported() or is_native(old) or root.uplift.gaussians is None:
        return None
    collection = (old.users_collection[0] if old is not None and old.users_collection else
                  root.users_collection[0] if root.users_collection else bpy.context.scene.collection)
    if old is not None:
        mesh = old.data
        bpy.data.objects.remove(old)
        if mesh is not None and mesh.users == 0:
            bpy.data.meshes.remove(mesh)
    return create(root, scene_io.load_gaussians(root), collection)


def upgrade_file() -> int:
    """Upgrade every lifted object of the open file (after loading one saved before 5.3)."""
    if not supported():
        return 0
    roots = [ob for ob in bpy.data.objects if ob.uplift.role == "ROOT" and ob.uplift.uid]
    return sum(upgrade(root) is not None for root in roots)
