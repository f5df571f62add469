"""Add-on preferences: the server, compute settings and the deformation defaults."""

import sys

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from . import dependencies

# This module is `<extension>.blender.preferences`; preferences belong to `<extension>`.
ADDON_ID = __package__.rpartition(".")[0]

DEFAULT_SERVER_URL = "http://127.0.0.1:8765"  # services.protocol.DEFAULT_URL (kept import-free here)

# What the last "Test connection" said, shown under the button (runtime only).
connection_status = {"text": "", "ok": False}


PYTHON_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _python_path_changed(self, _context) -> None:
    dependencies.use_folder(bpy.path.abspath(self.extra_python_path))


class UpliftPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    server_url: StringProperty(
        name="Server URL", default=DEFAULT_SERVER_URL,
        description="Address of `uplift serve` (a server off this machine needs Blender's online access)")
    token: StringProperty(
        name="Token", subtype="PASSWORD", default="",
        description="The token the server was started with (`uplift serve --token`), if any")
    device: EnumProperty(
        name="Compute Device", default="auto",
        items=[("auto", "Auto", "CUDA when available, else the CPU"),
               ("cpu", "CPU", "Always the CPU"),
               ("cuda", "CUDA", "An NVIDIA GPU through torch")],
        description="Where the deformation and rendering run")
    render_backend: EnumProperty(
        name="Renderer", default="auto",
        items=[("auto", "Auto", "gsplat on CUDA, else the torch rasteriser"),
               ("torch", "Torch", "The pure-torch rasteriser (any device)"),
               ("gsplat", "gsplat", "gsplat's CUDA rasteriser")],
        description="Which Gaussian rasteriser draws the live view and the export")
    control_count: IntProperty(
        name="Control Points", default=512, min=8, max=4096,
        description="How many control empties Create Controls makes (farthest-point samples)")
    graph_neighbours: IntProperty(
        name="Graph Neighbours", default=8, min=2, max=64,
        description="Neighbours of each control point in the ARAP graph (nearest along the control graph)")
    skin_neighbours: IntProperty(
        name="Skinning Neighbours", default=4, min=1, max=32,
        description="Control points that move each Gaussian (linear blend skinning)")
    arap_iterations: IntProperty(
        name="ARAP Iterations per Update", default=3, min=1, max=50,
        description="Local/global ARAP iterations run on every interactive update")
    preview_scale: FloatProperty(
        name="Preview Scale", default=0.5, min=0.05, max=1.0,
        description="Resolution of the live render relative to the photo while dragging")
    full_render_delay: FloatProperty(
        name="Full Render After", default=0.6, min=0.1, max=10.0, unit="TIME_ABSOLUTE",
        description="Seconds without edits before the live view renders at full resolution")
    extra_python_path: StringProperty(
        name="Extra Python Packages", subtype="DIR_PATH", default="", update=_python_path_changed,
        description=f"A Python {PYTHON_VERSION} site-packages folder holding torch, pillow, scipy and OpenCV")
    torch_variant: EnumProperty(
        name="Torch Build", default="cpu",
        items=[("cpu", "CPU", "The CPU build of torch (smaller download, runs anywhere)"),
               ("cuda", "CUDA", "The CUDA build of torch, for NVIDIA GPUs (a download of several GB)")],
        description="Which torch Install Dependencies fetches")
    torch_index_url: StringProperty(
        name="Torch Index", default="",
        description="Package index pip also searches for torch (empty: PyTorch's index for the chosen build)")
    install_find_links: StringProperty(
        name="Wheel Folder", subtype="DIR_PATH", default="",
        description="A local folder of wheels pip looks in first (pip's --find-links)")
    install_offline: BoolProperty(
        name="Only From the Wheel Folder", default=False,
        description="Install only from the wheel folder, never from an index (pip's --no-index)")

    def draw(self, context) -> None:
        layout = self.layout
        draw_missing_dependencies(layout)
        box = layout.box()
        box.label(text="Model Server", icon="URL")
        box.prop(self, "server_url")
        box.prop(self, "token")
        row = box.row()
        row.operator("uplift.test_connection", icon="LINKED")
        if connection_status["text"]:
            box.label(text=connection_status["text"], icon="CHECKMARK" if connection_status["ok"] else "ERROR")
        if not bpy.app.online_access:
            box.label(text="Online access is off: only a server on this machine (127.0.0.1) can be used",
                      icon="INFO")
        box = layout.box()
        box.label(text="Compute", icon="MEMORY")
        box.prop(self, "device")
        box.prop(self, "render_backend")
        box.prop(self, "preview_scale")
        box.prop(self, "full_render_delay")
        box = layout.box()
        box.label(text="Deformation", icon="MOD_SIMPLEDEFORM")
        box.prop(self, "control_count")
        box.prop(self, "graph_neighbours")
        box.prop(self, "skin_neighbours")
        box.prop(self, "arap_iterations")
        draw_install(self, layout.box())


def draw_install(prefs, box) -> None:
    """The Install Dependencies section: options, the button or the running install's progress."""
    box.label(text=f"Python Packages (Blender's Python {PYTHON_VERSION})", icon="PACKAGE")
    run = dependencies.running_install()
    if run is not None:
        row = box.row()
        row.label(text=run.status, icon="TIME")
        row.operator("uplift.cancel_install", icon="CANCEL")
    else:
        last = dependencies.install_run["run"]
        if last is not None and last.error:
            box.label(text=last.error, icon="ERROR")
        row = box.row()
        row.operator("uplift.install_dependencies", icon="IMPORT")
        row.prop(prefs, "torch_variant", expand=True)
        if not bpy.app.online_access:
            box.label(text="Needs Allow Online Access (Preferences > System > Network)", icon="INFO")
    col = box.column(align=True)
    col.prop(prefs, "torch_index_url")
    col.prop(prefs, "install_find_links")
    col.prop(prefs, "install_offline")
    box.prop(prefs, "extra_python_path")
    if dependencies.extra_folder_problem["text"]:
        box.label(text=dependencies.extra_folder_problem["text"], icon="ERROR")


def draw_missing_dependencies(layout) -> bool:
    """Draw what is missing and how to provide it; returns True when something is missing."""
    absent = dependencies.missing()
    if not absent:
        return False
    box = layout.box()
    box.alert = True
    box.label(text="Uplift needs Python packages Blender does not ship:", icon="ERROR")
    for req in absent:
        box.label(text=f"  {req.package} — for {req.needed_for}")
    box.operator("uplift.install_dependencies", icon="IMPORT")
    col = box.column(align=True)
    col.label(text="Or: install a build of the extension that bundles wheels (vendor/, see README),")
    col.label(text=f"or set 'Extra Python Packages' to a Python {PYTHON_VERSION} site-packages that has them")
    return True


class _Defaults:
    """The preferences' defaults, for when the package was registered by a script
    (`import uplift; uplift.register()`) rather than enabled as an extension."""

    def __getattr__(self, name):
        prop = UpliftPreferences.__annotations__.get(name)
        if prop is None:
            raise AttributeError(name)
        return prop.keywords["default"]


def get(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else _Defaults()


CLASSES = (UpliftPreferences,)
