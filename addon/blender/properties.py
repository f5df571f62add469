"""Data stored in the .blend: what each Uplift object is, and the scene's workflow state.

Everything that must survive save/reopen lives here or in datablocks these point to
(the packed photo, mask and plate images, the Gaussians' PLY text). Runtime-only state
(deformers, render caches) lives in `state.py`.
"""
from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       IntVectorProperty, PointerProperty, StringProperty)

ROLES = [
    ("NONE", "None", "Not an Uplift object"),
    ("ROOT", "Root", "The empty that places a lifted object (6DoF)"),
    ("CONTROL", "Control", "A control point of a lifted object"),
    ("PROXY", "Proxy", "The point cloud showing a lifted object's Gaussians"),
]


def _pinned_changed(self, context) -> None:
    # A pin toggled from the UI changes the handle set: let the live handler re-solve.
    from . import handlers

    handlers.mark_dirty(self.uid)


class UpliftObjectProps(bpy.types.PropertyGroup):
    role: EnumProperty(name="Role", items=ROLES, default="NONE")
    uid: StringProperty(name="Object ID", description="Identifies the lifted object this belongs to")
    # Controls
    index: IntProperty(name="Control Index", default=-1)
    pinned: BoolProperty(name="Pinned", default=False, update=_pinned_changed,
                         description="A pinned control is a handle: it stays where it is and drags the object")
    # Roots
    gaussians: PointerProperty(name="Gaussians", type=bpy.types.Text,
                               description="The lifted Gaussians (PLY, base64) in the root's local frame")
    mask_image: PointerProperty(name="Mask", type=bpy.types.Image,
                                description="The object's mask in the original photo")
    render_image: PointerProperty(name="Render", type=bpy.types.Image,
                                  description="The live render shown over the camera view")
    photo_camera: StringProperty(name="Photo Camera",
                                 description="The photo's camera (JSON) in the root's local frame when lifted: "
                                             "the live render shows the photo's pixels through it")
    control_count: IntProperty(name="Control Points", default=0)
    graph_neighbours: IntProperty(name="Graph Neighbours", default=8)
    skin_neighbours: IntProperty(name="Skinning Neighbours", default=4)


class UpliftPromptPoint(bpy.types.PropertyGroup):
    x: FloatProperty()
    y: FloatProperty()
    label: IntProperty(description="1: part of the object, 0: not part of it")


class UpliftSceneProps(bpy.types.PropertyGroup):
    photo_image: PointerProperty(name="Photo", type=bpy.types.Image,
                                 description="The original photo (packed, never modified)")
    plate_image: PointerProperty(name="Plate", type=bpy.types.Image,
                                 description="The photo with the lifted objects' regions filled in")
    camera: PointerProperty(name="Camera", type=bpy.types.Object)
    mask_image: PointerProperty(name="Selection Mask", type=bpy.types.Image,
                                description="The mask of the object being selected")
    overlay_image: PointerProperty(name="Selection Overlay", type=bpy.types.Image)
    prompt_box: IntVectorProperty(name="Box", size=4, default=(0, 0, 0, 0),
                                  description="Box prompt x0, y0, x1, y1 in photo pixels")
    prompt_points: CollectionProperty(type=UpliftPromptPoint)
    mask_score: FloatProperty(name="Mask Score", default=0.0)
    active_root: PointerProperty(name="Active Object", type=bpy.types.Object)
    export_dir: StringProperty(name="Last Export", subtype="DIR_PATH", default="")
    export_pose: StringProperty(name="Exported Pose", default="",
                                description="Fingerprint of the pose, camera and plate Compose & Export last wrote")
    live_update: BoolProperty(name="Live Update", default=True,
                              description="Deform and re-render while controls, the object or the camera move")
    # Lift onto Mesh (blender.mesh_source): the mesh fitted to the photo and its hypotheses
    use_mesh_as_placed: BoolProperty(
        name="Use Mesh As Placed", default=False,
        description="The mesh is already lined up through the photo's camera: keep its pose instead of fitting it")
    use_mesh_refine: BoolProperty(
        name="Refine", default=False,
        description="With As Placed: snap the mesh's pose to the photo's selection (turn, shift and size; its depth "
                    "stays)")
    fit_count: IntProperty(name="Fits", default=3, min=1, max=16,
                           description="Alignment hypotheses Fit to Photo keeps (Next Fit cycles through them)")
    fit_mesh: PointerProperty(name="Fitted Mesh", type=bpy.types.Object,
                              description="The mesh fitted to the photo: Lift builds the object from it")
    fit_hypotheses: StringProperty(name="Fits", default="",
                                   description="The fits (JSON: mesh-to-world similarities, best first)")
    fit_index: IntProperty(name="Chosen Fit", default=0, min=0)
    fit_total: IntProperty(name="Fits Found", default=0, min=0)
    fit_key: StringProperty(name="Fitted Geometry", default="",
                            description="Fingerprint of the mesh's world geometry when it was fitted")
    fit_overlay_image: PointerProperty(name="Fit Overlay", type=bpy.types.Image)


CLASSES = (UpliftObjectProps, UpliftPromptPoint, UpliftSceneProps)


def attach() -> None:
    bpy.types.Object.uplift = PointerProperty(type=UpliftObjectProps)
    bpy.types.Scene.uplift = PointerProperty(type=UpliftSceneProps)


def detach() -> None:
    del bpy.types.Scene.uplift
    del bpy.types.Object.uplift
