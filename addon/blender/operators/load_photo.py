"""Load Photo: a camera whose intrinsics match the photo, looking at the photo."""
from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ImportHelper

from ...core.errors import ImageFormatError, UpliftError
from .. import images, jobs, scene_io

CAMERA_NAME = "Uplift Camera"


class UPLIFT_OT_load_photo(bpy.types.Operator, ImportHelper):
    bl_idname = "uplift.load_photo"
    bl_label = "Load Photo"
    bl_description = "Set up a camera matching the photo (EXIF focal length) and show the photo through it"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.jpg;*.jpeg;*.png;*.tif;*.tiff;*.webp;*.bmp", options={"HIDDEN"})
    filepath: StringProperty(name="Photo", subtype="FILE_PATH")

    @classmethod
    def poll(cls, context):
        return (jobs.explain(cls, context.scene is not None, "No scene to add the camera to")
                and jobs.poll_dependencies(cls))

    def execute(self, context):
        try:
            self._load(context, Path(bpy.path.abspath(self.filepath)))
        except UpliftError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Loaded {Path(self.filepath).name}: now select the object to edit")
        return {"FINISHED"}

    def _load(self, context, path: Path) -> None:
        from ...core.blender_camera import blender_from_camera
        from ...core.image_io import load_image
        from ...core.photo import camera_from_photo

        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageFormatError(f"cannot read the photo {path}: {exc.strerror or exc}") from None
        load_image(data, what=f"photo {path.name}")  # validates (truncated, empty, too large) before any change
        camera = camera_from_photo(data)
        settings = blender_from_camera(camera)

        scene = context.scene
        props = scene.uplift
        cam_obj = props.camera if props.camera is not None and props.camera.type == "CAMERA" else None
        if cam_obj is None:
            cam_obj = bpy.data.objects.new(CAMERA_NAME, bpy.data.cameras.new(CAMERA_NAME))
        if cam_obj.name not in scene.objects:
            scene.collection.objects.link(cam_obj)
        scene_io.apply_camera_settings(cam_obj, scene, settings)

        old_photo = props.photo_image
        photo = images.packed_image(f"Uplift Photo {path.stem}", data, path.suffix.lower() or ".jpg")
        photo.filepath_raw = str(path)  # where it came from; the pixels are the packed bytes
        for old in (old_photo, props.plate_image, props.overlay_image):
            if old is not None:
                images.remove_camera_layer(cam_obj.data, old)
        props.plate_image = None
        props.photo_image = photo
        props.camera = cam_obj
        scene_io.reset_selection(scene)
        images.camera_layer(cam_obj.data, photo, front=False)
        scene.camera = cam_obj
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.spaces.active.region_3d.view_perspective = "CAMERA"


CLASSES = (UPLIFT_OT_load_photo,)
