"""Runtime state of each lifted object, keyed by its root empty's Uplift id.

Nothing here touches bpy: a `LiveRequest` is a snapshot the handler took from Blender
(handles, targets, root and camera), `ObjectSession.compute` turns it into a
`LiveResult` (deformed controls + render) on any thread, and the handler writes the
result back on Blender's main thread. Sessions are rebuilt lazily from the .blend
(see `scene_io.session_for`) after a reload, so this module may be cleared at any time.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class DeformSettings:
    """What a root was built with (stored on the root) plus per-session preferences."""
    control_count: int
    graph_neighbours: int
    skin_neighbours: int
    iterations: int = 3
    device: str = "auto"
    backend: str = "auto"

    def deform_config(self):
        """-> core.deformer.DeformConfig (the same controls for every deformer built from it)."""
        from ..core.deformer import DeformConfig

        return DeformConfig(num_controls=self.control_count, geodesic_k=self.graph_neighbours,
                            skin_k=self.skin_neighbours, iterations=self.iterations, device=self.device)


@dataclass(frozen=True)
class LiveRequest:
    uid: str
    handle_idx: np.ndarray    # [H] int64 control indices that are pinned
    targets: np.ndarray       # [H, 3] float64 their positions in the root's local frame
    root_matrix: np.ndarray   # [4, 4] the root's world matrix
    camera: object            # core.camera.Camera (full resolution) or None: no render
    scale: float              # render scale (preview < 1, full = 1)
    solve: bool               # the handles changed: run ARAP + LBS
    generation: int = 0       # increases with each request of a session; stale results are dropped
    mode: str = "interactive"  # ARAP: 'interactive' (a few warm-started iterations) or 'batch' (converge)
    # Instead of solving, re-skin from a pose read back from the empties (after undo or reopening):
    restore: tuple[np.ndarray, np.ndarray] | None = None  # ([M, 3] locations, [M, 4] wxyz rotations)
    # The GPU draw shows this object in the scene camera's view: no torch camera preview; for an
    # object with a photo the worker makes its photo planes for that camera (splat_pack.photo_planes).
    gpu_camera: bool = False


@dataclass
class LiveResult:
    request: LiveRequest
    controls: np.ndarray | None   # [M, 3] deformed control positions (local), None without controls
    rotations: np.ndarray | None  # [M, 4] wxyz ARAP rotation of each control, None without controls
    means: np.ndarray             # [N, 3] deformed Gaussian centres (local) for the proxy
    rgba: np.ndarray | None       # [h, w, 4] float32 straight alpha, None without a camera
    posed: object = None          # core.gaussians.Gaussians (local) of this pose, for the GPU splat draw
    pose_version: int = 0         # increases with each new pose of the session
    splat_planes: dict | None = None  # packed geometry planes (core.splat_pack), when drawing on
    photo_planes: object = None   # core.splat_pack.PhotoPlanes through the camera (request.gpu_camera)
    native_pose: dict | None = None  # core.native_splats.posed_attributes of this pose (Blender 5.3+)


# Set by blender.splat_draw while its draw handler is on: the worker then packs the splat
# geometry planes, so the main thread only uploads them.
pack_splat_planes = False
# Set on Blender 5.3+ (blender.native_splats): the worker also makes the flat attribute arrays of
# each pose, so the main thread only copies them into the native splat cloud.
pack_native_pose = False


def similarity_from_matrix(matrix: np.ndarray):
    """A root's world matrix [4, 4] -> core.transforms.Similarity (torch is imported lazily)."""
    from ..core.transforms import similarity_from_matrix as convert

    return convert(matrix)


