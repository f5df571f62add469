"""Release Control: let the selected control empties follow the deformation again."""
from __future__ import annotations

import bpy

from .. import jobs
from .pin_control import selected_controls, set_pinned


class UPLIFT_OT_release_control(bpy.types.Operator):
    bl_idname = "uplift.release_control"
    bl_label = "Release Controls"
    bl_description = "Unpin the selected control empties so they follow the object's deformation"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return (jobs.poll_dependencies(cls)
                and jobs.explain(cls, any(ob.uplift.pinned for ob in selected_controls(context)),
                                 "Select pinned control empties"))

    def execute(self, context):
        self.report({"INFO"}, f"Released {set_pinned(context, False)} controls")
        return {"FINISHED"}


CLASSES = (UPLIFT_OT_release_control,)
