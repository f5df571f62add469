"""Fit to Photo: align the selected mesh to the selected object's silhouette (Lift onto Mesh).

The mesh is read on the main thread (`mesh_source.surface_mesh`), the fit runs on a worker
(`MeshLifter.fit`, the CLI's `--mesh` code) with progress and Esc to cancel, and the hypotheses
are stored in the scene (undo keeps them); the best one is drawn over the photo.
"""
from __future__ import annotations

import bpy

from .. import jobs, mesh_source, scene_io


class UPLIFT_OT_fit_to_photo(bpy.types.Operator, jobs.BackgroundStep):
    bl_idname = "uplift.fit_to_photo"
    bl_label = "Fit to Photo"
    bl_description = ("Align the selected mesh so that the photo's camera sees it over the selected object "
                      "(or keep its pose with Use Mesh As Placed); Lift then builds the object from it")
    bl_options = {"REGISTER", "UNDO"}
    busy_text = "Fitting the mesh to the photo"

    @classmethod
    def poll(cls, context):
        props = context.scene.uplift
        ob = context.active_object
        return (jobs.poll_dependencies(cls)
                and jobs.explain(cls, props.photo_image is not None, "Load a photo first")
                and jobs.explain(cls, props.mask_image is not None, "Select the object in the photo first (Select Object)")
                and jobs.explain(cls, ob is not None, "Select the mesh to fit (import or model it first)")
                and jobs.explain(cls, ob is not None and ob.type == "MESH",
                                 f"{ob.name if ob else ''} is not a mesh: select the mesh to fit"))

    def prepare(self, context):
        from ...core.image_io import load_image
        from .. import preferences

        scene = context.scene
        ob = mesh_source.mesh_object(context)
        surface = mesh_source.surface_mesh(ob, context.evaluated_depsgraph_get())
        image = load_image(scene_io.photo_bytes(scene), what="the photo")  # a coloured mesh's fits ranked by it
        return (surface, image, scene_io.selection_mask(scene), scene_io.camera_of(scene), mesh_source.lift_config(scene),
                preferences.get(context).device, ob.name, mesh_source.geometry_key(surface),
                self.progress.set, self.cancelled.is_set)

    def work(self, payload):
        from ...services.backends.mesh_lift import MeshLifter

        surface, image, mask, camera, config, device, name, key, progress, cancelled = payload
        fits = MeshLifter(config, device, mesh=surface).fit(mask, camera, image, progress, cancelled)
        return surface, fits, name, key

    def apply(self, context, result) -> None:
        surface, fits, name, key = result
        scene = context.scene
        ob = bpy.data.objects.get(name)  # by name: an undo while fitting replaces the objects
        if ob is None or ob.type != "MESH":
            raise scene_io.SceneStateError(f"mesh {name!r} was removed while it was being fitted")
        scene_io.reset_fit(scene)
        mesh_source.store_fits(scene, ob, fits, key)
        mesh_source.show_fit(scene, surface)
        kept = (("as placed, refined" if scene.uplift.use_mesh_refine else "as placed") if scene.uplift.use_mesh_as_placed
                else f"fit 1 of {len(fits)}")
        self.report({"INFO"}, f"{ob.name}: {kept}, IoU {fits[0].iou:.2f}: Next Fit for another, or Lift")


CLASSES = (UPLIFT_OT_fit_to_photo,)
