"""Compose & Export: the scene's posed objects rendered and composited by the pipeline
(`pipeline.edit.render_object` and `compose`, as `uplift edit` does), written as the
layers of `pipeline.keep.write_layers`, plus a compositor tree that rebuilds final.png."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy
from bpy.props import IntProperty

from .. import animation, compositor, handlers, images, jobs, preferences, scene_io, state

# pipeline.edit.EditConfig().seam_width, written out: importing the pipeline needs torch, which the
# extension must register without (tests/blender/test_compose_matches_edit.py fails if they differ).
SEAM_WIDTH = 2


@dataclass(frozen=True)
class ComposeJob:
    services: object          # services.api.HttpServices (validated replies)
    objects: tuple            # ((Gaussians root-local, root world matrix [4, 4]), ...)
    sessions: tuple           # each object's state.ObjectSession (its photo source, built on the worker)
    camera: object            # core.camera.Camera at full resolution
    photo_png: bytes
    plate_png: bytes
    mask_pngs: tuple          # each lifted object's selection mask (PNG bytes)
    config: object            # pipeline.edit.EditConfig
    folder: Path
    cancelled: object = None  # threading.Event set by Esc: stop before writing anything


def export_folder(context) -> Path:
    """Beside the saved .blend, else in the extension's user folder (never the extension's own)."""
    if bpy.data.filepath:
        blend = Path(bpy.data.filepath)
        return blend.parent / f"{blend.stem}_uplift"
    base = Path(bpy.utils.extension_path_user(preferences.ADDON_ID, path="exports", create=True))
    return base / bpy.path.clean_name(context.scene.name)


def compose(job: ComposeJob):
    """Render, composite, seam and write every layer (off the main thread) -> the paths written."""
    from ...core.errors import CancelledError
    from ...core.gaussians import concat
    from ...core.image_io import load_image, union_mask
    from ...core.transforms import apply_similarity
    from ...core.render.reprojection import PhotoSource
    from ...pipeline.edit import compose as compose_layers, prepared_from_layers, render_object_layers
    from ...pipeline.keep import write_layers

    photo = load_image(job.photo_png, what="the photo")
    plate = load_image(job.plate_png, what="the plate")
    mask = union_mask(job.mask_pngs, photo.shape[:2], what="a lifted object's mask")
    world = concat([apply_similarity(g, state.similarity_from_matrix(m)) for g, m in job.objects])
    prepared = prepared_from_layers(photo, plate, mask, job.camera, world)
    # As `uplift edit`: the photo's own pixels wherever the photo saw the posed surfaces.
    sources = []
    for session in job.sessions:
        with session.lock:
            sources.append(session.photo_source())  # cached per object; None where no photo camera is known
    # Reproject only when every object knows the photo it came from (older files may not).
    reproject = job.config.reproject and all(src is not None for src in sources)
    photo_source = PhotoSource.combine(sources) if reproject else None
    layers = render_object_layers(world, prepared.work_camera, job.config.render_backend, photo=photo_source)
    composite = compose_layers(prepared, layers.rgba, job.services, job.config, unmoved=layers.unmoved,
                               still=layers.still)
    if job.cancelled is not None and job.cancelled.is_set():  # Esc while composing: the folder stays as it was
        raise CancelledError(f"Compose & Export was cancelled: nothing was written to {job.folder}")
    try:
        job.folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise scene_io.SceneStateError(f"cannot write the export to {job.folder}: {exc.strerror or exc}") from None
    return write_layers(job.folder, prepared, composite)


class UPLIFT_OT_compose_export(bpy.types.Operator, jobs.BackgroundStep):
    bl_idname = "uplift.compose_export"
    bl_label = "Compose & Export"
    bl_description = "Render the edited objects over the plate, blend the seams and export PNG/EXR with a compositor tree"
    bl_options = {"REGISTER", "UNDO"}
    busy_text = "Composing"

    seam_width: IntProperty(name="Seam Width", default=SEAM_WIDTH, min=1, max=64, subtype="PIXEL",
                            description="Pixels on each side of the object's outline that are re-inpainted "
                                        "(as uplift edit)")

    @classmethod
    def poll(cls, context):
        return (jobs.poll_dependencies(cls)
                and jobs.explain(cls, bool(scene_io.roots(context.scene)), "Lift an object first")
                and jobs.explain(cls, context.scene.uplift.photo_image is not None, "Load a photo first"))

    def prepare(self, context) -> ComposeJob:
        import dataclasses

        import numpy as np

        from ...pipeline.edit import EditConfig
        from ...services.api import HttpServices

        defaults = EditConfig()
        scene = context.scene
        handlers.flush(full=True)  # finish the live solve to convergence: the export shows the final pose
        objects, masks, sessions = [], [], []
        for root in scene_io.roots(scene):
            session = scene_io.session_for(root, context)
            with session.lock:
                current = session.deformed if session.deformed is not None else session.gaussians
            objects.append((current, np.array(root.matrix_world, dtype=np.float64)))
            sessions.append(session)
            if root.uplift.mask_image is not None:
                masks.append(images.file_bytes(root.uplift.mask_image))
        plate = scene.uplift.plate_image or scene.uplift.photo_image
        # The seam ring must stay inside the composited region (EditConfig checks it).
        dilate = max(defaults.silhouette_dilate, self.seam_width + defaults.seam_offset)
        config = dataclasses.replace(defaults, seam_width=self.seam_width, silhouette_dilate=dilate,
                                     render_backend=preferences.get(context).render_backend)
        return ComposeJob(HttpServices(jobs.server_client(context)), tuple(objects), tuple(sessions),
                          scene_io.camera_of(scene), scene_io.photo_bytes(scene), images.file_bytes(plate), tuple(masks), config,
                          export_folder(context), getattr(self, "cancelled", None))

    def work(self, job: ComposeJob):
        return job.folder, [path.name for path in compose(job)]

    def apply(self, context, result) -> None:
        folder, written = result
        compositor.build(context.scene, folder)
        context.scene.uplift.export_dir = str(folder)
        context.scene.uplift.export_pose = animation.pose_fingerprint(context.scene)
        self.report({"INFO"}, f"Exported to {folder} and built the '{compositor.TREE_NAME}' compositor tree")
        if "layers.exr" not in written:
            self.report({"WARNING"}, "layers.exr was not written: install the Python package 'OpenEXR' in "
                                     "Blender's Python for the multilayer EXR (the PNG layers are complete)")


CLASSES = (UPLIFT_OT_compose_export,)
