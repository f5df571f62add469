"""The Uplift sidebar panel (3D view ▸ N ▸ Uplift): every step, the current one highlighted."""
from __future__ import annotations

import bpy

from . import dependencies, handlers, preferences, scene_io


def workflow_step(context) -> tuple[int, str, str]:
    """(step number, step name, what to do next) for the scene as it is."""
    scene = context.scene
    props = scene.uplift
    if props.photo_image is None:
        return 1, "Load Photo", "Load the photo that has the object you want to edit"
    root = scene_io.active_root(context)
    if props.mask_image is None and root is None:
        return 2, "Select Object", "Select Object, then drag a box round it in the camera view"
    if props.mask_image is not None and props.fit_mesh is not None:
        return 3, "Lift", f"Lift builds the object on {props.fit_mesh.name} (Next Fit for another fit)"
    if props.mask_image is not None:
        return 3, "Lift", "Refine the mask with clicks if needed, then Lift it to 3D (or Fit to Photo a mesh first)"
    if root.uplift.control_count == 0:
        return 4, "Create Controls", "Create Controls for the lifted object"
    if props.plate_image is None:
        return 5, "Pose", "Move control empties to pose the object; then Fill Background"
    if not props.export_dir:
        return 6, "Compose & Export", "Pose until it looks right, then Compose & Export"
    return 7, "Done", "Keep posing and export again, or grade in the compositor"


STEPS = (
    ("uplift.load_photo", "IMAGE_DATA"),
    ("uplift.select_object", "RESTRICT_SELECT_OFF"),
    ("uplift.lift", "MESH_ICOSPHERE"),
    ("uplift.create_controls", "EMPTY_DATA"),
    (None, "ARMATURE_DATA"),
    ("uplift.fill_background", "BRUSH_DATA"),
    ("uplift.compose_export", "NODE_COMPOSITING"),
)


def draw_lift_onto_mesh(layout, props) -> None:
    """Lift onto Mesh: fit the selected mesh to the photo; Lift then builds on it."""
    box = layout.box()
    box.label(text="Lift onto Mesh", icon="MESH_DATA")
    row = box.row(align=True)
    row.operator("uplift.fit_to_photo", icon="MOD_SHRINKWRAP")
    row.operator("uplift.next_fit", icon="FILE_REFRESH")
    row = box.row(align=True)
    row.prop(props, "use_mesh_as_placed", text="As Placed")
    if props.use_mesh_as_placed:
        row.prop(props, "use_mesh_refine")
    else:
        row.prop(props, "fit_count")
    if props.fit_mesh is not None and props.fit_total:
        box.label(text=f"{props.fit_mesh.name}: fit {props.fit_index % props.fit_total + 1} of {props.fit_total}",
                  icon="CHECKMARK")


class UPLIFT_PT_main(bpy.types.Panel):
    bl_label = "Uplift"
    bl_idname = "UPLIFT_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Uplift"

    def draw(self, context):
        layout = self.layout
        if preferences.draw_missing_dependencies(layout):
            layout.label(text=dependencies.install_hint()[:120])
        step, name, hint = workflow_step(context)
        box = layout.box()
        box.label(text=f"Step {step}: {name}", icon="FORWARD")
        box.label(text=hint)
        if handlers.last_error["text"]:
            box.label(text=handlers.last_error["text"], icon="ERROR")
        col = layout.column(align=True)
        for number, (op, icon) in enumerate(STEPS, start=1):
            row = col.row(align=True)
            row.alert = number == step
            if op is None:
                row.prop(context.scene.uplift, "live_update", text="Pose: move control empties", icon=icon)
                continue
            row.operator(op, icon=icon)
        draw_lift_onto_mesh(layout, context.scene.uplift)
        root = scene_io.active_root(context)
        if root is not None:
            sub = layout.box()
            sub.label(text=f"{root.name}: {root.uplift.control_count} controls", icon="OUTLINER_OB_EMPTY")
            row = sub.row(align=True)
            row.operator("uplift.pin_control", icon="PINNED")
            row.operator("uplift.release_control", icon="UNPINNED")
            sub.operator("uplift.export_posed_splats", icon="EXPORT")
        if context.scene.uplift.export_dir:
            layout.label(text=f"Last export: {context.scene.uplift.export_dir}", icon="FILE_FOLDER")


CLASSES = (UPLIFT_PT_main,)
