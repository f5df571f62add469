"""Pin Control: keep the selected control empties where they are (they become handles)."""
from __future__ import annotations

import bpy

from .. import handlers, jobs


def selected_controls(context) -> list[bpy.types.Object]:
    return [ob for ob in context.selected_objects if ob.uplift.role == "CONTROL"]


def set_pinned(context, pinned: bool) -> int:
    controls = selected_controls(context)
    for ob in controls:
        ob.uplift.pinned = pinned
        handlers.mark_dirty(ob.uplift.uid)
    handlers.refresh(context.scene)
    return len(controls)


class UPLIFT_OT_pin_control(bpy.types.Operator):
    bl_idname = "uplift.pin_control"
    bl_label = "Pin Controls"
    bl_description = "Hold the selected control empties in place while others are dragged"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return (jobs.poll_dependencies(cls)
                and jobs.explain(cls, bool(selected_controls(context)), "Select one or more control empties"))

    def execute(self, context):
        self.report({"INFO"}, f"Pinned {set_pinned(context, True)} controls")
        return {"FINISHED"}


CLASSES = (UPLIFT_OT_pin_control,)
