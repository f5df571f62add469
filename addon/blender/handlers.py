"""The live edit loop: notice moves, deform + render off the main thread, show the result.

`on_depsgraph_update` (a persistent depsgraph_update_post handler) compares every lifted
object's control empties, root and camera with what Uplift last wrote or rendered. An
empty that moved is pinned (it becomes a handle); a changed handle set asks for an ARAP
solve, a moved root or camera only for a render. Requests go to one worker thread
(latest request per object wins); `bpy.app.timers` drains the results on the main thread
and writes them back: free empties follow the ARAP solution, the proxy's points move and
the render is shown as a front background image of the camera. When nothing changes for
`full_render_delay` seconds the view is rendered again at full resolution.

Re-entrancy: Uplift's own writes are recorded (`session.written`) so the update they
cause compares equal and does nothing; `_guard` also stops nested calls outright.

Headless Blender runs no timers: there requests wait until `flush()` runs them
synchronously (the tests' hook, also usable from scripts).
"""
from __future__ import annotations

import threading
import time

import bpy
import numpy as np
from bpy.app.handlers import persistent

from ..core.errors import UpliftError
from . import images, native_splats, reporting, scene_io, state

MOVE_EPSILON = 1e-5  # metres; smaller differences are float noise, not the artist

_guard = False
_lock = threading.Lock()
_pending: dict[str, state.LiveRequest] = {}
_results: list[tuple[state.LiveRequest, state.LiveResult | None, str | None]] = []
_dirty: set[str] = set()
_wake = threading.Event()
_stop = threading.Event()
_worker: threading.Thread | None = None
_busy_uid: str | None = None
_views: dict[int, tuple[bytes, object]] = {}  # scene pointer -> (camera key, core Camera or None)
_objects_seen = {"count": 0}                  # len(bpy.data.objects) at the last update: a drop = a delete
last_error = {"text": ""}


def mark_dirty(uid: str) -> None:
    """Force a re-solve of `uid` on the next update (a pin was toggled, undo, …)."""
    if uid:
        _dirty.add(uid)


# -- collecting requests (main thread) -----------------------------------------------
def _merge(old: state.LiveRequest | None, new: state.LiveRequest) -> state.LiveRequest:
    if old is not None and old.solve and not new.solve:
        # The older request's solve must still happen; the newer one carries the latest view.
        return state.LiveRequest(new.uid, old.handle_idx, old.targets, new.root_matrix, new.camera,
                                 new.scale, True, new.generation, old.mode, old.restore, new.gpu_camera)
    return new


def _gpu_camera() -> bool:
    """The GPU draw shows the objects through the scene camera (photos reprojected), so the torch
    camera preview is skipped: it stays the fallback where the GPU does not draw."""
    from . import splat_draw

    return splat_draw.draws_camera_views()


def _view(scene: bpy.types.Scene) -> tuple[bytes, object, bool]:
    """-> (camera key, core Camera or None, changed since the last call). The Camera is
    converted only when the key (the camera's matrix, lens, sensor, resolution…) changes."""
    key = scene_io.camera_key(scene)
    cached = _views.get(scene.as_pointer())
    if cached is not None and cached[0] == key:
        return key, cached[1], False
    try:
        camera = scene_io.camera_of(scene)
    except UpliftError:
        camera = None  # no usable camera: still solve, nothing to render
    _views[scene.as_pointer()] = (key, camera)
    return key, camera, True


