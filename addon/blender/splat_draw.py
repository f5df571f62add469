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

# The live loop's hooks, filled by `handlers.register` (this module does not import handlers):
# report(text) shows a draw failure in the panel, refresh(scene) queues fresh renders.
live_loop = {"report": lambda text: None, "refresh": lambda scene: None}

_shader = None
_quad = None
_resolve_shader = None
_share_shader = None
_screen_quad = None


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


def resolve_shader():
    """The photo resolve of the camera view (`splat_shader.RESOLVE_FRAGMENT`), compiled once."""
    global _resolve_shader
    if _resolve_shader is None:
        from . import splat_shader

        _resolve_shader = _screen_shader(
            splat_shader.RESOLVE_FRAGMENT, ("lifted", "feature_a", "feature_b", "feature_c", "photo", "share"),
            (("VEC4", "sizes"),       # photo width, height, region height, -
             ("VEC4", "pixel_map"),   # view pixel -> the features' camera pixel: p * xy + zw
             ("VEC2", "depth_ab")))   # camera z -> NDC depth a + b / z
    return _resolve_shader


def share_shader():
    """The photo share passes of the camera view (`splat_shader.SHARE_FRAGMENT`), compiled once."""
    global _share_shader
    if _share_shader is None:
        from . import splat_shader

        _share_shader = _screen_shader(splat_shader.SHARE_FRAGMENT, ("lifted", "feature_a", "share"),
                                       (("INT", "share_step"),))
    return _share_shader


def _screen_shader(fragment: str, textures, constants):
    """A full-screen pass over the view's sums with the resolve's constants."""
    import gpu

    from . import splat_shader

    info = gpu.types.GPUShaderCreateInfo()
    for name, value in splat_shader.resolve_defines().items():
        info.define(name, value)
    for kind, name in constants:
        info.push_constant(kind, name)
    for slot, name in enumerate(textures):
        info.sampler(slot, "FLOAT_2D", f"{name}_tex")
    info.vertex_in(0, "VEC2", "corner")
    info.fragment_out(0, "VEC4", "frag_color")
    info.vertex_source(splat_shader.RESOLVE_VERTEX)
    info.fragment_source(fragment)
    return gpu.shader.create_from_info(info)


def _corner_batch(program):
    """Two triangles over the corners (-1, -1)..(1, 1): a splat's quad or the whole screen."""
    from gpu_extras.batch import batch_for_shader

    corners = [(-1, -1), (1, -1), (1, 1), (-1, -1), (1, 1), (-1, 1)]
    return batch_for_shader(program, "TRIS", {"corner": corners})


def _quad_batch():
    global _quad
    if _quad is None:
        _quad = _corner_batch(shader())
    return _quad


def _screen_quad_batch():
    global _screen_quad
    if _screen_quad is None:
        _screen_quad = _corner_batch(resolve_shader())
    return _screen_quad


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


def render_shown(uid: str, camera, model=None, through_camera: bool = False) -> np.ndarray:
    """What the draw handler shows of object `uid` through `camera`, with the object's world
    matrix `model` (identity by default): [H, W, 4] premultiplied RGBA. The same per-view
    path as a 3D view (cached order, re-sort rules), drawn offscreen: for tests and scripts.
    `through_camera`: as the scene camera's view (the photo reprojected, where there is one)."""
    drawn = _objects.get(uid)
    if drawn is None:
        raise RenderBackendError(f"no splats are shown for object {uid!r}")
    view = SplatView.from_camera(camera, model)
    return _offscreen(view.width, view.height,
                      lambda _i: drawn.draw(("offscreen", uid), view, through_camera, model), 1)[0]


# -- the 3D view draw handler -----------------------------------------------------------------------
class _ViewCache:
    def __init__(self):
        self.state = ViewState()
        self.order = None  # this view's back-to-front order texture
        self.color = None  # per-view colour texture (SH degree > 0) or None: the shared plane
        self.photo = None  # _PhotoView of the camera view with a photo


class _PhotoView:
    """The photo reprojection of one camera view: the planes (`splat_pack.PhotoPlanes`, from
    the live loop's worker when it made them for this pose, else here) on the GPU, the map from
    this view's pixels to the planes' camera pixels, and region-sized targets for the passes'
    sums, which stay valid (`summed`) until the view or the pose changes.

    The targets are plain textures in framebuffers, not GPUOffScreen: creating an offscreen
    binds the context's default framebuffer (Blender's GPU_offscreen_create ends with
    GPU_framebuffer_restore), so made inside a draw it sent the resolve and everything drawn
    after it to that framebuffer instead of the view's. Textures and framebuffers leave the
    binding alone, and each pass's `bind()` rebinds the caller's framebuffer on exit."""

    def __init__(self, key: tuple, planes: splat_pack.PhotoPlanes, pixel_map: tuple, width: int, height: int):
        import gpu

        self.key, self.pixel_map, self.summed = key, pixel_map, False
        self.colors = [_texture(planes.color, 4)] + [_texture(plane, 4) for plane in planes.features]
        self.sums = [gpu.types.GPUTexture((width, height), format="RGBA32F") for _ in self.colors]
        self.targets = [gpu.types.GPUFrameBuffer(color_slots=texture) for texture in self.sums]
        # The photo share (`share_shader`'s three steps, ping-ponged; the last lands in shares[0]).
        self.shares = [gpu.types.GPUTexture((width, height), format="R32F") for _ in range(2)]
        self.share_targets = [gpu.types.GPUFrameBuffer(color_slots=texture) for texture in self.shares]


