"""Create Controls: farthest-point control points of a lifted object, as empties."""
from __future__ import annotations

import bpy

from ...core.errors import UpliftError
from .. import handlers, jobs, lifted, scene_io


class UPLIFT_OT_create_controls(bpy.types.Operator):
    bl_idname = "uplift.create_controls"
    bl_label = "Create Controls"
    bl_description = "Add control empties to the lifted object; move one to bend the object around it"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return (jobs.poll_dependencies(cls)
                and jobs.explain(cls, scene_io.active_root(context) is not None,
                                 "Lift an object first, or make a lifted object active"))

    def execute(self, context):
        root = scene_io.active_root(context)
        try:
            session = lifted.create_controls(root, lifted.settings_from_preferences(context))
        except UpliftError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        handlers.mark_dirty(root.uplift.uid)
        handlers.refresh(context.scene)
        self.report({"INFO"}, f"Created {session.settings.control_count} controls: move one to pose the object")
        return {"FINISHED"}


CLASSES = (UPLIFT_OT_create_controls,)
