"""Gaussian splats drawn by the GPU through Blender's `gpu` module: offscreen renders (the
'viewport' render backend) and a POST_VIEW draw handler showing every lifted object in
every 3D view, depth-tested against Blender's depth buffer.

The bpy-free half (texture planes, sort, view maths) is `core/splat_pack.py`; the
GLSL is `splat_shader.py`. The live loop hands each posed set over with `show()` (planes
packed on the worker thread, uploaded here on the main thread); each view re-sorts on the
CPU when the object deformed or the view turned (`ViewState`). Where the GPU cannot draw
(`unavailable_reason()`), nothing is registered and the point proxy remains.
"""
from __future__ import annotations

import atexit

import numpy as np

from ..core.errors import RenderBackendError
from ..core import splat_pack
from ..core.splat_pack import PLANES, SplatView, ViewState

MAX_VIEWS = 8  # per object: sorted orders kept for this many 3D views (oldest dropped)

_shader = None
_quad = None


# -- GPU availability and the shader ---------------------------------------------------------
def unavailable_reason() -> str | None:
    """None when GPU drawing works in this process, else why not (one line)."""
    try:
        import bpy
        import gpu
    except ImportError as exc:
        return f"the GPU splat draw needs Blender's bpy and gpu modules ({exc})"
    if bpy.app.background:
        if not hasattr(gpu, "init"):
            return f"Blender {bpy.app.version_string} cannot draw with the GPU in background mode (5.2 can)"
        try:
            gpu.init()
        except Exception as exc:  # SystemError/RuntimeError from the GPU backend: report, never raise
            return f"Blender's GPU module did not start in background mode: {exc}"
    return None


def require_gpu() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise RenderBackendError(reason)


def shader():
    """The splat shader, compiled once per process."""
    global _shader
    if _shader is not None:
        return _shader
    import gpu

    from . import splat_shader

    info = gpu.types.GPUShaderCreateInfo()
    for name, value in splat_shader.defines().items():
        info.define(name, value)
    info.push_constant("MAT4", "view_model")
    info.push_constant("VEC4", "intrinsics")   # fx, fy, cx, cy
    info.push_constant("VEC4", "fov_limits")   # x/z min, max, y/z min, max
    info.push_constant("VEC4", "image")        # width, height, depth a, depth b
    info.push_constant("IVEC4", "options")     # ortho, depth pass, -, -
    info.sampler(0, "FLOAT_2D", "order_tex")
    for slot, plane in enumerate(PLANES, start=1):
        info.sampler(slot, "FLOAT_2D", f"{plane}_tex")
    info.vertex_in(0, "VEC2", "corner")
    iface = gpu.types.GPUStageInterfaceInfo("uplift_splat_iface")
    iface.smooth("VEC2", "v_offset")
    iface.flat("VEC3", "v_conic")
    iface.flat("VEC4", "v_color")
    info.vertex_out(iface)
    info.fragment_out(0, "VEC4", "frag_color")
    info.vertex_source(splat_shader.VERTEX)
    info.fragment_source(splat_shader.FRAGMENT)
    _shader = gpu.shader.create_from_info(info)
    return _shader


def _quad_batch():
    global _quad
    if _quad is None:
        from gpu_extras.batch import batch_for_shader

        corners = [(-1, -1), (1, -1), (1, 1), (-1, -1), (1, 1), (-1, 1)]
        _quad = batch_for_shader(shader(), "TRIS", {"corner": corners})
    return _quad


def _texture(data: np.ndarray, channels: int):
    """An RGBA32F (channels 4) or R32F (channels 1) texture of TEX_WIDTH columns from a float32 array."""
    import gpu

    flat = np.ascontiguousarray(data, dtype=np.float32).reshape(-1)
    rows = flat.size // (channels * splat_pack.TEX_WIDTH)
    buf = gpu.types.Buffer("FLOAT", flat.size, flat)  # wraps the array's memory: no copy, no tolist
    return gpu.types.GPUTexture((splat_pack.TEX_WIDTH, rows), format="RGBA32F" if channels == 4 else "R32F",
                                data=buf)


def order_texture(order: np.ndarray):  # [N] back-to-front indices -> R32F texture
    return _texture(splat_pack.order_plane(order), 1)


