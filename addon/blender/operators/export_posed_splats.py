"""Export Posed Splats: the active lifted object as it is posed now, in world coordinates (its
root's world matrix applied), to a .ply or .spz file other splat tools read (`core.splat_io`)."""
from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from ...core.errors import UpliftError
from .. import dependencies, handlers, jobs, scene_io

FORMATS = (
    (".ply", "3DGS PLY", "The standard 3D Gaussian splat PLY: every property, full precision"),
    (".spz", "SPZ", "Niantic's compressed splat (about a quarter of the PLY; quantised), needs the gsply package"),
)


def posed_world_gaussians(context, root):
    """The root's Gaussians as posed now (the live solve run to convergence first, as Compose &
    Export does), mapped into world coordinates by the root's world matrix."""
    import numpy as np

    from ...core.transforms import apply_affine

    handlers.collect(context.scene, context)  # anything not yet queued (a reopened file's pose)
    handlers.flush(full=True)
    session = scene_io.session_for(root, context)
    with session.lock:
        current = session.deformed if session.deformed is not None else session.gaussians
    return apply_affine(current, np.array(root.matrix_world, dtype=np.float64))


class UPLIFT_OT_export_posed_splats(bpy.types.Operator):
    bl_idname = "uplift.export_posed_splats"
    bl_label = "Export Posed Splats"
    bl_description = ("Write the active lifted object, posed as it is now and in world coordinates, to a 3DGS "
                      ".ply or a compressed .spz that other splat tools open")
    bl_options = {"REGISTER"}  # writes a file, changes nothing in the .blend: no undo step

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})
    file_format: EnumProperty(name="Format", items=FORMATS, default=".ply",
                              description="The file type (the file name's extension is set to match)")
    filter_glob: StringProperty(default="*.ply;*.spz", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        return (jobs.poll_dependencies(cls)
                and jobs.explain(cls, scene_io.active_root(context) is not None,
                                 "Lift an object first, or make a lifted object active"))

    def invoke(self, context, event):
        root = scene_io.active_root(context)
        if context.window is None or root is None:  # headless, or a script that forced poll: no browser
            return self.execute(context)
        if not self.filepath:
            folder = Path(bpy.path.abspath("//")) if bpy.data.filepath else Path.home()
            self.filepath = str(folder / f"{bpy.path.clean_name(root.name)}_posed{self.file_format}")
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def check(self, context) -> bool:
        """Keep the file name's extension in step with the chosen format (file browser)."""
        path = Path(self.filepath)
        if path.name and path.suffix.lower() != self.file_format:
            base = path.with_suffix("") if path.suffix.lower() in (".ply", ".spz") else path
            self.filepath = str(base) + self.file_format
            return True
        return False

    def execute(self, context):
        from ...core.splat_io import splat_format, write_splat_file

        root = scene_io.active_root(context)
        try:
            if not self.filepath:
                raise scene_io.SceneStateError("choose a file to export to (.ply or .spz)")
            path = Path(bpy.path.abspath(self.filepath))
            if splat_format(path) not in {ext for ext, _, _ in FORMATS}:
                raise scene_io.SceneStateError(f"{path.name}: Export Posed Splats writes .ply or .spz files")
            if splat_format(path) == ".spz" and not dependencies.importable("gsply"):
                raise scene_io.SceneStateError("writing .spz needs the Python package gsply: press Install "
                                               "Dependencies in Uplift's preferences, or export a .ply")
            gaussians = posed_world_gaussians(context, root)
            write_splat_file(path, gaussians)
        except UpliftError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {len(gaussians)} posed splats of {root.name!r} to {path}")
        return {"FINISHED"}


CLASSES = (UPLIFT_OT_export_posed_splats,)