def collect(scene: bpy.types.Scene, context=None, scale: float | None = None, touched=None) -> int:
    """Queue a request for every lifted object whose controls, root or camera changed.
    `touched`: the only roots whose controls or transform may have changed (the depsgraph
    handler's early path); None checks every root and forgets deleted objects.
    Returns the number queued."""
    global _guard
    from . import preferences

    prefs = preferences.get(context)
    scale = prefs.preview_scale if scale is None else scale
    cam_key, camera, view_changed = _view(scene)
    full_scan = touched is None or view_changed
    if full_scan:
        candidates = scene_io.roots(scene)
    else:
        candidates = list(touched) + [root for root in map(_find_root, _dirty - {r.uplift.uid for r in touched})
                                      if root is not None]
    queued = 0
    for root in candidates:
        uid = root.uplift.uid
        session = scene_io.session_for(root, context)
        handle_idx = np.zeros(0, dtype=np.int64)
        targets = np.zeros((0, 3))
        solve_key = b""
        if session.deformer is not None:
            count = session.settings.control_count
            present, pinned, locations = scene_io.control_snapshot(root, count)
            moved = present & (np.abs(locations - session.written).max(axis=1) > MOVE_EPSILON)
            newly_pinned = moved & ~pinned
            if newly_pinned.any():
                controls = scene_io.controls_of(root)
                _guard = True
                try:
                    for i in np.flatnonzero(newly_pinned):
                        controls[int(i)].uplift.pinned = True
                finally:
                    _guard = False
            pinned |= moved
            handle_idx = np.flatnonzero(pinned & present).astype(np.int64)
            targets = locations[handle_idx]
            solve_key = handle_idx.tobytes() + targets.tobytes()
        solve = solve_key != session.solved_key or uid in _dirty
        view_key = np.array(root.matrix_world, dtype=np.float64).tobytes() + cam_key
        if not solve and view_key == session.view_key:
            continue
        _dirty.discard(uid)
        # A session just rebuilt (file opened, undo, extension re-enabled) takes the pose the empties
        # hold (locations + ARAP rotations) as it is, unless the artist has moved one since.
        restore = None
        if session.needs_restore and session.deformer is not None and not moved.any():
            _, _, pose_locations, pose_rotations = scene_io.control_pose(root, session.settings.control_count)
            restore = (pose_locations, pose_rotations)
        session.needs_restore = False
        session.solved_key, session.view_key = solve_key, view_key
        session.generation += 1
        request = state.LiveRequest(uid, handle_idx, targets, np.array(root.matrix_world, dtype=np.float64),
                                    camera, scale, solve, session.generation, restore=restore,
                                    gpu_camera=_gpu_camera())
        with _lock:
            _pending[uid] = _merge(_pending.get(uid), request)
        queued += 1
    if touched is None:
        forget_deleted(scene)
    return queued


def forget_deleted(scene: bpy.types.Scene) -> None:
    """Drop the sessions, GPU splats and render layers of lifted objects that no longer exist
    (after a delete, load or undo; not on every update)."""
    from . import splat_draw

    _objects_seen["count"] = len(bpy.data.objects)
    live_uids = {root.uplift.uid for root in scene_io.roots(scene)}
    for uid in state.uids():
        if uid not in live_uids and not any(ob.uplift.uid == uid for ob in bpy.data.objects):
            state.drop(uid)
            _dirty.discard(uid)
            splat_draw.forget(uid, restore_proxies=False)  # its proxy went with it
    _drop_orphan_layers(scene, live_uids)


def _drop_orphan_layers(scene: bpy.types.Scene, live_uids: set[str]) -> None:
    """Remove render layers of lifted objects that were deleted from the camera view."""
    try:
        cam = scene_io.scene_camera(scene)
    except UpliftError:
        return
    for layer in list(cam.data.background_images):
        uid = layer.image.get("uplift_uid") if layer.image is not None else None
        if uid is not None and uid not in live_uids:
            cam.data.background_images.remove(layer)