# -- GPU-side splat set -------------------------------------------------------------------------
class SplatTextures:
    """The planes of one splat set on the GPU plus a draw order."""

    def __init__(self, count: int):
        self.count = count
        self.planes: dict[str, object] = {}
        self.order = None

    def upload(self, planes: dict[str, np.ndarray]) -> None:
        for name, data in planes.items():
            if name not in PLANES:
                raise ValueError(f"unknown splat plane {name!r}")
            self.planes[name] = _texture(data, 4)

    def upload_order(self, order: np.ndarray) -> None:  # [count] back-to-front indices
        self.order = order_texture(order)

    def draw(self, view: SplatView, order=None, color=None, depth_pass: bool = False) -> None:
        """Draw into the bound framebuffer with the current GPU state; `order` and `color`:
        a view's own order and 'color' textures instead of the shared ones."""
        from mathutils import Matrix

        from ..core.render.projection import fov_limits

        order = self.order if order is None else order
        if self.count == 0 or order is None:
            return
        sh = shader()
        sh.bind()
        fx, fy, cx, cy = view.intrinsics
        K = ((fx, 0.0, cx), (0.0, fy, cy), (0.0, 0.0, 1.0))
        sh.uniform_float("view_model", Matrix(view.view_model.tolist()))
        sh.uniform_float("intrinsics", (fx, fy, cx, cy))
        sh.uniform_float("fov_limits", fov_limits(view.width, view.height, K))
        sh.uniform_float("image", (float(view.width), float(view.height), *view.depth_ab))
        sh.uniform_int("options", (int(view.ortho), int(depth_pass), 0, 0))
        sh.uniform_sampler("order_tex", order)
        for name in PLANES:
            tex = color if name == "color" and color is not None else self.planes.get(name)
            if tex is None:
                raise RenderBackendError(f"splat plane {name!r} was never uploaded")
            sh.uniform_sampler(f"{name}_tex", tex)
        _quad_batch().draw_instanced(sh, instance_start=0, instance_count=self.count)


def _offscreen(width: int, height: int, draw, passes: int) -> list[np.ndarray]:
    """Run `draw(pass_index)` into a cleared RGBA32F offscreen per pass; the images read
    back as [H, W, 4] float32, top row first."""
    import gpu

    require_gpu()
    limit = gpu.capabilities.max_texture_size_get()
    if max(width, height) > limit:
        raise RenderBackendError(f"the viewport renderer draws at most {limit} pixels a side, got {width}x{height}")
    offscreen = gpu.types.GPUOffScreen(width, height, format="RGBA32F")
    images = []
    try:
        with offscreen.bind():
            fb = gpu.state.active_framebuffer_get()
            gpu.state.depth_test_set("NONE")
            gpu.state.depth_mask_set(False)
            gpu.state.blend_set("ALPHA_PREMULT")
            for index in range(passes):
                fb.clear(color=(0.0, 0.0, 0.0, 0.0))
                draw(index)
                # GL rows run bottom-up; image rows top-down.
                images.append(np.asarray(fb.read_color(0, 0, width, height, 4, 0, "FLOAT"))[::-1].copy())
            gpu.state.blend_set("NONE")
    finally:
        offscreen.free()
    return images


def render_offscreen(gaussians, camera, depth: bool = True, features=None):
    """Render `gaussians` (world frame) through `camera` (core.camera.Camera) offscreen.
    Returns numpy (color [H, W, 3 (+ F)] premultiplied, alpha [H, W], depth_sum [H, W] or None),
    the same sums the other backends return. `features` [N, F]: the photo reprojection's
    per-splat channels (`reprojection.photo_features`, column 0 the photo's weight u): the
    colour is scaled by 1 - u, as the torch renderer does, and each three feature channels
    are composited by one more pass with that plane in place of the colours."""
    require_gpu()
    view = SplatView.from_camera(camera)
    splats = SplatTextures(len(gaussians))
    planes = splat_pack.pack_geometry(gaussians)
    planes["color"] = splat_pack.pack_color(gaussians, view.eye)
    extra = []
    if features is not None:
        features = np.asarray(features, dtype=np.float32)
        planes["color"][:len(gaussians), :3] *= 1.0 - features[:, :1]
        extra = [_texture(plane, 4) for plane in splat_pack.feature_planes(features)]
    splats.upload(planes)
    means = gaussians.means.detach().cpu().numpy()
    splats.upload_order(splat_pack.back_to_front(splat_pack.camera_depths(means, view.view_model)))
    passes = [lambda: splats.draw(view)]
    if depth:
        passes.append(lambda: splats.draw(view, depth_pass=True))
    passes += [lambda tex=tex: splats.draw(view, color=tex) for tex in extra]
    images = _offscreen(view.width, view.height, lambda i: passes[i](), len(passes))
    color = images[0][..., :3]
    if extra:
        f = features.shape[1]
        color = np.concatenate([color] + [image[..., :3] for image in images[1 + depth:]], -1)[..., :3 + f]
    return color, images[0][..., 3], (images[1][..., 0] if depth else None)


