"""Lift: the selected region → 3D Gaussians from the server, placed under a root empty."""
from __future__ import annotations

import bpy

from .. import handlers, jobs, lifted, scene_io


class UPLIFT_OT_lift(bpy.types.Operator, jobs.BackgroundStep):
    bl_idname = "uplift.lift"
    bl_label = "Lift"
    bl_description = "Turn the selected object into 3D Gaussians placed so the camera sees it as in the photo"
    bl_options = {"REGISTER", "UNDO"}
    busy_text = "Lifting the object to 3D"

    @classmethod
    def poll(cls, context):
        return (jobs.poll_dependencies(cls)
                and jobs.explain(cls, context.scene.uplift.mask_image is not None,
                                 "Select the object first (Select Object)"))

    def prepare(self, context):
        scene = context.scene
        mask = scene.uplift.mask_image
        from .. import images

        return (jobs.server_client(context), scene_io.photo_bytes(scene), images.file_bytes(mask),
                scene_io.camera_of(scene).to_dict())

    def work(self, payload):
        from ...core.ply import read_ply

        client, photo, mask, camera = payload
        return read_ply(client.lift(photo, mask, camera))

    def apply(self, context, gaussians) -> None:
        scene = context.scene
        root = lifted.create_object(scene, gaussians, scene.uplift.mask_image, lifted.settings_from_preferences(context),
                                    photo_camera=scene_io.camera_of(scene))
        scene_io.reset_selection(scene)
        for ob in context.selected_objects:
            ob.select_set(False)
        root.select_set(True)
        context.view_layer.objects.active = root
        handlers.refresh(scene)
        self.report({"INFO"}, f"Lifted {len(gaussians)} Gaussians: now Create Controls")


CLASSES = (UPLIFT_OT_lift,)
