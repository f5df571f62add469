"""Install Dependencies: the missing packages into the extension's own site-packages, with
Blender's own Python and pip, off the UI thread (see `services.pip_install`)."""
from __future__ import annotations

import sys
from pathlib import Path

import bpy

from ...core.errors import ConfigError, DependencyError
from .. import dependencies, jobs, preferences

def _redraw_preferences(context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()


class UPLIFT_OT_install_dependencies(bpy.types.Operator):
    bl_idname = "uplift.install_dependencies"
    bl_label = "Install Dependencies"
    bl_description = ("Install the missing Python packages (torch, pillow, scipy, OpenCV) into Uplift's own "
                      "folder with Blender's Python and pip. Needs Allow Online Access")
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return jobs.explain(cls, dependencies.running_install() is None, "An install is already running")

    def _start(self, context):
        """The started PipRun, or None when nothing is missing."""
        from ...services.pip_install import InstallPlan, PipRun

        prefs = preferences.get(context)
        if not bpy.app.online_access:
            raise DependencyError("Online access is off: turn on Allow Online Access in Preferences > System > "
                                  "Network to download packages")
        absent = dependencies.missing(refresh=True)
        if not absent:
            return None
        # Optional packages go in a later run of their own: one without a wheel here must not fail torch's.
        absent = [r for r in absent if not r.optional] or absent
        target = dependencies.site_packages()
        if not target:
            raise ConfigError("Install Dependencies needs Uplift enabled as an extension (it installs into "
                              "the extension's own folder)")
        links = bpy.path.abspath(prefs.install_find_links).strip() if prefs.install_find_links.strip() else ""
        plan = InstallPlan(Path(target), dependencies.pip_packages(absent), prefs.torch_variant,
                           prefs.torch_index_url.strip(), (links,) if links else (), prefs.install_offline,
                           dependencies.numpy_constraint())
        run = PipRun(plan, sys.executable, tuple(r.module for r in absent)).start()
        dependencies.install_run.update(run=run, modules={r.module for r in absent})
        return run

    def _finish(self, context, run) -> set[str]:
        if run.cancelled:
            self.report({"WARNING"}, "Install Dependencies cancelled")
            return {"CANCELLED"}
        if run.error:
            raise DependencyError(run.error)
        dependencies.add_search_path(str(run.plan.target))
        absent = dependencies.missing(refresh=True)
        still = [r for r in absent if r.module in dependencies.install_run["modules"]]
        if still:
            raise DependencyError("Installed, but Blender still cannot import "
                                  + ", ".join(r.module for r in still) + ": restart Blender")
        self.report({"INFO"}, f"Installed {', '.join(run.plan.packages)} into {run.plan.target}")
        optional = [r.package for r in absent if r.optional]
        if optional:
            self.report({"INFO"}, f"Optional, not installed yet: {', '.join(optional)} (press Install Dependencies "
                                  "again)")
        return {"FINISHED"}

    def execute(self, context):  # scripts and headless runs wait for pip
        run = self._start(context)
        if run is None:
            self.report({"INFO"}, "Every dependency is already installed")
            return {"FINISHED"}
        run.wait()
        return self._finish(context, run)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        self._run = self._start(context)
        if self._run is None:
            self.report({"INFO"}, "Every dependency is already installed")
            return {"FINISHED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def cleanup_after_error(self, context) -> None:
        if getattr(self, "_timer", None) is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def modal(self, context, event):
        run = self._run
        if event.type == "ESC" and event.value == "PRESS":
            run.cancel()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        _redraw_preferences(context)
        if not run.done.is_set():
            if context.workspace is not None:
                context.workspace.status_text_set(f"Uplift: {run.status}… (Esc or Cancel in the preferences)")
            return {"PASS_THROUGH"}
        self.cleanup_after_error(context)
        return self._finish(context, run)


class UPLIFT_OT_cancel_install(bpy.types.Operator):
    bl_idname = "uplift.cancel_install"
    bl_label = "Cancel Install"
    bl_description = "Stop the running Install Dependencies"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return jobs.explain(cls, dependencies.running_install() is not None, "No install is running")

    def execute(self, context):
        dependencies.running_install().cancel()
        return {"FINISHED"}


CLASSES = (UPLIFT_OT_install_dependencies, UPLIFT_OT_cancel_install)
