"""Fill Background: inpaint where the lifted objects were, and show that plate instead of the photo."""
from __future__ import annotations

import bpy
from bpy.props import IntProperty

from .. import images, jobs, scene_io


class UPLIFT_OT_fill_background(bpy.types.Operator, jobs.BackgroundStep):
    bl_idname = "uplift.fill_background"
    bl_label = "Fill Background"
    bl_description = "Inpaint the lifted objects' original regions into a clean plate (the photo is kept as is)"
    bl_options = {"REGISTER", "UNDO"}
    busy_text = "Filling the background"

    dilate: IntProperty(name="Grow Mask", default=12, min=0, max=200, subtype="PIXEL",
                        description="Pixels added round the objects' masks so no edge of them is left")

    @classmethod
    def poll(cls, context):
        return (jobs.poll_dependencies(cls)
                and jobs.explain(cls, any(root.uplift.mask_image is not None for root in scene_io.roots(context.scene)),
                                 "Lift an object first: its region is what gets filled"))

    def prepare(self, context):
        from ...services.api import HttpServices

        scene = context.scene
        masks = [images.file_bytes(root.uplift.mask_image) for root in scene_io.roots(scene)
                 if root.uplift.mask_image is not None]
        return HttpServices(jobs.server_client(context)), scene_io.photo_bytes(scene), masks, self.dilate

    def work(self, payload):
        from ...core.image_io import encode_png, load_image, union_mask

        services, photo_png, masks, dilate = payload
        photo = load_image(photo_png, what="the photo")
        union = union_mask(masks, photo.shape[:2], what="a lifted object's mask")
        plate = services.inpaint(photo, union, mode="fill", dilate=dilate)  # a checked uint8 image or an error
        return encode_png(plate)

    def apply(self, context, plate_png) -> None:
        scene = context.scene
        props = scene.uplift
        cam = scene_io.scene_camera(scene)
        if props.plate_image is not None:
            images.remove_camera_layer(cam.data, props.plate_image)
        props.plate_image = images.packed_image("Uplift Plate", plate_png, ".png", replace=props.plate_image)
        images.remove_camera_layer(cam.data, props.photo_image)
        images.camera_layer(cam.data, props.plate_image, front=False)  # BACK: behind every render layer
        self.report({"INFO"}, "Background filled: pose the object, then Compose & Export")


CLASSES = (UPLIFT_OT_fill_background,)
