"""Render ▸ Render Animation (and F12) of an edited photo, through the "Uplift Composite" tree.

Before Blender renders a frame (`render_pre`), the tree's Image layers (plate, object,
seam fill, seam mask) are replaced by that frame's: the lifted objects are posed from the
controls as they stand at that frame (pinned or keyed controls are handles), rendered and
composited by `pipeline.animate.FrameRenderer` — the still's code path. The compositor then
runs on those layers, so file output, FFmpeg, frame ranges and the render window work as usual.

Found by experiment (bpy 5.2.3, background): during `render(animation=True)` Blender calls
render_pre per frame with `scene.frame_current` set, but no frame_change handlers, and the
render's own depsgraph does not write animated values back to the objects; so each frame
first runs `scene.frame_set` to evaluate the keys onto the objects. Pixels written with
`image.pixels.foreach_set` + `update()` in render_pre reach that frame's compositor.
In the UI the render runs on a job thread: `scene.render.use_lock_interface` is switched on
when the tree is wired so these writes do not race the interface.

Scrubbing the timeline (`frame_change_post`) asks the live loop for an update like a moved control.
"""
from __future__ import annotations

import sys

import bpy
import numpy as np
from bpy.app.handlers import persistent

from ..core.errors import UpliftError
from . import compositor, handlers, images, scene_io

LAYER_IMAGE = "Uplift Frame {}"

_rendering = False
_renderer = {"job": None}  # the FrameRenderer of the render in progress (plate, masks, solvers)
last_error = {"text": ""}


def layer_image(name: str, rgba: np.ndarray) -> bpy.types.Image:
    """Write one layer (float [H, W, 4] top-down straight alpha) into its generated image."""
    image = images.show_rgba(LAYER_IMAGE.format(name), rgba, bpy.data.images.get(LAYER_IMAGE.format(name)))
    if image.colorspace_settings.name != "Non-Color":
        image.colorspace_settings.name = "Non-Color"  # the tree composites the files' own values
    return image


def ensure_tree(scene: bpy.types.Scene) -> dict:
    """The Uplift tree's layer nodes; wires a new tree over the frame layers when there is none."""
    nodes = compositor.layer_nodes(scene)
    if len(nodes) < len(compositor.LAYERS):
        width, height = scene_io.photo_size(scene)
        blank = np.zeros((height, width, 4), dtype=np.float32)
        compositor.wire(scene, {name: layer_image(name, blank) for name in compositor.LAYERS})
        nodes = compositor.layer_nodes(scene)
    scene.render.use_lock_interface = True
    return nodes


def active(scene: bpy.types.Scene) -> bool:
    """Render frames through Uplift: lifted objects, a photo and the Uplift tree composites."""
    return (hasattr(scene, "uplift") and scene.uplift.photo_image is not None and bool(scene_io.roots(scene))
            and scene.render.use_compositing and bool(compositor.layer_nodes(scene)))


def object_pose(root: bpy.types.Object):
    """-> pipeline.animate.ObjectPose of `root` as it stands now: pinned or keyed controls are handles."""
    from ..pipeline.animate import ObjectPose

    count = root.uplift.control_count
    present, pinned, locations, _ = scene_io.control_pose(root, count)
    keyed = np.zeros(count, dtype=bool)
    for i, ob in scene_io.controls_of(root).items():
        if i < count and ob.animation_data is not None and ob.animation_data.action is not None:
            keyed[i] = True
    handle_idx = np.flatnonzero(present & (pinned | keyed)).astype(np.int64)
    return ObjectPose(root.uplift.uid, handle_idx, locations[handle_idx],
                      np.array(root.matrix_world, dtype=np.float64))


def frame_renderer(scene: bpy.types.Scene):
    """A FrameRenderer for `scene`: photo, plate and masks decoded once per render."""
    from ..core.image_io import load_image, load_mask
    from ..pipeline.animate import AnimatedObject, FrameRenderer
    from ..pipeline.edit import EditConfig
    from . import preferences

    photo = load_image(scene_io.photo_bytes(scene), what="the photo")
    plate_image = scene.uplift.plate_image
    plate = photo if plate_image is None else load_image(images.file_bytes(plate_image), what="the plate")
    masks, objects = [], []
    for root in scene_io.roots(scene):
        if root.uplift.mask_image is not None:
            masks.append(load_mask(images.file_bytes(root.uplift.mask_image), shape=photo.shape[:2],
                                   what=f"the mask of {root.name!r}"))
        settings = scene_io.deform_settings(root)
        objects.append(AnimatedObject(root.uplift.uid, scene_io.load_gaussians(root),
                                      settings.deform_config() if settings.control_count > 0 else None))
    return FrameRenderer(photo, plate, masks, objects, EditConfig(), preferences.get().render_backend)


def render_frame(scene: bpy.types.Scene):
    """Evaluate the scene at its current frame, render that frame's layers into the tree.
    Returns the frame's pipeline.edit.Composite."""
    from ..pipeline.animate import tree_layers

    nodes = ensure_tree(scene)
    handlers._guard = True  # frame_set's own updates are no edits for the live loop
    try:
        scene.frame_set(scene.frame_current, subframe=scene.frame_subframe)
    finally:
        handlers._guard = False
    if _renderer["job"] is None:
        _renderer["job"] = frame_renderer(scene)
    job = _renderer["job"]
    composite = job.frame([object_pose(root) for root in scene_io.roots(scene)], scene_io.camera_of(scene))
    for name, rgba in tree_layers(composite, job.plate).items():
        image = layer_image(name, rgba)
        if nodes[name].image != image:
            nodes[name].image = image
    return composite


# -- handlers --------------------------------------------------------------------------
@persistent
def on_render_init(scene, *_args) -> None:
    global _rendering
    _rendering = True
    _renderer["job"] = None  # the scene may have changed since the last render
    last_error["text"] = ""


@persistent
def on_render_pre(scene, *_args) -> None:
    if not active(scene):
        return
    try:
        render_frame(scene)
    except UpliftError as exc:  # a handler cannot cancel the render: say why the frame is stale
        last_error["text"] = f"frame {scene.frame_current}: {exc}"
        print(f"Uplift: {last_error['text']}", file=sys.stderr)


@persistent
def on_render_done(scene, *_args) -> None:
    global _rendering
    _rendering = False
    _renderer["job"] = None


@persistent
def on_frame_change(scene, *_args) -> None:
    """Scrubbing: the keyed controls moved, let the live loop catch up (latest request wins)."""
    if _rendering or handlers._guard or not hasattr(scene, "uplift") or not scene.uplift.live_update:
        return
    handlers.refresh(scene)


_HANDLERS = (
    (bpy.app.handlers.render_init, on_render_init),
    (bpy.app.handlers.render_pre, on_render_pre),
    (bpy.app.handlers.render_complete, on_render_done),
    (bpy.app.handlers.render_cancel, on_render_done),
    (bpy.app.handlers.frame_change_post, on_frame_change),
)


def register() -> None:
    unregister()
    for handler_list, fn in _HANDLERS:
        handler_list.append(fn)


def unregister() -> None:
    for handler_list, _fn in _HANDLERS:
        for fn in [f for f in handler_list if getattr(f, "__module__", "") == __name__]:
            handler_list.remove(fn)
    _renderer["job"] = None
