"""Lift: the selected region → 3D Gaussians from the server, placed under a root empty."""
from __future__ import annotations

import bpy
import numpy as np

from .. import handlers, jobs, proxy, scene_io, state


class UPLIFT_OT_lift(bpy.types.Operator, jobs.BackgroundStep):
    bl_idname = "uplift.lift"
    bl_label = "Lift"
    bl_description = "Turn the selected object into 3D Gaussians placed so the camera sees it as in the photo"
    bl_options = {"REGISTER", "UNDO"}
    busy_text = "Lifting the object to 3D"

    @classmethod
    def poll(cls, context):
        if not jobs.poll_dependencies(cls):
            return False
        if context.scene.uplift.mask_image is None:
            cls.poll_message_set("Select the object first (Select Object)")
            return False
        return True

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
        from ...core.transforms import Similarity, apply_similarity

        scene = context.scene
        if len(gaussians) == 0:
            raise scene_io.SceneStateError("the server lifted no Gaussians from this mask")
        means = gaussians.means.detach().double().cpu().numpy()
        centre = 0.5 * (means.min(0) + means.max(0))
        extent = float((means.max(0) - means.min(0)).max())
        local = apply_similarity(gaussians, Similarity(np.eye(3), -centre, 1.0))

        uid = scene_io.new_uid()
        collection = bpy.data.collections.new(f"Uplift Object {len(scene_io.roots(scene)) + 1}")
        scene.collection.children.link(collection)
        root = bpy.data.objects.new(collection.name, None)
        root.empty_display_type = "ARROWS"
        root.empty_display_size = max(extent * 0.4, 1e-3)
        root.location = centre
        root.uplift.role, root.uplift.uid = "ROOT", uid
        prefs_graph, prefs_skin = _prefs_neighbours(context)
        root.uplift.graph_neighbours, root.uplift.skin_neighbours = prefs_graph, prefs_skin
        collection.objects.link(root)
        scene_io.store_gaussians(root, local)
        root.uplift.mask_image = scene.uplift.mask_image
        proxy.create(root, local, collection)

        scene_io.reset_selection(scene)
        scene.uplift.active_root = root
        for ob in context.selected_objects:
            ob.select_set(False)
        root.select_set(True)
        context.view_layer.objects.active = root
        state.put(state.ObjectSession(uid, local, scene_io.deform_settings(root, context)))
        if handlers.collect(scene, context):
            handlers.kick()
        self.report({"INFO"}, f"Lifted {len(local)} Gaussians: now Create Controls")


def _prefs_neighbours(context) -> tuple[int, int]:
    from .. import preferences

    prefs = preferences.get(context)
    return prefs.graph_neighbours, prefs.skin_neighbours


CLASSES = (UPLIFT_OT_lift,)
