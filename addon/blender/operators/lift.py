"""Lift: the selected region → 3D Gaussians placed under a root empty: from the server, or,
after Fit to Photo, built on the fitted mesh (`MeshLifter`, as `uplift lift --mesh` does)."""
from __future__ import annotations

import bpy

from .. import handlers, jobs, lifted, mesh_source, scene_io


class UPLIFT_OT_lift(bpy.types.Operator, jobs.BackgroundStep):
    bl_idname = "uplift.lift"
    bl_label = "Lift"
    bl_description = ("Turn the selected object into 3D Gaussians placed so the camera sees it as in the photo "
                      "(on the fitted mesh after Fit to Photo)")
    bl_options = {"REGISTER", "UNDO"}
    busy_text = "Lifting the object to 3D"

    @classmethod
    def poll(cls, context):
        return (jobs.poll_dependencies(cls)
                and jobs.explain(cls, context.scene.uplift.mask_image is not None,
                                 "Select the object first (Select Object)"))

    def prepare(self, context):
        scene = context.scene
        if scene.uplift.fit_total:  # a mesh was fitted (if it was deleted since, say so)
            return self._prepare_mesh(context)
        mask = scene.uplift.mask_image
        from .. import images

        return (jobs.server_client(context), scene_io.photo_bytes(scene), images.file_bytes(mask),
                scene_io.camera_of(scene).to_dict())

    def _prepare_mesh(self, context):
        from ...core.image_io import load_image
        from .. import preferences

        scene = context.scene
        ob, surface = mesh_source.fitted_mesh(context, scene)
        return ("mesh", surface, load_image(scene_io.photo_bytes(scene), what="the photo"),
                scene_io.selection_mask(scene), scene_io.camera_of(scene), mesh_source.chosen_placement(scene),
                mesh_source.lift_config(scene), preferences.get(context).device, ob.name)

    def work(self, payload):
        if payload[0] == "mesh":
            from ...services.backends.mesh_lift import MeshLifter

            _, surface, image, mask, camera, placement, config, device, name = payload
            return MeshLifter(config, device, mesh=surface).lift(image, mask, camera, placement), name
        from ...core.ply import read_ply

        client, photo, mask, camera = payload
        return read_ply(client.lift(photo, mask, camera)), None

    def apply(self, context, result) -> None:
        gaussians, source = result
        scene = context.scene
        root = lifted.create_object(scene, gaussians, scene.uplift.mask_image, lifted.settings_from_preferences(context),
                                    photo_camera=scene_io.camera_of(scene))
        scene_io.reset_selection(scene)
        for ob in context.selected_objects:
            ob.select_set(False)
        mesh = bpy.data.objects.get(source) if source else None  # by name: undo replaces objects
        if mesh is not None:  # kept, out of the way: the Gaussians stand in for it
            mesh.hide_set(True)
            mesh.hide_render = True
        root.select_set(True)
        context.view_layer.objects.active = root
        handlers.refresh(scene)
        on = f" on {source}" if source else ""
        self.report({"INFO"}, f"Lifted {len(gaussians)} Gaussians{on}: now Create Controls")


CLASSES = (UPLIFT_OT_lift,)
