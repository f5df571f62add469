"""Reading Uplift's state out of Blender (and the few writes every step shares).

The handler and the operators take snapshots through these functions, hand them to
the bpy-free core, and apply the results back.
"""
from __future__ import annotations

import base64
import uuid

import bpy
from mathutils import Matrix
import numpy as np

from ..core.errors import CameraError, UpliftError
from . import images, state

GAUSSIANS_HEADER = "# Uplift Gaussians: base64 of a binary little-endian 3DGS PLY (root-local frame). Do not edit.\n"


class SceneStateError(UpliftError):
    """The scene lacks what a step needs (no photo, no camera, no lifted object, …)."""


# -- the camera ------------------------------------------------------------------
def scene_camera(scene: bpy.types.Scene) -> bpy.types.Object:
    cam = scene.uplift.camera or scene.camera
    if cam is None or cam.type != "CAMERA" or cam.name not in scene.objects:
        raise SceneStateError("the scene has no Uplift camera: run Load Photo first")
    return cam


def camera_settings(cam_obj: bpy.types.Object, scene: bpy.types.Scene):
    """The plain numbers `core.blender_camera` converts, read from a camera object and scene."""
    from ..core.blender_camera import BlenderCameraSettings

    data, render = cam_obj.data, scene.render
    if data.type != "PERSP":
        raise CameraError(f"camera {cam_obj.name!r} is {data.type.lower()}; Uplift needs a perspective camera")
    return BlenderCameraSettings(
        lens=data.lens, sensor_width=data.sensor_width, sensor_height=data.sensor_height,
        sensor_fit=data.sensor_fit, shift_x=data.shift_x, shift_y=data.shift_y,
        resolution_x=render.resolution_x, resolution_y=render.resolution_y,
        resolution_percentage=render.resolution_percentage,
        pixel_aspect_x=render.pixel_aspect_x, pixel_aspect_y=render.pixel_aspect_y,
        matrix_world=np.array(cam_obj.matrix_world, dtype=np.float64),
    )


def camera_of(scene: bpy.types.Scene):
    """-> core.camera.Camera of the scene's Uplift camera."""
    cam_obj = scene_camera(scene)
    from ..core.blender_camera import camera_from_blender

    return camera_from_blender(camera_settings(cam_obj, scene))


def camera_key(scene: bpy.types.Scene) -> bytes:
    """Changes whenever anything that moves the rendered view changes; the same in every session
    (`animation.pose_fingerprint` stores it in the .blend)."""
    try:
        cam = scene_camera(scene)
    except SceneStateError:
        return b""
    d, r = cam.data, scene.render
    numbers = [*np.array(cam.matrix_world).ravel(), d.lens, d.sensor_width, d.sensor_height, d.shift_x,
               d.shift_y, r.resolution_x, r.resolution_y, r.resolution_percentage, r.pixel_aspect_x,
               r.pixel_aspect_y]
    return np.asarray(numbers, dtype=np.float64).tobytes() + f"{d.sensor_fit}|{d.type}".encode()


# -- lifted objects --------------------------------------------------------------------
def new_uid() -> str:
    return uuid.uuid4().hex[:12]


