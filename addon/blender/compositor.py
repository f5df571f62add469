"""A compositor node tree that rebuilds Uplift's final image from the exported layers
(`pipeline.keep.LAYER_FILES`, written by Compose & Export and `uplift edit --keep` alike):

final = Mix(photo, Mix(AlphaOver(plate, object), seam_fill, factor=seam_mask), factor=region)

which is exactly how `pipeline.edit.compose` computed final.png (alpha over in the images'
own sRGB values, the seam ring replaced by the seam inpainting, the photo kept outside the
edited region). So the tree matches final.png, the images are read as Non-Color data and
the scene's view transform is set to Raw; Alpha Over takes the object's straight alpha.
The Alpha Over and the Mix nodes stay ordinary nodes for the artist to grade or re-mask.

Blender 5.0 moved the compositor to `scene.compositing_node_group` (a node group whose
Group Output is the result); earlier versions use `scene.node_tree` with a Composite node.
The artist's own compositing is never deleted: on 5.x their node group keeps a fake user when
the scene switches to Uplift's; on 4.x only the nodes Uplift made (tagged OWN_KEY) are
replaced, and the scene's Composite node is reused.
"""
from __future__ import annotations

from pathlib import Path

import bpy

TREE_NAME = "Uplift Composite"
OWN_KEY = "uplift_node"  # custom property on every node Uplift adds to a shared (4.x) tree
LAYERS = ("photo", "plate", "object", "seam_fill", "seam_mask", "region")


def _load(path: Path, name: str) -> bpy.types.Image:
    image = bpy.data.images.load(str(path), check_existing=False)
    image.name = f"Uplift {name}"
    image.colorspace_settings.name = "Non-Color"
    return image


def scene_tree(scene: bpy.types.Scene):
    """The scene's compositor node tree on this Blender version (None when it has none)."""
    if hasattr(scene, "compositing_node_group"):  # Blender 5.0+
        return scene.compositing_node_group
    return scene.node_tree


def _tree(scene: bpy.types.Scene):
    """(node tree, output node) for this Blender version, emptied of an earlier Uplift tree."""
    if hasattr(scene, "compositing_node_group"):  # Blender 5.0+
        tree = scene.compositing_node_group
        if tree is None or tree.name != TREE_NAME:
            if tree is not None:
                tree.use_fake_user = True  # the artist's tree stays in the file, one click away
            tree = bpy.data.node_groups.get(TREE_NAME) or bpy.data.node_groups.new(TREE_NAME, "CompositorNodeTree")
            scene.compositing_node_group = tree
        tree.nodes.clear()  # Uplift's own group
        if not any(item.item_type == "SOCKET" and item.in_out == "OUTPUT" for item in tree.interface.items_tree):
            tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        return tree, _new(tree, "NodeGroupOutput")
    scene.use_nodes = True  # Blender 4.2–4.5: one tree per scene, shared with the artist's nodes
    tree = scene.node_tree
    for node in [node for node in tree.nodes if node.get(OWN_KEY)]:
        tree.nodes.remove(node)
    output = next((node for node in tree.nodes if node.bl_idname == "CompositorNodeComposite"), None)
    return tree, output or _new(tree, "CompositorNodeComposite")


def _new(tree, kind: str):
    node = tree.nodes.new(kind)
    node[OWN_KEY] = True
    return node


def _mix(tree):
    if hasattr(bpy.types, "CompositorNodeMixRGB"):
        node = _new(tree, "CompositorNodeMixRGB")
        return node, node.inputs[0], node.inputs[1], node.inputs[2], node.outputs[0]
    node = _new(tree, "ShaderNodeMix")
    node.data_type = "RGBA"
    node.blend_type = "MIX"
    return node, node.inputs["Factor"], node.inputs[6], node.inputs[7], node.outputs[2]


def layer_files(folder: str | Path) -> dict[str, Path]:
    """The PNG for each layer in an export or `uplift edit --keep` folder."""
    folder = Path(folder)
    files = {name: folder / f"{name}.png" for name in LAYERS}
    missing = [str(path) for path in files.values() if not path.exists()]
    if missing:
        from ..core.errors import ImageFormatError

        raise ImageFormatError(f"cannot build the compositor tree: missing {', '.join(missing)}")
    return files


def build(scene: bpy.types.Scene, folder: str | Path):
    """Build the tree from `folder`'s layer PNGs (LAYERS); returns the tree."""
    files = layer_files(folder)
    return wire(scene, {name: _load(files[name], name) for name in LAYERS})


def rebind(scene: bpy.types.Scene, folder: str | Path):
    """Point the Uplift tree's Image nodes back at `folder`'s layer PNGs, keeping the nodes (and
    any the artist added); builds the tree when it is missing. Returns the tree."""
    files = layer_files(folder)
    nodes = layer_nodes(scene)
    if len(nodes) < len(LAYERS):
        return build(scene, folder)
    for name, node in nodes.items():
        image = bpy.data.images.load(str(files[name]), check_existing=True)
        image.colorspace_settings.name = "Non-Color"
        image.reload()  # the file may have been rewritten by a later export
        node.image = image
    return scene_tree(scene)


def layer_nodes(scene: bpy.types.Scene) -> dict:
    """The Uplift tree's Image node of each layer (by label); empty when the scene uses another tree."""
    tree = scene_tree(scene)
    if tree is None or (hasattr(scene, "compositing_node_group") and tree.name != TREE_NAME):
        return {}
    return {node.label: node for node in tree.nodes if node.bl_idname == "CompositorNodeImage" and node.label in LAYERS}


def wire(scene: bpy.types.Scene, layer_images: dict):
    """Build the tree over one Image datablock per layer (Non-Color, straight alpha); returns the tree."""
    tree, output = _tree(scene)
    nodes, links = tree.nodes, tree.links
    image_nodes = {}
    for i, name in enumerate(LAYERS):
        node = _new(tree, "CompositorNodeImage")
        node.image = layer_images[name]
        node.label = name
        node.location = (-600, 400 - 220 * i)
        image_nodes[name] = node
    over = _new(tree, "CompositorNodeAlphaOver")
    over.label = "Object over plate"
    over.location = (-250, 250)
    if "Straight Alpha" in over.inputs:
        over.inputs["Straight Alpha"].default_value = True
    else:
        # 4.x: images reach the compositor premultiplied already (Blender converts a straight
        # PNG on load), so "Convert Premultiplied" would multiply by alpha a second time.
        over.use_premultiply = False
    if "Background" in over.inputs:
        background, foreground = over.inputs["Background"], over.inputs["Foreground"]
    else:  # 4.x: Fac, Image (background), Image (foreground)
        background, foreground = over.inputs[1], over.inputs[2]
    links.new(image_nodes["plate"].outputs["Image"], background)
    links.new(image_nodes["object"].outputs["Image"], foreground)
    seam, factor, a, b, seamed = _mix(tree)
    seam.label = "Seam"
    seam.location = (0, 100)
    links.new(image_nodes["seam_mask"].outputs["Image"], factor)
    links.new(over.outputs["Image"], a)
    links.new(image_nodes["seam_fill"].outputs["Image"], b)
    keep, factor, a, b, result = _mix(tree)
    keep.label = "Photo outside the region"
    keep.location = (250, 100)
    links.new(image_nodes["region"].outputs["Image"], factor)
    links.new(image_nodes["photo"].outputs["Image"], a)
    links.new(seamed, b)
    output.location = (500, 100)
    links.new(result, output.inputs[0])
    scene.view_settings.view_transform = "Raw"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.render.use_compositing = True
    return tree