def render_shown(uid: str, camera, model=None) -> np.ndarray:
    """What the draw handler shows of object `uid` through `camera`, with the object's world
    matrix `model` (identity by default): [H, W, 4] premultiplied RGBA. The same per-view
    path as a 3D view (cached order, re-sort rules), drawn offscreen: for tests and scripts."""
    drawn = _objects.get(uid)
    if drawn is None:
        raise RenderBackendError(f"no splats are shown for object {uid!r}")
    view = SplatView.from_camera(camera, model)
    return _offscreen(view.width, view.height, lambda _i: drawn.draw(("offscreen", uid), view), 1)[0]


# -- the 3D view draw handler -----------------------------------------------------------------------
class _ViewCache:
    def __init__(self):
        self.state = ViewState()
        self.order = None  # this view's back-to-front order texture
        self.color = None  # per-view colour texture (SH degree > 0) or None: the shared plane


class _DrawnObject:
    def __init__(self, uid: str, gaussians, planes: dict[str, np.ndarray], version: int):
        self.uid = uid
        self.gaussians = gaussians  # posed, object-local (torch)
        self.means = gaussians.means.detach().cpu().numpy()
        self.view_dependent = gaussians.sh_degree > 0
        self.version = version
        self.textures = SplatTextures(len(gaussians))
        self.textures.upload(planes)
        if not self.view_dependent:
            self.textures.upload({"color": splat_pack.pack_color(gaussians, np.zeros(3))})
        self.views: dict[object, _ViewCache] = {}  # by 3D view (its region_data pointer)

    def update(self, gaussians, planes: dict[str, np.ndarray], version: int) -> None:
        """A new pose: only the geometry planes go to the GPU; every view re-sorts on its next draw."""
        self.gaussians, self.means, self.version = gaussians, gaussians.means.detach().cpu().numpy(), version
        self.textures.upload({k: planes[k] for k in splat_pack.GEOMETRY_PLANES})

    def draw(self, key, view: SplatView) -> None:
        cache = self.views.pop(key, None) or _ViewCache()
        self.views[key] = cache  # most recent last
        while len(self.views) > MAX_VIEWS:
            self.views.pop(next(iter(self.views)))
        if cache.order is None or cache.state.needs_sort(view, self.version):
            depths = splat_pack.camera_depths(self.means, view.view_model)
            cache.order = order_texture(splat_pack.back_to_front(depths))
            cache.state.sorted_for(view, self.version)
        if self.view_dependent:
            distance = float(np.linalg.norm(view.eye - self.means.mean(0))) if len(self.means) else 1.0
            if cache.color is None or cache.state.needs_color(view, self.version, distance):
                cache.color = _texture(splat_pack.pack_color(self.gaussians, view.eye), 4)
                cache.state.colored_for(view)
        self.textures.draw(view, order=cache.order, color=cache.color)


_objects: dict[str, _DrawnObject] = {}
_handle = None
off_reason = {"text": ""}  # why GPU drawing is off ("" while on)


def active() -> bool:
    """The draw handler is registered (GPU drawing on)."""
    return _handle is not None


# Objects whose camera-view preview image reprojects the photo: the live draw does not reproject
# yet, so it leaves the view through the scene camera to that image (the look the export has).
_reprojected_in_camera: set[str] = set()


def show(uid: str, gaussians, planes: dict[str, np.ndarray] | None, version: int,
         reprojected_in_camera: bool = False) -> None:
    """The live loop's hand-off after each LBS: posed Gaussians (object-local) and their packed
    geometry planes (None: pack here). Main thread only (GPU uploads)."""
    if not active():
        return
    if reprojected_in_camera:
        _reprojected_in_camera.add(uid)
    else:
        _reprojected_in_camera.discard(uid)
    drawn = _objects.get(uid)
    if drawn is not None and drawn.version == version and len(drawn.means) == len(gaussians):
        return  # same pose (a camera-only update)
    planes = planes if planes is not None else splat_pack.pack_geometry(gaussians)
    if drawn is None or len(drawn.means) != len(gaussians):
        _objects[uid] = _DrawnObject(uid, gaussians, planes, version)
        _show_proxy(uid, False)  # the splats replace the point proxy while they are drawn
    else:
        drawn.update(gaussians, planes, version)