main_thread_features = {"count": 0}  # photo_features calls made while drawing (the worker's planes did not fit)


def _photo_view(drawn: "_DrawnObject", cache: _ViewCache, view: SplatView, model) -> "_PhotoView":
    # Planes made here or by the worker for this pose and view give the same image: no re-make when
    # the worker's arrive later.
    key = (drawn.version, id(drawn.photo), view.view_model.tobytes(), view.intrinsics, view.width, view.height)
    if cache.photo is not None and cache.photo.key == key:
        return cache.photo
    cache.photo = None  # its GPU memory goes with the last reference
    planes = drawn.photo_planes
    pixel_map = None if planes is None else planes.pixel_map(view)
    if pixel_map is None:  # no worker planes for this pose (camera moved, not yet updated): make them here
        from ..core.camera import Camera

        model = np.eye(4) if model is None else np.asarray(model, dtype=np.float64)
        fx, fy, cx, cy = view.intrinsics
        world_to_camera = view.view_model @ np.linalg.inv(model)
        camera = Camera(view.width, view.height, np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]), world_to_camera)
        planes = splat_pack.photo_planes(drawn.gaussians, model, camera, drawn.photo)
        pixel_map = (1.0, 1.0, 0.0, 0.0)
        main_thread_features["count"] += 1
    cache.photo = _PhotoView(key, planes, pixel_map, view.width, view.height)
    return cache.photo


