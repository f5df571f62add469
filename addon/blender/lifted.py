"""Creating a lifted object in Blender: root empty, proxy points, packed Gaussians, controls.

Shared by the Lift and Create Controls operators and by `demo_scene`.
"""
from __future__ import annotations

import dataclasses

import bpy
import numpy as np

from . import proxy, scene_io, state


def create_object(scene: bpy.types.Scene, gaussians, mask_image: bpy.types.Image | None,
                  settings: state.DeformSettings, photo_camera=None) -> bpy.types.Object:
    """Place world-space `gaussians` under a new root empty at their bounding-box centre.
    photo_camera: the `core.camera.Camera` they were lifted through, kept in the root's frame
    so that the live render can reproject the photo (`core.render.reprojection`)."""
    from ..core.transforms import Similarity, apply_similarity

    if len(gaussians) == 0:
        raise scene_io.SceneStateError("the server lifted no Gaussians from this mask")
    means = gaussians.means.detach().double().cpu().numpy()
    centre = 0.5 * (means.min(0) + means.max(0))
    extent = float((means.max(0) - means.min(0)).max())
    local = apply_similarity(gaussians, Similarity(np.eye(3), -centre, 1.0))

    collection = bpy.data.collections.new(f"Uplift Object {len(scene_io.roots(scene)) + 1}")
    scene.collection.children.link(collection)
    root = bpy.data.objects.new(collection.name, None)
    root.empty_display_type = "ARROWS"
    root.empty_display_size = max(extent * 0.4, 1e-3)
    root.location = centre
    props = root.uplift
    props.role, props.uid = "ROOT", scene_io.new_uid()
    props.graph_neighbours, props.skin_neighbours = settings.graph_neighbours, settings.skin_neighbours
    collection.objects.link(root)
    scene_io.store_gaussians(root, local)
    props.mask_image = mask_image
    if photo_camera is not None:  # world = local + centre
        from ..core.camera import Camera

        shift = np.eye(4)
        shift[:3, 3] = centre
        props.photo_camera = Camera(photo_camera.width, photo_camera.height, photo_camera.K,
                                    photo_camera.world_to_camera @ shift).to_json()
    proxy.create(root, local, collection)
    scene.uplift.active_root = root
    state.put(state.ObjectSession(props.uid, local, dataclasses.replace(settings, control_count=0)))
    return root


def create_controls(root: bpy.types.Object, settings: state.DeformSettings) -> state.ObjectSession:
    """(Re)build `root`'s control empties from farthest-point samples of its Gaussians."""
    gaussians = scene_io.load_gaussians(root)
    count = min(settings.control_count, len(gaussians))
    settings = dataclasses.replace(settings, control_count=count)
    session = state.ObjectSession(root.uplift.uid, gaussians, settings)
    rest = session.rest_controls()  # builds the deformer: sampling, graph, skinning
    for ob in scene_io.controls_of(root).values():
        bpy.data.objects.remove(ob)
    props = root.uplift
    props.control_count = len(rest)
    props.graph_neighbours, props.skin_neighbours = settings.graph_neighbours, settings.skin_neighbours
    collection = root.users_collection[0] if root.users_collection else bpy.context.scene.collection
    means = gaussians.means.detach().cpu().numpy()
    size = max(float(np.ptp(means, axis=0).max()) / 60.0, 1e-4)
    for i, location in enumerate(rest):
        ob = bpy.data.objects.new(f"{root.name} Control {i:03d}", None)
        ob.empty_display_type = "SPHERE"
        ob.rotation_mode = "QUATERNION"  # holds the control's ARAP rotation (restores the pose exactly)
        ob.empty_display_size = size
        ob.uplift.role, ob.uplift.uid, ob.uplift.index = "CONTROL", props.uid, i
        ob.parent = root
        ob.location = location
        collection.objects.link(ob)
    written = rest.copy()
    for i, ob in scene_io.controls_of(root).items():
        written[i] = ob.location  # as Blender stores it (float32)
    session.written = written
    return state.put(session)


def settings_from_preferences(context=None) -> state.DeformSettings:
    from . import preferences

    prefs = preferences.get(context)
    return state.DeformSettings(prefs.control_count, prefs.graph_neighbours, prefs.skin_neighbours,
                                prefs.arap_iterations, prefs.device, prefs.render_backend)