@persistent
def on_depsgraph_update(scene, depsgraph) -> None:
    """The cheap early path: only the lifted objects whose controls or root the update
    touched are examined; the camera is converted only when its key changes; deleted
    objects are forgotten only when the object count drops."""
    if _guard or not hasattr(scene, "uplift") or not scene.uplift.live_update:
        return
    touched: dict[str, bpy.types.Object] = {}
    view = False
    for update in depsgraph.updates:
        ident = update.id
        if isinstance(ident, bpy.types.Object):
            ob = ident.original
            if ob.uplift.role in ("CONTROL", "ROOT"):
                root = scene_io.root_of(ob)
                if root is not None:
                    touched[root.uplift.uid] = root
            elif ob.type == "CAMERA" and update.is_updated_transform:
                view = True
        elif isinstance(ident, (bpy.types.Camera, bpy.types.Scene)):
            view = True  # maybe: collect compares the camera key
    if len(bpy.data.objects) < _objects_seen["count"]:
        forget_deleted(scene)
    _objects_seen["count"] = len(bpy.data.objects)
    if touched or view or _dirty:
        refresh(scene, list(touched.values()))


def refresh(scene: bpy.types.Scene, touched=None) -> None:
    """Queue what changed in `scene` (only `touched` roots unless the view changed, see
    `collect`) and start working on it; errors go to the panel."""
    try:
        if collect(scene, touched=touched):
            kick()
    except Exception as exc:  # noqa: BLE001 - a handler must never raise into Blender
        last_error["text"] = reporting.describe(exc)


# -- running requests ----------------------------------------------------------------------
def _run(request: state.LiveRequest) -> None:
    session = state.get(request.uid)
    if session is None:
        return
    try:
        result, error = session.compute(request), None
    except Exception as exc:  # noqa: BLE001 - reported in the panel; the worker keeps serving
        result, error = None, reporting.describe(exc)
    with _lock:
        _results.append((request, result, error))


def _worker_loop() -> None:
    global _busy_uid
    while not _stop.is_set():
        _wake.wait(0.5)
        _wake.clear()
        while not _stop.is_set():
            with _lock:
                if not _pending:
                    break
                uid, request = next(iter(_pending.items()))
                del _pending[uid]
                _busy_uid = uid
            try:
                _run(request)
            except Exception as exc:  # keep the worker alive; the panel shows what went wrong
                with _lock:
                    _results.append((request, None, f"live update failed: {exc}"))
            finally:
                _busy_uid = None


def kick() -> None:
    """Start the worker and the drain timer (not in headless Blender: see `flush`)."""
    global _worker
    if bpy.app.background:
        return
    if _worker is None or not _worker.is_alive():
        _stop.clear()
        _worker = threading.Thread(target=_worker_loop, name="uplift-live", daemon=True)
        _worker.start()
    _wake.set()
    if not bpy.app.timers.is_registered(_drain):
        bpy.app.timers.register(_drain, first_interval=0.02)


# Set by `animation` while Blender renders frames: results wait, so the main thread writes no
# controls or proxy points under the render job.
rendering = {"on": False}


def _drain() -> float | None:
    """Timer: apply finished results; start due full-resolution renders; stop when idle."""
    if rendering["on"]:
        return 0.1
    if apply_results():
        _redraw_views()
    now = time.monotonic()
    waiting = False
    for uid in state.uids():
        session = state.get(uid)
        if session.full_due is None:
            continue
        if now >= session.full_due and uid not in _pending and _busy_uid != uid:
            _queue_full(uid)
            _wake.set()
        else:
            waiting = True
    with _lock:
        busy = bool(_pending) or bool(_results) or _busy_uid is not None
    return 0.03 if busy or waiting else None


def _queue_full(uid: str) -> bool:
    """Queue the full-resolution render of a session's current pose, converged (batch ARAP):
    the artist has paused, so there is time to finish what the interactive iterations started."""
    session = state.get(uid)
    root = _find_root(uid)
    session.full_due = None
    if root is None:
        return False
    try:
        camera = scene_io.camera_of(root.users_scene[0] if root.users_scene else bpy.context.scene)
    except UpliftError:
        return False
    solve = len(session.handle_idx) > 0 and not session.converged
    gpu_camera = _gpu_camera()
    if gpu_camera and not solve:
        return False  # the GPU draw needs no full-resolution render, only the converged pose
    session.generation += 1
    request = state.LiveRequest(uid, session.handle_idx, session.targets,
                                np.array(root.matrix_world, dtype=np.float64), camera, 1.0,
                                solve, session.generation, "batch", gpu_camera=gpu_camera)
    with _lock:
        _pending[uid] = _merge(_pending.get(uid), request)
    return True