def forget(uid: str | None = None, restore_proxies: bool = True) -> list[str]:
    """Drop one object's (or, with None, every object's) GPU data; its point proxy shows
    again unless `restore_proxies` is off. Returns the uids dropped."""
    dropped = [key for key in (list(_objects) if uid is None else [uid]) if _objects.pop(key, None) is not None]
    _reprojected_in_camera.difference_update(dropped)
    if restore_proxies:
        for key in dropped:
            _show_proxy(key, True)
    return dropped


def _show_proxy(uid: str, visible: bool) -> None:
    """Switch the point proxy's viewport display (its point-drawing modifier) of object `uid`."""
    import bpy

    objects = getattr(bpy.data, "objects", None)  # absent while Blender restricts data access
    for ob in objects or ():
        props = getattr(ob, "uplift", None)
        if props is not None and props.role == "PROXY" and props.uid == uid:
            for modifier in ob.modifiers:
                if modifier.type == "NODES" and modifier.show_viewport != visible:
                    modifier.show_viewport = visible


def _restore_proxies_later(uids: list[str]) -> None:
    import bpy

    def restore() -> None:
        for uid in uids:
            _show_proxy(uid, True)

    bpy.app.timers.register(restore, first_interval=0.0)


def _roots_by_uid(context) -> dict:
    """The lifted objects' roots visible in the drawing view layer, by uid."""
    view_layer = context.view_layer
    return {ob.uplift.uid: ob for ob in view_layer.objects
            if ob.uplift.role == "ROOT" and ob.visible_get(view_layer=view_layer)}


def _draw_view() -> None:
    """POST_VIEW callback: every lifted object visible in this view, depth-tested, no depth writes."""
    import bpy
    import gpu

    context = bpy.context
    region, rv3d = context.region, context.region_data
    if not _objects or region is None or rv3d is None:
        return
    try:
        roots = _roots_by_uid(context)
        through_camera = rv3d.view_perspective == "CAMERA"
        gpu.state.depth_test_set("LESS_EQUAL")
        gpu.state.depth_mask_set(False)
        gpu.state.blend_set("ALPHA_PREMULT")
        for uid, drawn in list(_objects.items()):
            root = roots.get(uid)
            if root is None or (through_camera and uid in _reprojected_in_camera):
                continue
            view = SplatView.from_blender(rv3d.view_matrix, rv3d.window_matrix, region.width, region.height,
                                          np.array(root.matrix_world, dtype=np.float64))
            drawn.draw(rv3d.as_pointer(), view)
    except Exception as exc:  # a draw callback must never raise into Blender's draw loop
        from . import handlers

        handlers.last_error["text"] = f"splat drawing failed: {exc}"
        _restore_proxies_later(forget(restore_proxies=False))  # no data writes while drawing
    finally:
        gpu.state.blend_set("NONE")
        gpu.state.depth_test_set("NONE")


def register() -> str | None:
    """Add the draw handler where the GPU can draw. Returns None, or why drawing stays off."""
    global _handle
    import bpy

    from . import state

    unregister()
    reason = unavailable_reason()
    if reason is None:
        _handle = bpy.types.SpaceView3D.draw_handler_add(_draw_view, (), "WINDOW", "POST_VIEW")
        state.pack_splat_planes = True
    off_reason["text"] = reason or ""
    return reason


def release(restore_proxies: bool = True) -> None:
    """Free every GPU object this module holds (also at exit: GPU textures that outlive
    Blender's GPU context crash the process on the way out)."""
    global _shader, _quad
    forget(restore_proxies=restore_proxies)
    _shader = _quad = None


atexit.register(release, restore_proxies=False)


def unregister() -> None:
    global _handle
    import bpy

    from . import state

    state.pack_splat_planes = False
    if _handle is not None:
        bpy.types.SpaceView3D.draw_handler_remove(_handle, "WINDOW")
        _handle = None
    release()