def roots(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    return [ob for ob in scene.objects if ob.uplift.role == "ROOT" and ob.uplift.uid]


def root_of(ob: bpy.types.Object | None) -> bpy.types.Object | None:
    """The root of a root, control or proxy object."""
    while ob is not None and ob.uplift.role in ("CONTROL", "PROXY"):
        ob = ob.parent
    return ob if ob is not None and ob.uplift.role == "ROOT" else None


def active_root(context) -> bpy.types.Object | None:
    root = root_of(context.active_object)
    if root is None:
        root = context.scene.uplift.active_root
        if root is not None and root.name not in context.scene.objects:
            root = None
    return root


_controls_cache: dict[int, dict[int, bpy.types.Object]] = {}  # root pointer -> its controls by index


def controls_of(root: bpy.types.Object) -> dict[int, bpy.types.Object]:
    """The root's control empties by index. `root.children` scans every object of the file (2 ms
    with 512 controls, twice per live update), so the map is kept and checked instead: as many
    empties as the root's control count, each still existing and still the root's child (controls
    rebuilt, deleted, reparented or replaced by undo rebuild it)."""
    key = root.as_pointer()
    cached = _controls_cache.get(key)
    if cached is not None and len(cached) == root.uplift.control_count:
        try:
            if all(ob.parent == root for ob in cached.values()):
                return cached
        except ReferenceError:  # an empty was deleted (or undo replaced the objects)
            pass
    controls = {ob.uplift.index: ob for ob in root.children
                if ob.uplift.role == "CONTROL" and ob.uplift.uid == root.uplift.uid and ob.uplift.index >= 0}
    _controls_cache[key] = controls
    return controls


def proxy_of(root: bpy.types.Object) -> bpy.types.Object | None:
    return next((ob for ob in root.children if ob.uplift.role == "PROXY"), None)


def store_gaussians(root: bpy.types.Object, g) -> None:
    """Pack the Gaussians (root-local) into a Text datablock saved with the .blend."""
    from ..core.ply import ply_bytes

    text = root.uplift.gaussians or bpy.data.texts.new(f"Uplift Gaussians {root.name}")
    encoded = base64.b64encode(ply_bytes(g)).decode("ascii")
    # Short lines: Blender's text datablock is slow with one multi-megabyte line.
    text.from_string(GAUSSIANS_HEADER + "\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76)))
    root.uplift.gaussians = text


def load_gaussians(root: bpy.types.Object):
    from ..core.ply import read_ply

    text = root.uplift.gaussians
    if text is None:
        raise SceneStateError(f"{root.name!r} has lost its Gaussians (the text datablock was deleted)")
    body = text.as_string()
    if body.startswith("#"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
    try:
        data = base64.b64decode("".join(body.split()), validate=True)
    except ValueError:
        raise SceneStateError(f"the Gaussians of {root.name!r} (text {text.name!r}) were edited and "
                              "are no longer readable") from None
    return read_ply(data)


def deform_settings(root: bpy.types.Object, context=None) -> state.DeformSettings:
    from . import preferences

    prefs = preferences.get(context)
    props = root.uplift
    return state.DeformSettings(props.control_count, props.graph_neighbours, props.skin_neighbours,
                                prefs.arap_iterations, prefs.device, prefs.render_backend)


def session_for(root: bpy.types.Object, context=None) -> state.ObjectSession:
    """The runtime session of `root`, rebuilt from the .blend when missing (after a reload)."""
    session = state.get(root.uplift.uid)
    settings = deform_settings(root, context)
    if session is not None and (session.settings == settings or session.adopt(settings)):
        if session.photo_input is None:  # a session made by create_object
            session.photo_input = _photo_input(root)
        return session
    session = state.put(state.ObjectSession(root.uplift.uid, load_gaussians(root), settings))
    session.photo_input = _photo_input(root)
    if settings.control_count > 0:
        session.ensure_deformer()
        controls = controls_of(root)
        written = session.rest_controls().copy()
        for i, ob in controls.items():
            if i < len(written):
                written[i] = ob.location
        session.written = written
        session.needs_restore = True
    return session


def control_snapshot(root: bpy.types.Object, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (present bool [M], held bool [M] (pinned or keyed), locations [M, 3]) of the root's control empties."""
    present, pinned, locations, _ = control_pose(root, count)
    return present, pinned, locations


def is_keyed(ob: bpy.types.Object) -> bool:
    """An animated control (keys or drivers): a handle, like a pinned one, and never written back."""
    data = ob.animation_data
    return data is not None and (data.action is not None or len(data.drivers) > 0)


def control_pose(root: bpy.types.Object, count: int):
    """-> (present [M], held [M], locations [M, 3], wxyz rotations [M, 4]) of the control empties.
    Held controls are the ARAP handles: pinned or keyed. Each empty's rotation is the ARAP
    rotation Uplift last solved for it."""
    present = np.zeros(count, dtype=bool)
    pinned = np.zeros(count, dtype=bool)
    locations = np.zeros((count, 3))
    rotations = np.tile([1.0, 0.0, 0.0, 0.0], (count, 1))
    for i, ob in controls_of(root).items():
        if i < count:
            present[i] = True
            pinned[i] = ob.uplift.pinned or is_keyed(ob)
            locations[i] = ob.location
            rotations[i] = ob.rotation_quaternion
    return present, pinned, locations, rotations


def apply_camera_settings(cam_obj: bpy.types.Object, scene: bpy.types.Scene, settings) -> None:
    """Write `core.blender_camera.BlenderCameraSettings` to a camera object and the scene."""
    data, render = cam_obj.data, scene.render
    data.type = "PERSP"
    data.lens_unit = "MILLIMETERS"
    data.sensor_fit = settings.sensor_fit
    data.sensor_width = settings.sensor_width
    data.sensor_height = settings.sensor_height
    data.lens = settings.lens
    data.shift_x, data.shift_y = settings.shift_x, settings.shift_y
    render.resolution_x, render.resolution_y = settings.resolution_x, settings.resolution_y
    render.resolution_percentage = settings.resolution_percentage
    render.pixel_aspect_x, render.pixel_aspect_y = settings.pixel_aspect_x, settings.pixel_aspect_y
    cam_obj.matrix_world = Matrix(np.asarray(settings.matrix_world, dtype=np.float64).tolist())  # rows
    extent = 100.0
    data.clip_start, data.clip_end = 0.01, extent


def reset_selection(scene: bpy.types.Scene) -> None:
    """Forget the current selection prompt and mask (after Load Photo or Lift)."""
    props = scene.uplift
    cam = props.camera
    if props.overlay_image is not None:
        if cam is not None:
            images.remove_camera_layer(cam.data, props.overlay_image)
        bpy.data.images.remove(props.overlay_image)
    props.overlay_image = None
    props.mask_image = None
    props.prompt_box = (0, 0, 0, 0)
    props.prompt_points.clear()
    props.mask_score = 0.0
    reset_fit(scene)


def reset_fit(scene: bpy.types.Scene) -> None:
    """Forget the mesh fitted to the photo (its fits belong to the mask they were made for)."""
    props = scene.uplift
    if props.fit_overlay_image is not None:
        if props.camera is not None:
            images.remove_camera_layer(props.camera.data, props.fit_overlay_image)
        bpy.data.images.remove(props.fit_overlay_image)
    props.fit_overlay_image = None
    props.fit_mesh = None
    props.fit_hypotheses = ""
    props.fit_index = props.fit_total = 0
    props.fit_key = ""


def _photo_input(root: bpy.types.Object):
    """-> (photo uint8 [H, W, 3], its Camera in the root's frame) for reprojection, or () when
    the root has no photo camera (lifted by an older version) or the scene no photo of that size."""
    from ..core.camera import Camera
    from ..core.image_io import load_image

    photo = bpy.context.scene.uplift.photo_image
    if not root.uplift.photo_camera or photo is None:
        return ()
    try:
        camera = Camera.from_json(root.uplift.photo_camera)
        image = load_image(images.file_bytes(photo), what="photo")
    except UpliftError:
        return ()
    return (image, camera) if image.shape[:2] == (camera.height, camera.width) else ()


def photo_bytes(scene: bpy.types.Scene) -> bytes:
    photo = scene.uplift.photo_image
    if photo is None:
        raise SceneStateError("no photo is loaded: run Load Photo first")
    return images.file_bytes(photo)


def selection_mask(scene: bpy.types.Scene) -> np.ndarray:
    """The selected object's mask, bool [H, W] of the photo's size."""
    from ..core.image_io import load_mask

    mask = scene.uplift.mask_image
    if mask is None:
        raise SceneStateError("no object is selected in the photo: run Select Object first")
    width, height = photo_size(scene)
    return load_mask(images.file_bytes(mask), shape=(height, width), what="the selection mask")


def photo_size(scene: bpy.types.Scene) -> tuple[int, int]:
    photo = scene.uplift.photo_image
    if photo is None:
        raise SceneStateError("no photo is loaded: run Load Photo first")
    return tuple(photo.size)