@dataclass
class ObjectSession:
    uid: str
    gaussians: object                 # core.gaussians.Gaussians at rest, root-local frame
    settings: DeformSettings
    lock: threading.Lock = field(default_factory=threading.Lock)
    deformer: object = None           # core.deformer.Deformer, built on first use
    deformed: object = None           # Gaussians after the last solve (local)
    deformed_controls: np.ndarray | None = None  # [M, 3]
    control_rotations: np.ndarray | None = None  # [M, 4] wxyz
    written: np.ndarray | None = None  # [M, 3] control locations as Uplift last wrote them
    solved_key: bytes = b""           # handles + targets of the last solve
    view_key: bytes = b""             # root matrix + camera of the last render
    generation: int = 0
    applied_generation: int = -1
    full_due: float | None = None     # time.monotonic() when a full-resolution render is due
    converged: bool = False           # the last solve ran ARAP to convergence (batch)
    cold: bool = False                # pose restored without a solve: the solver has no warm start
    pose_version: int = 0             # increases with each solve or restore (the GPU draw re-uploads then)
    packed: tuple[int, dict] | None = None  # (pose_version, splat planes) packed last
    native_packed: tuple[int, dict] | None = None  # (pose_version, native splat attributes) made last
    native_written: tuple[int, int] | None = None  # (pose_version, cloud data pointer) written to Blender last
    needs_restore: bool = False       # rebuilt from the .blend or undone: re-skin from the empties' pose
    photo_input: tuple | None = None  # (photo uint8 [H, W, 3], its Camera in the root's frame); (): none; None: unread
    photo: object = None              # core.render.reprojection.PhotoSource, built on the first render
    handle_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # [H] of the last solve
    targets: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))               # [H, 3] of the last solve

    # Settings that shape the controls, graph and binding; the others (iterations, render
    # backend) are taken in place, keeping the deformer and the pose.
    STRUCTURAL = ("control_count", "graph_neighbours", "skin_neighbours", "device")

    def adopt(self, settings: DeformSettings) -> bool:
        """Take `settings` without a rebuild when only iterations or the render backend
        changed; False when the deformer must be rebuilt."""
        if any(getattr(settings, n) != getattr(self.settings, n) for n in self.STRUCTURAL):
            return False
        with self.lock:
            self.settings = settings
            if self.deformer is not None:
                self.deformer.config = dataclasses.replace(self.deformer.config, iterations=settings.iterations)
        return True

    # -- deformation ---------------------------------------------------------------
    def ensure_deformer(self):
        """Build the deformer (FPS controls, graph, skinning) on first use."""
        if self.deformer is None:
            from ..core.deformer import Deformer

            self.deformer = Deformer(self.gaussians, self.settings.deform_config())
        return self.deformer

    def rest_controls(self) -> np.ndarray:  # [M, 3]
        return self.ensure_deformer().controls.detach().cpu().double().numpy()

    def compute(self, req: LiveRequest) -> LiveResult:
        """Deform (when asked) and render one request. Thread-safe per session."""
        import torch

        from ..core.render import render

        with self.lock:
            has_controls = self.settings.control_count > 0 and self.deformer is not None
            if req.restore is not None and has_controls:
                self._restore(*req.restore)
            elif req.solve and has_controls:
                deformer = self.deformer
                self.handle_idx, self.targets = req.handle_idx, req.targets
                if len(req.handle_idx):
                    idx = torch.as_tensor(req.handle_idx, dtype=torch.long)
                    targets = torch.as_tensor(req.targets, dtype=torch.float32)
                    # After a restore the solver starts cold: converge, or the pose would jump.
                    mode = "batch" if self.cold else req.mode
                    self.deformed = deformer.update(idx, targets, mode)
                    self.converged, self.cold = mode == "batch", False
                    self.deformed_controls = deformer.deformed_controls.detach().cpu().double().numpy()
                    self.control_rotations = deformer.last_result.quaternions.detach().cpu().double().numpy()
                else:
                    self.deformed = deformer.reset()
                    self.deformed_controls = self.rest_controls()
                    self.control_rotations = np.tile([1.0, 0.0, 0.0, 0.0], (len(self.deformed_controls), 1))
            if req.restore is not None or req.solve:
                self.pose_version += 1
            current = self.deformed if self.deformed is not None else self.gaussians
            planes = self._splat_planes(current) if pack_splat_planes else None
            native_pose = self._native_pose(current) if pack_native_pose else None
            controls = self.deformed_controls if has_controls else None
            rgba = photo_planes = None
            if req.camera is not None and req.gpu_camera:
                photo = self.photo_source()
                if photo is not None:
                    from ..core.splat_pack import photo_planes as make_photo_planes

                    photo_planes = make_photo_planes(current, req.root_matrix, req.camera, photo)
            elif req.camera is not None:
                from ..core.transforms import apply_similarity

                world = apply_similarity(current, similarity_from_matrix(req.root_matrix))
                result = render(world, req.camera, backend=self.settings.backend, scale=req.scale,
                                photo=self.photo_source())
                rgba = np.clip(result.rgba.detach().cpu().numpy(), 0.0, 1.0)  # RGB may exceed 1 (as gsplat)
            means = current.means.detach().cpu().numpy()
        rotations = self.control_rotations if has_controls else None
        return LiveResult(req, None if controls is None else controls.copy(),
                          None if rotations is None else rotations.copy(), means, rgba,
                          current, self.pose_version, planes, photo_planes, native_pose)

    def _native_pose(self, current) -> dict:
        """The native splat attributes of the current pose, made once per pose."""
        if self.native_packed is None or self.native_packed[0] != self.pose_version:
            from ..core.native_splats import posed_attributes

            self.native_packed = (self.pose_version, posed_attributes(current))
        return self.native_packed[1]

    def _splat_planes(self, current) -> dict:
        """Geometry planes of the current pose, packed once per pose."""
        if self.packed is None or self.packed[0] != self.pose_version:
            from ..core.splat_pack import pack_geometry

            self.packed = (self.pose_version, pack_geometry(current))
        return self.packed[1]

    def photo_source(self):
        """The photo as the object's colour source (`core.render.reprojection`), or None without
        one. Rest Gaussians and photo camera are both in the root's frame; visibility is computed
        here once (about a second), on the worker thread. Call with the lock held."""
        if self.photo is None and self.photo_input:
            from ..core.render.reprojection import PhotoSource

            image, camera = self.photo_input
            self.photo = PhotoSource.from_photo(image, camera, self.gaussians, backend=self.settings.backend)
        return self.photo

    def _restore(self, locations: np.ndarray, quats: np.ndarray) -> None:
        """Skin the Gaussians from control locations [M, 3] and wxyz rotations [M, 4] as stored
        on the empties: the exact pose that was saved (or restored by undo), without a solve."""
        import torch

        from ..core import quaternion
        from ..core.skinning import deform

        deformer = self.deformer
        q = quaternion.normalize(torch.as_tensor(quats, dtype=torch.float32, device=deformer.device))
        points = torch.as_tensor(locations, dtype=torch.float32, device=deformer.device)
        self.deformed = deform(deformer.gaussians, deformer.binding, deformer.controls, points,
                               quaternion.to_matrix(q), q)
        self.deformed_controls = np.asarray(locations, dtype=np.float64).copy()
        self.control_rotations = np.asarray(quats, dtype=np.float64).copy()
        self.converged = self.cold = True


_sessions: dict[str, ObjectSession] = {}


def get(uid: str) -> ObjectSession | None:
    return _sessions.get(uid)


def put(session: ObjectSession) -> ObjectSession:
    _sessions[session.uid] = session
    return session


def drop(uid: str) -> None:
    _sessions.pop(uid, None)


def uids() -> list[str]:
    return list(_sessions)


def clear() -> None:
    _sessions.clear()
