"""The visible stand-in of a lifted object: its Gaussian centres as coloured points.

A mesh of loose vertices (one per Gaussian, root-local) with a colour attribute, drawn
as points by a small Geometry Nodes modifier, so the object can be seen from any
viewpoint. The live handler moves its vertices with the deformation.
"""
from __future__ import annotations

import bpy
import numpy as np

COLOR_ATTRIBUTE = "Col"
NODE_GROUP = "Uplift Points"
MATERIAL = "Uplift Points"


def _point_nodes() -> bpy.types.NodeTree:
    group = bpy.data.node_groups.get(NODE_GROUP)
    if group is not None:
        return group
    group = bpy.data.node_groups.new(NODE_GROUP, "GeometryNodeTree")
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    size = group.interface.new_socket("Radius", in_out="INPUT", socket_type="NodeSocketFloat")
    size.default_value = 0.005
    nodes, links = group.nodes, group.links
    source, sink = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    to_points = nodes.new("GeometryNodeMeshToPoints")
    set_material = nodes.new("GeometryNodeSetMaterial")
    set_material.inputs["Material"].default_value = _material()
    links.new(source.outputs["Geometry"], to_points.inputs["Mesh"])
    links.new(source.outputs["Radius"], to_points.inputs["Radius"])
    links.new(to_points.outputs["Points"], set_material.inputs["Geometry"])
    links.new(set_material.outputs["Geometry"], sink.inputs["Geometry"])
    return group


def _material() -> bpy.types.Material:
    material = bpy.data.materials.get(MATERIAL)
    if material is not None:
        return material
    material = bpy.data.materials.new(MATERIAL)
    material.use_nodes = True
    nodes = material.node_tree.nodes
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    attribute = nodes.new("ShaderNodeAttribute")
    attribute.attribute_name = COLOR_ATTRIBUTE
    material.node_tree.links.new(attribute.outputs["Color"], bsdf.inputs["Base Color"])
    return material


def set_modifier_input(modifier: bpy.types.NodesModifier, name: str, value) -> None:
    """Set a Geometry Nodes modifier's input by its interface name. Blender 5.2 exposes the
    inputs as RNA (`modifier.properties.inputs.<identifier>.value`) and refuses the ID-property
    assignment `modifier[identifier] = value` that 4.2–5.1 use."""
    identifier = modifier.node_group.interface.items_tree[name].identifier
    properties = getattr(modifier, "properties", None)
    if properties is not None and hasattr(properties, "inputs"):
        getattr(properties.inputs, identifier).value = value
    else:
        modifier[identifier] = value


def create(root: bpy.types.Object, gaussians, collection: bpy.types.Collection) -> bpy.types.Object:
    """A proxy of `gaussians` (root-local) parented to `root`: on Blender 5.3+ the native splat
    cloud itself (`native_splats`), before it a point mesh."""
    from . import native_splats

    if native_splats.supported():
        return native_splats.create(root, gaussians, collection)
    means = gaussians.means.detach().cpu().numpy().astype(np.float32)
    colors = np.clip(gaussians.base_colors.detach().cpu().numpy(), 0.0, 1.0).astype(np.float32)
    mesh = bpy.data.meshes.new(f"{root.name} Points")
    mesh.vertices.add(len(means))
    mesh.vertices.foreach_set("co", means.ravel())
    attribute = mesh.color_attributes.new(COLOR_ATTRIBUTE, "BYTE_COLOR", "POINT")
    rgba = np.concatenate([colors, np.ones((len(colors), 1), np.float32)], axis=1)
    attribute.data.foreach_set("color_srgb", rgba.ravel())
    mesh.update()
    ob = bpy.data.objects.new(f"{root.name} Points", mesh)
    ob.uplift.role, ob.uplift.uid = "PROXY", root.uplift.uid
    ob.parent = root
    ob.hide_select = True
    ob.hide_render = True  # the Gaussians are what renders; the points only stand in for them in the viewport
    modifier = ob.modifiers.new("Uplift Points", "NODES")
    modifier.node_group = _point_nodes()
    extent = float(np.ptp(means, axis=0).max()) if len(means) else 1.0
    set_modifier_input(modifier, "Radius", max(extent / 300.0, 1e-4))
    collection.objects.link(ob)
    return ob


def positions(ob: bpy.types.Object) -> np.ndarray:
    """[N, 3] float32 root-local centres a proxy shows now: a point mesh's vertices or a native
    splat cloud's 'position' attribute."""
    if ob.type == "MESH":
        co = np.empty(len(ob.data.vertices) * 3, dtype=np.float32)
        ob.data.vertices.foreach_get("co", co)
    else:
        co = np.empty(len(ob.data.points) * 3, dtype=np.float32)
        ob.data.attributes["position"].data.foreach_get("vector", co)
    return co.reshape(-1, 3)