def flush(full: bool = False) -> int:
    """Run every queued request on this thread and apply it; with `full`, then render every
    object that has a preview on display at full resolution. Returns requests run."""
    ran = 0
    while True:
        with _lock:
            if not _pending:
                break
            uid, request = next(iter(_pending.items()))
            del _pending[uid]
        _run(request)
        ran += 1
        apply_results()
    if full:
        for uid in state.uids():
            if state.get(uid).full_due is not None and _queue_full(uid):
                ran += flush(False)
    return ran


# -- applying results (main thread) -------------------------------------------------------------
def _find_root(uid: str) -> bpy.types.Object | None:
    return next((ob for ob in bpy.data.objects if ob.uplift.role == "ROOT" and ob.uplift.uid == uid), None)


def _redraw_views() -> None:
    """Background images changed: ask every 3D view to draw again."""
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def apply_results() -> int:
    """Write finished results back to Blender; returns how many were applied."""
    global _guard
    with _lock:
        results = list(_results)
        _results.clear()
    applied = 0
    for request, result, error in results:
        if error is not None:
            last_error["text"] = error
            continue
        session = state.get(request.uid)
        root = _find_root(request.uid)
        if session is None or root is None or request.generation < session.applied_generation:
            continue
        session.applied_generation = request.generation
        last_error["text"] = ""
        _guard = True
        try:
            _apply(root, session, result)
            applied += 1
        finally:
            _guard = False
    return applied


def _apply(root: bpy.types.Object, session: state.ObjectSession, result: state.LiveResult) -> None:
    from . import preferences

    if result.controls is not None and session.written is not None:
        written = session.written
        # Plain lists: Blender converts them about 4x faster than numpy rows (512 controls: 2.6 -> 0.6 ms).
        locations = result.controls.tolist()
        rotations = result.rotations.tolist() if result.rotations is not None else None
        for i, ob in scene_io.controls_of(root).items():
            if i >= len(locations):
                continue
            if not ob.uplift.pinned and not scene_io.is_keyed(ob):  # never over a handle or an animated channel
                ob.location = locations[i]
                written[i] = np.float32(locations[i])  # what Blender stores, so the next compare is exact
            else:
                written[i] = ob.location
            if rotations is not None:
                ob.rotation_quaternion = rotations[i]
    from . import splat_draw

    proxy = scene_io.proxy_of(root)
    native = native_splats.is_native(proxy)
    # On 5.3+ Blender shows the native splats; the GLSL draw only needs an object with a photo (camera view).
    if result.posed is not None and (not native or session.photo is not None):
        splat_draw.show(root.uplift.uid, result.posed, result.splat_planes, result.pose_version, session.photo,
                        result.photo_planes, native=native)
    request = result.request
    delay = preferences.get().full_render_delay
    if result.rgba is not None:
        show_render(root, result.rgba)
        session.full_due = time.monotonic() + delay if request.scale < 1.0 else None
    elif request.gpu_camera:
        hide_render(root)  # a stale preview image in front would cover the GPU draw
        if request.solve and request.mode != "batch":  # after a pause, converge (no render needed);
            session.full_due = time.monotonic() + delay  # a view-only result keeps a pending one
    if native:  # Blender 5.3+: the native splats are what every view shows
        # A view-only result (a turn of the viewport, a full render) carries the pose already
        # written: rewriting 300k splats is 1-20 ms for nothing. Undo or a reload gives new cloud data.
        written = (result.pose_version, proxy.data.as_pointer())
        if session.native_written != written:
            posed = result.native_pose
            if posed is None and result.posed is not None:
                from ..core.native_splats import posed_attributes

                posed = posed_attributes(result.posed)
            if posed is not None and native_splats.write_pose(proxy, posed):
                session.native_written = written
    # While the splats are drawn the point proxy is hidden: a drag leaves its points alone (3 ms a
    # pose at 20k) as long as a later full or converged pass is due, which brings them up to date.
    elif not (splat_draw.shows(root.uplift.uid) and session.full_due is not None):
        if proxy is not None and proxy.type == "MESH" and len(proxy.data.vertices) == len(result.means):
            proxy.data.vertices.foreach_set("co", np.ascontiguousarray(result.means, dtype=np.float32).ravel())
            proxy.data.update()


