"""Next Fit: show the next of Fit to Photo's hypotheses (wrapping round); Lift uses the one shown."""
from __future__ import annotations

import bpy

from .. import jobs, mesh_source


class UPLIFT_OT_next_fit(bpy.types.Operator):
    bl_idname = "uplift.next_fit"
    bl_label = "Next Fit"
    bl_description = "Show the next way the mesh fits the photo (Lift builds the object from the one shown)"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        props = context.scene.uplift
        return (jobs.explain(cls, props.fit_mesh is not None and props.fit_total > 0,
                             "Fit a mesh to the photo first (Fit to Photo)")
                and jobs.explain(cls, props.fit_total > 1,
                                 "Fit to Photo found only one fit (raise Fits, or use the mesh as placed)"))

    def execute(self, context):
        scene = context.scene
        fits = mesh_source.stored_fits(scene)
        _, surface = mesh_source.fitted_mesh(context, scene)
        props = scene.uplift
        props.fit_index = (props.fit_index + 1) % len(fits)
        mesh_source.show_fit(scene, surface)
        self.report({"INFO"}, f"Fit {props.fit_index + 1} of {len(fits)}, IoU {fits[props.fit_index][1]:.2f}")
        return {"FINISHED"}


CLASSES = (UPLIFT_OT_next_fit,)