class _DrawnObject:
    def __init__(self, uid: str, gaussians, planes: dict[str, np.ndarray], version: int, photo=None,
                 photo_planes=None):
        self.uid = uid
        self.native = False  # Blender shows it (native splat cloud): drawn here only through the camera with a photo
        self.photo = photo  # core.render.reprojection.PhotoSource (object-local) or None
        self.photo_planes = photo_planes  # splat_pack.PhotoPlanes of this pose through the scene camera, or None
        self._photo_texture = None
        self.gaussians = gaussians  # posed, object-local (torch)
        self.means = gaussians.means.detach().cpu().numpy()
        self.centre = self.means.mean(0) if len(self.means) else np.zeros(3)  # SH colours: eye distance to this
        self.view_dependent = gaussians.sh_degree > 0
        self.version = version
        self.textures = SplatTextures(len(gaussians))
        self.textures.upload(planes)
        if not self.view_dependent:
            self.textures.upload({"color": splat_pack.pack_color(gaussians, np.zeros(3))})
        self.views: dict[object, _ViewCache] = {}  # by 3D view (its region_data pointer)

    def update(self, gaussians, planes: dict[str, np.ndarray], version: int, photo=None, photo_planes=None) -> None:
        """A new pose: only the geometry planes go to the GPU; every view re-sorts on its next draw."""
        self.gaussians, self.means, self.version = gaussians, gaussians.means.detach().cpu().numpy(), version
        self.centre = self.means.mean(0) if len(self.means) else np.zeros(3)
        self.textures.upload({k: planes[k] for k in splat_pack.GEOMETRY_PLANES})
        self.use_photo(photo, photo_planes)

    def use_photo(self, photo, photo_planes=None) -> None:
        if photo is not self.photo:
            self.photo, self._photo_texture = photo, None
        self.photo_planes = photo_planes if photo is not None else None

    def draw(self, key, view: SplatView, through_camera: bool = False, model=None) -> None:
        """Draw into the bound framebuffer; `through_camera`: this is the scene camera's view,
        where an object with a photo shows it reprojected (`draw_photo`); `model`: the object's
        world matrix (identity by default), for photo planes made here."""
        cache = self.views.pop(key, None) or _ViewCache()
        self.views[key] = cache  # most recent last
        while len(self.views) > MAX_VIEWS:
            self.views.pop(next(iter(self.views)))
        if cache.order is None or cache.state.needs_sort(view, self.version):
            depths = splat_pack.camera_depths(self.means, view.view_model)
            cache.order = order_texture(splat_pack.back_to_front(depths))
            cache.state.sorted_for(view, self.version)
        if self.view_dependent:
            distance = float(np.linalg.norm(view.eye - self.centre)) if len(self.means) else 1.0
            if cache.color is None or cache.state.needs_color(view, self.version, distance):
                cache.color = _texture(splat_pack.pack_color(self.gaussians, view.eye), 4)
                cache.state.colored_for(view)
        if through_camera and self.photo is not None and not view.ortho:
            self.draw_photo(cache, view, model)
        else:
            self.textures.draw(view, order=cache.order, color=cache.color)

    def draw_photo(self, cache: _ViewCache, view: SplatView, model=None) -> None:
        """The colour and feature passes into the view's targets (once per view and pose), then
        the per-pixel resolve over the bound framebuffer with the caller's depth test: the
        resolve writes each pixel's expected depth, so Blender's depth buffer (meshes) hides it
        where a surface is nearer."""
        import gpu

        photo_view = _photo_view(self, cache, view, model)
        if self._photo_texture is None:
            image = np.ascontiguousarray(self.photo.sampled_image().numpy(), dtype=np.float32)
            rgba = np.concatenate((image, np.ones_like(image[..., :1])), -1)
            buf = gpu.types.Buffer("FLOAT", rgba.size, rgba.reshape(-1))
            # Half floats: within 1/4 of an 8-bit level, and a 12 MP photo takes 96 MB of GPU memory, not 192.
            self._photo_texture = gpu.types.GPUTexture((image.shape[1], image.shape[0]), format="RGBA16F", data=buf)
            self._photo_texture.filter_mode(True)
        depth_test = gpu.state.depth_test_get()
        if not photo_view.summed:
            for target, color in zip(photo_view.targets, photo_view.colors):
                with target.bind():  # back to the caller's framebuffer on exit
                    gpu.state.viewport_set(0, 0, view.width, view.height)
                    gpu.state.depth_test_set("NONE")
                    gpu.state.blend_set("ALPHA_PREMULT")
                    target.clear(color=(0.0, 0.0, 0.0, 0.0))
                    self.textures.draw(view, order=cache.order, color=color)
            sh = share_shader()
            for step, (source, target) in enumerate(((1, 0), (0, 1), (1, 0))):
                with photo_view.share_targets[target].bind():
                    gpu.state.viewport_set(0, 0, view.width, view.height)
                    gpu.state.depth_test_set("NONE")
                    gpu.state.blend_set("NONE")
                    sh.bind()
                    sh.uniform_int("share_step", step)
                    sh.uniform_sampler("lifted_tex", photo_view.sums[0])
                    sh.uniform_sampler("feature_a_tex", photo_view.sums[1])
                    sh.uniform_sampler("share_tex", photo_view.shares[source])
                    _screen_quad_batch().draw(sh)
            photo_view.summed = True
        sh = resolve_shader()
        sh.bind()
        sh.uniform_float("sizes", (float(self._photo_texture.width), float(self._photo_texture.height),
                                   float(view.height), 0.0))
        sh.uniform_float("pixel_map", photo_view.pixel_map)
        for name, texture in zip(("lifted", "feature_a", "feature_b", "feature_c"), photo_view.sums):
            sh.uniform_sampler(f"{name}_tex", texture)
        sh.uniform_sampler("photo_tex", self._photo_texture)
        sh.uniform_sampler("share_tex", photo_view.shares[0])
        sh.uniform_float("depth_ab", view.depth_ab)
        viewport = gpu.state.viewport_get()
        gpu.state.viewport_set(0, 0, view.width, view.height)  # gl_FragCoord indexes the sums' texels
        gpu.state.face_culling_set("NONE")
        gpu.state.depth_test_set(depth_test)
        gpu.state.blend_set("ALPHA_PREMULT")
        _screen_quad_batch().draw(sh)
        gpu.state.viewport_set(*viewport)


_objects: dict[str, _DrawnObject] = {}
_handle = None
off_reason = {"text": ""}  # why GPU drawing is off ("" while on)


# Whether 3D views are drawn (Blender with windows, not background mode): then the handler shows
# the objects in the scene camera's view (those with a photo reprojected), and the live loop
# makes their photo planes instead of the torch camera preview. Off headless (no views: the preview image is
# the live render's only output) and after a draw failure (the preview takes over).
camera_views = {"on": False}


def active() -> bool:
    """The draw handler is registered (GPU drawing on)."""
    return _handle is not None


def draws_camera_views() -> bool:
    """The draw handler shows the lifted objects through the scene camera, those with a photo
    reprojected: the torch camera preview is not needed (`handlers` then skips it)."""
    return _handle is not None and camera_views["on"]


def shows(uid: str) -> bool:
    """The splats of object `uid` are drawn (its point proxy is hidden)."""
    return _handle is not None and uid in _objects