def show_render(root: bpy.types.Object, rgba: np.ndarray) -> bpy.types.Image:
    """Put a render of `root` in front of the camera view."""
    image = images.show_rgba(f"Uplift Render {root.name}", rgba, root.uplift.render_image)
    image["uplift_uid"] = root.uplift.uid
    root.uplift.render_image = image
    for scene in root.users_scene:
        try:
            cam = scene_io.scene_camera(scene)
        except UpliftError:
            continue
        images.camera_layer(cam.data, image, front=True)
    return image


def hide_render(root: bpy.types.Object) -> None:
    """Take the render layer of `root` out of the camera view (the GPU draw shows it there)."""
    image = root.uplift.render_image
    if image is None:
        return
    for scene in root.users_scene:
        try:
            cam = scene_io.scene_camera(scene)
        except UpliftError:
            continue
        images.remove_camera_layer(cam.data, image)


# -- file / undo events ----------------------------------------------------------------------------
def _forget_all() -> None:
    from . import splat_draw

    with _lock:
        _pending.clear()
        _results.clear()
    _dirty.clear()
    _views.clear()
    state.clear()
    splat_draw.forget(restore_proxies=False)  # a new file (or undo step): its poses are uploaded afresh


@persistent
def on_load_post(*_args) -> None:
    """A new file: forget every session, then render its lifted objects afresh (render images
    are not saved with pixels)."""
    _forget_all()
    native_splats.upgrade_file()  # a file saved before Blender 5.3: point proxies -> native splats
    scene = bpy.context.scene
    if scene is not None and hasattr(scene, "uplift") and scene_io.roots(scene):
        refresh(scene)


@persistent
def on_undo_redo(scene, *_args) -> None:
    """Undo restored empties and pins: take them as they now are and re-solve."""
    with _lock:
        _pending.clear()
        _results.clear()
    for uid in state.uids():
        session = state.get(uid)
        root = _find_root(uid)
        if root is None or session.written is None:
            state.drop(uid)
            continue
        present, _pinned, locations = scene_io.control_snapshot(root, len(session.written))
        session.written[present] = locations[present]
        session.solved_key = b""
        session.needs_restore = True
        session.applied_generation = session.generation
        mark_dirty(uid)
    if scene is not None and hasattr(scene, "uplift"):
        forget_deleted(scene)


_HANDLERS = (
    (bpy.app.handlers.depsgraph_update_post, on_depsgraph_update),
    (bpy.app.handlers.load_post, on_load_post),
    (bpy.app.handlers.undo_post, on_undo_redo),
    (bpy.app.handlers.redo_post, on_undo_redo),
)


def _is_ours(fn) -> bool:
    return getattr(fn, "__module__", "") == __name__


def _report_draw_failure(text: str) -> None:
    last_error["text"] = text


def register() -> None:
    from . import splat_draw

    unregister()  # drop leftovers of an earlier, unclean load of this module
    for handler_list, fn in _HANDLERS:
        handler_list.append(fn)
    splat_draw.live_loop.update(report=_report_draw_failure, refresh=refresh)


def unregister() -> None:
    global _worker
    for handler_list, _fn in _HANDLERS:
        for fn in [f for f in handler_list if _is_ours(f)]:
            handler_list.remove(fn)
    if bpy.app.timers.is_registered(_drain):
        bpy.app.timers.unregister(_drain)
    _stop.set()
    _wake.set()
    if _worker is not None:
        _worker.join(timeout=5.0)
        _worker = None
    _forget_all()
