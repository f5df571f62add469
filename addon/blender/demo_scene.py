"""Build a ready-to-open .blend from an `uplift edit --keep DIR` folder (used by `make demo`).

The scene holds the photo's camera (camera.json), the plate as the camera background
(plus the original photo, packed, when given), the object lifted under a root empty with
its control empties (a rigid edit: object.ply under a root moved by edit.json's transform,
so the photo is reprojected; a drag: edited.ply), its live render in front
of the camera, and the compositor tree over the kept layers. Opening it in Blender with
the extension enabled continues the edit where `uplift edit` stopped.
"""
from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..core.errors import UpliftError


def _ensure_registered() -> bool:
    """Register the package unless it is (returns True when it registered it now)."""
    if hasattr(bpy.types.Scene, "uplift"):
        return False
    from .. import register

    register()
    return True


def write_demo_blend(keep_dir: str | Path, blend_path: str | Path, photo_path: str | Path | None = None,
                     control_count: int | None = None) -> Path:
    """Write the demo .blend; returns its path. Raises UpliftError naming a missing input."""
    keep = Path(keep_dir)
    blend_path = Path(blend_path).resolve()
    ply, pose = _rest_and_pose(keep)
    for needed in (keep / "camera.json", keep / "plate.png", keep / "mask.png", ply):
        if not needed.exists():
            raise UpliftError(f"{keep} lacks {needed.name}: pass the folder of `uplift edit --keep`")
    registered_here = _ensure_registered()
    try:
        return _write(keep, ply, pose, blend_path, photo_path, control_count)
    finally:
        if registered_here:  # bpy 4.2 crashes at exit with the package still registered
            from .. import unregister

            unregister()


def _rest_and_pose(keep: Path):
    """-> (the PLY to lift, the root's edit transform [4, 4] or None). A rigid edit is the rest
    object (object.ply: the live render and Compose & Export then reproject the photo as `uplift
    edit` did) under a root moved by the edit. A drag's pose is no root transform, so the edited
    object itself stands in for it, lifted colours only."""
    import json

    info = keep / "edit.json"
    if (keep / "object.ply").exists() and info.exists():
        data = json.loads(info.read_text())
        if not data.get("edit", {}).get("drags") and "transform_4x4" in data:
            return keep / "object.ply", np.array(data["transform_4x4"], dtype=np.float64)
    edited = keep / "edited.ply"
    return (edited if edited.exists() else keep / "object.ply"), None


def _write(keep: Path, ply: Path, pose, blend_path: Path, photo_path, control_count) -> Path:
    from ..core.blender_camera import blender_from_camera
    from ..core.camera import Camera
    from ..core.ply import read_ply
    from . import compositor, handlers, images, lifted, scene_io

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    camera = Camera.load(keep / "camera.json")

    cam_obj = bpy.data.objects.new("Uplift Camera", bpy.data.cameras.new("Uplift Camera"))
    scene.collection.objects.link(cam_obj)
    scene_io.apply_camera_settings(cam_obj, scene, blender_from_camera(camera))
    scene.camera = cam_obj
    props = scene.uplift
    props.camera = cam_obj
    photo = Path(photo_path) if photo_path else next(p for p in (keep / "photo.png", keep / "plate.png") if p.exists())
    props.photo_image = images.packed_image(f"Uplift Photo {photo.stem}", photo.read_bytes(), photo.suffix.lower())
    props.plate_image = images.packed_image("Uplift Plate", (keep / "plate.png").read_bytes(), ".png")
    images.camera_layer(cam_obj.data, props.plate_image, front=False)

    mask = images.packed_image("Uplift Mask", (keep / "mask.png").read_bytes(), ".png", colorspace="Non-Color")
    settings = lifted.settings_from_preferences()
    if control_count is not None:
        import dataclasses

        settings = dataclasses.replace(settings, control_count=control_count)
    rest = ply.name == "object.ply"  # the object as lifted through the photo's camera
    root = lifted.create_object(scene, read_ply(ply), mask, settings, photo_camera=camera if rest else None)
    if pose is not None:
        from mathutils import Matrix

        # From the location just set: matrix_world is only refreshed by the next depsgraph update.
        root.matrix_world = Matrix(pose.tolist()) @ Matrix.Translation(root.location)
    lifted.create_controls(root, settings)
    handlers.collect(scene)
    handlers.flush(full=True)

    compositor.build(scene, keep)
    props.export_dir = str(keep)
    scene.render.engine = "CYCLES"
    blend_path.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend_path), compress=True)
    return blend_path
