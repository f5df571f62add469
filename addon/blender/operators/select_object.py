"""Select Object: a box drag or clicks in the camera view → a mask from the server.

Interactive use is a modal loop: drag a box round the object, then click to add
(click) or remove (Ctrl+click) parts; each prompt is segmented on a worker thread and
the mask shown as a red overlay. Enter or right click accepts, Esc cancels. The
region → photo pixel maths is `core.viewport_math` (tested headless). Scripts pass the
prompt as properties (`box`, or `point` + `label`) and run it directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np
from bpy.props import EnumProperty, FloatVectorProperty, IntProperty, IntVectorProperty

from ...core.errors import ControlError, UpliftError
from .. import drawing, images, jobs, scene_io

OVERLAY_RGBA = (1.0, 0.15, 0.1, 0.45)


def selection_overlay(mask: np.ndarray) -> np.ndarray:
    """bool [H, W] -> float32 [H, W, 4]: a translucent red where the mask is."""
    rgba = np.zeros((*mask.shape, 4), dtype=np.float32)
    rgba[mask] = OVERLAY_RGBA
    return rgba


@dataclass(frozen=True)
class Prompt:
    """What the artist has said so far: a box and/or clicked points (x, y, label) in photo pixels."""
    box: tuple[int, int, int, int] | None = None
    points: tuple[tuple[float, float, int], ...] = ()

    @property
    def empty(self) -> bool:
        return self.box is None and not self.points

    @classmethod
    def of(cls, scene) -> "Prompt":
        props = scene.uplift
        box = tuple(props.prompt_box) if any(props.prompt_box) else None
        return cls(box, tuple((p.x, p.y, p.label) for p in props.prompt_points))

    def store(self, scene) -> None:
        props = scene.uplift
        props.prompt_box = self.box or (0, 0, 0, 0)
        props.prompt_points.clear()
        for x, y, label in self.points:
            item = props.prompt_points.add()
            item.x, item.y, item.label = x, y, label


class UPLIFT_OT_select_object(bpy.types.Operator, jobs.BackgroundStep):
    bl_idname = "uplift.select_object"
    bl_label = "Select Object"
    bl_description = "Drag a box round the object in the camera view, then click to add or Ctrl+click to remove parts"
    bl_options = {"REGISTER", "UNDO"}
    busy_text = "Segmenting"

    mode: EnumProperty(name="Prompt", default="BOX", items=[
        ("BOX", "Box", "Replace the prompt with a box"),
        ("POINT", "Point", "Add a point to the prompt"),
        ("CLEAR", "Clear", "Forget the prompt and the mask")])
    box: IntVectorProperty(name="Box", size=4, description="x0, y0, x1, y1 in photo pixels (origin top-left)")
    point: FloatVectorProperty(name="Point", size=2, description="x, y in photo pixels (origin top-left)")
    label: IntProperty(name="Label", default=1, min=0, max=1, description="1: part of the object, 0: not part of it")

    @classmethod
    def poll(cls, context):
        return (jobs.poll_dependencies(cls)
                and jobs.explain(cls, context.scene.uplift.photo_image is not None
                                 and context.scene.uplift.camera is not None, "Load a photo first"))

    # -- the step -------------------------------------------------------------------
    def _next_prompt(self, context, prompt: Prompt) -> Prompt:
        """`prompt` with this operator's box or point applied (nothing in Blender changes yet)."""
        width, height = scene_io.photo_size(context.scene)
        if self.mode == "CLEAR":
            return Prompt()
        if self.mode == "BOX":
            x0, y0, x1, y1 = self.box
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise ControlError(f"the box {tuple(self.box)} is not inside the {width}x{height} photo "
                                   "with x0 < x1 and y0 < y1")
            return Prompt(tuple(self.box), ())
        x, y = self.point
        if not (0 <= x < width and 0 <= y < height):
            raise ControlError(f"the point ({x:.0f}, {y:.0f}) is outside the {width}x{height} photo")
        return Prompt(prompt.box, prompt.points + ((float(x), float(y), int(self.label)),))

    def prepare(self, context):
        return self._payload(context, self._next_prompt(context, Prompt.of(context.scene)))

    def _payload(self, context, prompt: Prompt):
        if prompt.empty:
            return None, None, prompt
        return jobs.server_client(context), scene_io.photo_bytes(context.scene), prompt

    def work(self, payload):
        client, photo, prompt = payload
        if client is None:
            return None, prompt
        points = [(x, y) for x, y, _ in prompt.points]
        labels = [label for _, _, label in prompt.points]
        return client.segment(photo, points, labels, list(prompt.box) if prompt.box else None), prompt

    def apply(self, context, result) -> None:
        from ...core.image_io import load_mask

        answer, prompt = result
        scene = context.scene
        if answer is None:
            scene_io.reset_selection(scene)
            return
        props = scene.uplift
        width, height = scene_io.photo_size(scene)
        mask = load_mask(answer.mask_png, shape=(height, width), what="the server's mask")
        cam = scene_io.scene_camera(scene)
        prompt.store(scene)
        overlay = images.show_rgba("Uplift Selection", selection_overlay(mask), props.overlay_image)
        props.overlay_image = overlay
        images.camera_layer(cam.data, overlay, front=True)
        props.mask_image = images.packed_image("Uplift Selection Mask", answer.mask_png, ".png",
                                               replace=props.mask_image, colorspace="Non-Color")
        props.mask_score = answer.score if np.isfinite(answer.score) else 0.0
        scene_io.reset_fit(scene)  # a mesh's fits were made for the mask before
        self.report({"INFO"}, f"Selected {int(mask.sum())} pixels: refine with clicks, or Lift")

    # -- interactive shell (modal events do not run headless; the maths is tested) --------------
    def invoke(self, context, event):
        if bpy.app.background or context.area is None or context.area.type != "VIEW_3D":
            return self.execute(context)
        self._press = None
        self._task = None
        self._stale = False
        self._prompt = Prompt.of(context.scene)
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        self._draw = drawing.add_box_overlay(self)
        context.window_manager.modal_handler_add(self)
        context.workspace.status_text_set("Drag a box round the object · click: add · Ctrl+click: remove · "
                                          "Enter: done · Esc: cancel")
        return {"RUNNING_MODAL"}

    def _end(self, context, status: set[str]) -> set[str]:
        context.window_manager.event_timer_remove(self._timer)
        self._timer = None
        drawing.remove_overlay(self._draw)
        context.workspace.status_text_set(None)
        context.area.tag_redraw()
        return status

    def cleanup_after_error(self, context) -> None:
        if getattr(self, "_timer", None) is not None:
            self._end(context, set())

    def modal(self, context, event):
        if event.type == "TIMER":
            if self._task is not None and self._task.done.is_set():
                task, self._task = self._task, None
                if isinstance(task.error, UpliftError):
                    self.report({"ERROR"}, str(task.error))
                elif task.error is not None:
                    raise task.error  # reporting.guard reports it and ends the loop
                else:
                    try:
                        self.apply(context, task.result)
                    except UpliftError as exc:
                        self.report({"ERROR"}, str(exc))
                if self._stale:
                    self._start(context)
                context.area.tag_redraw()
            return {"PASS_THROUGH"}
        if event.type == "ESC":
            return self._end(context, {"CANCELLED"})
        if event.type in {"RET", "NUMPAD_ENTER", "RIGHTMOUSE"} and event.value == "PRESS":
            done = context.scene.uplift.mask_image is not None
            return self._end(context, {"FINISHED"} if done else {"CANCELLED"})
        if event.type == "MOUSEMOVE" and self._press is not None:
            self.drag_to = (event.mouse_region_x, event.mouse_region_y)
            context.area.tag_redraw()
        if event.type == "LEFTMOUSE" and event.value == "PRESS":
            self._press = self.drag_to = (event.mouse_region_x, event.mouse_region_y)
            return {"RUNNING_MODAL"}
        if event.type == "LEFTMOUSE" and event.value == "RELEASE" and self._press is not None:
            press, self._press = self._press, None
            release = (event.mouse_region_x, event.mouse_region_y)
            try:
                self._prompt_from_mouse(context, press, release, event.ctrl)
                self._prompt = self._next_prompt(context, self._prompt)
                if self._task is None:
                    self._start(context)
                else:
                    self._stale = True  # segment the newest prompt once the running request is back
            except UpliftError as exc:
                self.report({"ERROR"}, str(exc))
            context.area.tag_redraw()
            return {"RUNNING_MODAL"}
        return {"PASS_THROUGH"}

    def _start(self, context) -> None:
        self._stale = False
        self._task = jobs.Task(self.work, self._payload(context, self._prompt))

    def _prompt_from_mouse(self, context, press, release, remove: bool) -> None:
        from ...core.viewport_math import is_drag

        mapping = drawing.frame_mapping(context)
        if is_drag(press, release):
            self.mode, self.box = "BOX", mapping.box(press, release)
        else:
            self.mode, self.point, self.label = "POINT", mapping.point(release), 0 if remove else 1


CLASSES = (UPLIFT_OT_select_object,)
