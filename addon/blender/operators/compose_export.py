"""Compose & Export: full-resolution render over the plate, seam pass, files and a compositor tree."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np
from bpy.props import IntProperty

from .. import compositor, handlers, images, jobs, preferences, scene_io, state

# Files written to the export folder (documented in README "Compose & Export").


@dataclass(frozen=True)
class ComposeJob:
    client: object
    objects: tuple            # ((Gaussians root-local, root world matrix [4, 4]), ...)
    camera: object            # core.camera.Camera at full resolution
    plate_png: bytes
    backend: str
    seam_width: int
    folder: Path


def export_folder(context) -> Path:
    """Beside the saved .blend, else in the extension's user folder (never the extension's own)."""
    if bpy.data.filepath:
        blend = Path(bpy.data.filepath)
        return blend.parent / f"{blend.stem}_uplift"
    base = Path(bpy.utils.extension_path_user(preferences.ADDON_ID, path="exports", create=True))
    return base / bpy.path.clean_name(context.scene.name)


def compose(job: ComposeJob) -> dict[str, np.ndarray]:
    """Render, composite, seam-inpaint and write every output. Runs off the main thread."""
    from ...core.compositing import alpha_over, seam_ring
    from ...core.exr import srgb_to_linear, write_multilayer_exr
    from ...core.gaussians import concat
    from ...core.image_io import encode_png, load_image, save_png, to_float, to_uint8
    from ...core.render import render
    from ...core.transforms import apply_similarity

    world = concat([apply_similarity(g, state.similarity_from_matrix(m)) for g, m in job.objects])
    rgba = render(world, job.camera, backend=job.backend, scale=1.0).rgba
    rgba = np.clip(rgba.detach().cpu().numpy(), 0.0, 1.0)
    plate = load_image(job.plate_png, what="the plate")
    if plate.shape[:2] != rgba.shape[:2]:
        raise scene_io.SceneStateError(
            f"the camera renders {rgba.shape[1]}x{rgba.shape[0]} but the plate is {plate.shape[1]}x{plate.shape[0]}: "
            "keep the render resolution equal to the photo's")
    object_u8 = to_uint8(rgba)
    composite = to_uint8(alpha_over(to_float(object_u8), to_float(plate)))
    silhouette = object_u8[..., 3] >= 128
    seam = seam_ring(silhouette, job.seam_width)  # the ring the server's seam mode inpaints
    if seam.any():
        filled = load_image(job.client.inpaint(encode_png(composite), encode_png(silhouette), mode="seam",
                                               dilate=job.seam_width),
                            what="the server's seam inpainting")
        if filled.shape != composite.shape:
            raise scene_io.SceneStateError("the server's seam inpainting came back at the wrong size")
    else:
        filled = composite
    final = np.where(seam[..., None], filled, composite)
    job.folder.mkdir(parents=True, exist_ok=True)
    outputs = {"plate": plate, "object": object_u8, "seam_mask": seam, "seam_fill": filled, "final": final}
    for name, array in outputs.items():
        save_png(job.folder / f"{name}.png", array)
    straight = to_float(object_u8)
    write_multilayer_exr(job.folder / "layers.exr", {
        "plate": srgb_to_linear(to_float(plate)),
        "object": np.concatenate([srgb_to_linear(straight[..., :3]) * straight[..., 3:], straight[..., 3:]], -1),
        "seam_mask": seam.astype(np.float32),
        "final": srgb_to_linear(to_float(final)),
    })
    return outputs


class UPLIFT_OT_compose_export(bpy.types.Operator, jobs.BackgroundStep):
    bl_idname = "uplift.compose_export"
    bl_label = "Compose & Export"
    bl_description = "Render the edited objects over the plate, blend the seams and export PNG/EXR with a compositor tree"
    bl_options = {"REGISTER", "UNDO"}
    busy_text = "Composing"

    seam_width: IntProperty(name="Seam Width", default=4, min=1, max=64, subtype="PIXEL",
                            description="Pixels on each side of the object's outline that are re-inpainted")

    @classmethod
    def poll(cls, context):
        return (jobs.poll_dependencies(cls)
                and jobs.explain(cls, bool(scene_io.roots(context.scene)), "Lift an object first")
                and jobs.explain(cls, context.scene.uplift.photo_image is not None, "Load a photo first"))

    def prepare(self, context) -> ComposeJob:
        scene = context.scene
        handlers.flush()  # finish any pending live solve so the export shows the current pose
        objects = []
        for root in scene_io.roots(scene):
            session = scene_io.session_for(root, context)
            current = session.deformed if session.deformed is not None else session.gaussians
            objects.append((current, np.array(root.matrix_world, dtype=np.float64)))
        plate = scene.uplift.plate_image or scene.uplift.photo_image
        return ComposeJob(jobs.server_client(context), tuple(objects), scene_io.camera_of(scene),
                          images.file_bytes(plate), preferences.get(context).render_backend, self.seam_width,
                          export_folder(context))

    def work(self, job: ComposeJob):
        try:
            compose(job)
        except OSError as exc:
            raise scene_io.SceneStateError(f"cannot write the export to {job.folder}: {exc.strerror or exc}") from None
        return job.folder

    def apply(self, context, folder: Path) -> None:
        compositor.build(context.scene, folder)
        context.scene.uplift.export_dir = str(folder)
        self.report({"INFO"}, f"Exported to {folder} and built the '{compositor.TREE_NAME}' compositor tree")


CLASSES = (UPLIFT_OT_compose_export,)