def show(uid: str, gaussians, planes: dict[str, np.ndarray] | None, version: int, photo=None,
         photo_planes=None, native: bool = False) -> None:
    """The live loop's hand-off after each LBS: posed Gaussians (object-local) and their packed
    geometry planes (None: pack here); `photo`: the object's PhotoSource (rest and camera in
    the object's frame), reprojected in the scene camera's view; `photo_planes`: its
    splat_pack.PhotoPlanes for this pose through the scene camera, made on the worker (None:
    the draw makes them); `native`: Blender shows this object itself (a native splat cloud, 5.3+),
    so only its scene-camera view with the photo is drawn here. Main thread only (GPU uploads)."""
    if not active():
        return
    drawn = _objects.get(uid)
    if drawn is not None and drawn.version == version and len(drawn.means) == len(gaussians):
        drawn.use_photo(photo, photo_planes)  # same pose (a camera-only update); the photo may have just been read
    else:
        planes = planes if planes is not None else splat_pack.pack_geometry(gaussians)
        if drawn is None or len(drawn.means) != len(gaussians):
            _objects[uid] = _DrawnObject(uid, gaussians, planes, version, photo, photo_planes)
            _show_proxy(uid, False)  # the splats replace the point proxy while they are drawn
        else:
            drawn.update(gaussians, planes, version, photo, photo_planes)
    _objects[uid].native = native


def forget(uid: str | None = None, restore_proxies: bool = True) -> list[str]:
    """Drop one object's (or, with None, every object's) GPU data; its point proxy shows
    again unless `restore_proxies` is off. Returns the uids dropped."""
    dropped = [key for key in (list(_objects) if uid is None else [uid]) if _objects.pop(key, None) is not None]
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


def _fall_back_later(uids: list[str]) -> None:
    """After a draw failure: the point proxies show again and the camera view gets the torch
    preview back (a render of each object is queued). Later: no data writes while drawing."""
    import bpy

    from . import state

    camera_views["on"] = False
    for uid in uids:
        session = state.get(uid)
        if session is not None:
            session.view_key = b""  # the next collect queues a render

    def restore() -> None:
        for uid in uids:
            _show_proxy(uid, True)
        if bpy.context.scene is not None:
            live_loop["refresh"](bpy.context.scene)

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
            if root is None or (through_camera and not camera_views["on"]):
                continue  # after a draw failure the camera view shows the torch preview instead
            if drawn.native and not (through_camera and drawn.photo is not None):
                continue  # a native splat cloud shows the object; only the photo needs this draw
            model = np.array(root.matrix_world, dtype=np.float64)
            view = SplatView.from_blender(rv3d.view_matrix, rv3d.window_matrix, region.width, region.height, model)
            drawn.draw(rv3d.as_pointer(), view, through_camera, model)
    except Exception as exc:  # a draw callback must never raise into Blender's draw loop
        live_loop["report"](f"splat drawing failed: {exc}")
        _fall_back_later(forget(restore_proxies=False))
    finally:
        gpu.state.blend_set("NONE")
        gpu.state.depth_test_set("NONE")
        gpu.state.depth_mask_set(True)  # Blender's own drawing after us writes depth again


def provide_render_backend() -> None:
    """Make `core.render.render(..., backend='viewport')` draw with this module offscreen
    (`register` does it; `uplift render --backend viewport` calls it without registering)."""
    from ..core import render_backends as backends

    backends.provide("viewport", render_offscreen)


def register() -> str | None:
    """Provide the 'viewport' renderer and add the draw handler where the GPU can draw.
    Returns None, or why drawing stays off."""
    global _handle
    import bpy

    from . import state

    unregister()
    provide_render_backend()
    reason = unavailable_reason()
    if reason is None:
        _handle = bpy.types.SpaceView3D.draw_handler_add(_draw_view, (), "WINDOW", "POST_VIEW")
        state.pack_splat_planes = True
    camera_views["on"] = reason is None and not bpy.app.background
    off_reason["text"] = reason or ""
    return reason


def release(restore_proxies: bool = True) -> None:
    """Free every GPU object this module holds (also at exit: GPU textures that outlive
    Blender's GPU context crash the process on the way out)."""
    global _shader, _quad, _resolve_shader, _share_shader, _screen_quad
    forget(restore_proxies=restore_proxies)
    _shader = _quad = _resolve_shader = _share_shader = _screen_quad = None


atexit.register(release, restore_proxies=False)


def unregister() -> None:
    global _handle
    import bpy

    from ..core import render_backends as backends
    from . import state

    backends.withdraw("viewport")
    state.pack_splat_planes = False
    camera_views["on"] = False
    if _handle is not None:
        bpy.types.SpaceView3D.draw_handler_remove(_handle, "WINDOW")
        _handle = None
    release()
