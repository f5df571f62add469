"""Create Controls: farthest-point control points of a lifted object, as empties."""
from __future__ import annotations

import bpy
import numpy as np

from ...core.errors import UpliftError
from .. import handlers, jobs, preferences, scene_io, state


class UPLIFT_OT_create_controls(bpy.types.Operator):
    bl_idname = "uplift.create_controls"
    bl_label = "Create Controls"
    bl_description = "Add control empties to the lifted object; move one to bend the object around it"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if not jobs.poll_dependencies(cls):
            return False
        if scene_io.active_root(context) is None:
            cls.poll_message_set("Lift an object first, or make a lifted object active")
            return False
        return True

    def execute(self, context):
        root = scene_io.active_root(context)
        prefs = preferences.get(context)
        try:
            gaussians = scene_io.load_gaussians(root)
            settings = state.DeformSettings(min(prefs.control_count, len(gaussians)), prefs.graph_neighbours,
                                            prefs.skin_neighbours, prefs.arap_iterations, prefs.device,
                                            prefs.render_backend)
            session = state.ObjectSession(root.uplift.uid, gaussians, settings)
            rest = session.rest_controls()  # builds the deformer: sampling, graph, skinning
        except UpliftError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for ob in scene_io.controls_of(root).values():
            bpy.data.objects.remove(ob)
        props = root.uplift
        props.control_count = len(rest)
        props.graph_neighbours, props.skin_neighbours = settings.graph_neighbours, settings.skin_neighbours
        collection = root.users_collection[0] if root.users_collection else context.scene.collection
        means = gaussians.means.detach().cpu().numpy()
        size = max(float(np.ptp(means, axis=0).max()) / 60.0, 1e-4)
        for i, location in enumerate(rest):
            ob = bpy.data.objects.new(f"{root.name} Control {i:03d}", None)
            ob.empty_display_type = "SPHERE"
            ob.empty_display_size = size
            ob.uplift.role, ob.uplift.uid, ob.uplift.index = "CONTROL", root.uplift.uid, i
            ob.parent = root
            ob.location = location
            collection.objects.link(ob)
        written = rest.copy()
        for i, ob in scene_io.controls_of(root).items():
            written[i] = ob.location  # as Blender stores it (float32)
        session.written = written
        state.put(session)
        handlers.mark_dirty(root.uplift.uid)
        if handlers.collect(context.scene, context):
            handlers.kick()
        self.report({"INFO"}, f"Created {len(rest)} controls: move one to pose the object")
        return {"FINISHED"}


CLASSES = (UPLIFT_OT_create_controls,)
