"""Uplift's Blender layer: registers preferences, properties, the panel, operators and handlers."""
from __future__ import annotations

import os

import bpy

from . import (animation, dependencies, handlers, native_splats, panels, preferences, properties, reporting,
               splat_draw, state)
from .operators import (
    compose_export,
    create_controls,
    export_posed_splats,
    fill_background,
    fit_to_photo,
    install_dependencies,
    lift,
    load_photo,
    next_fit,
    pin_control,
    release_control,
    select_object,
    test_connection,
)

_MODULES = (
    preferences, properties,
    load_photo, select_object, fit_to_photo, next_fit, lift, create_controls, pin_control, release_control,
    fill_background, compose_export, export_posed_splats, test_connection, install_dependencies,
    panels,
)


def _classes():
    return [cls for module in _MODULES for cls in module.CLASSES]


def register() -> None:
    for cls in _classes():
        if issubclass(cls, bpy.types.Operator):
            reporting.guard(cls)
        bpy.utils.register_class(cls)
    properties.attach()
    own = dependencies.site_packages(create=False)
    if own and os.path.isdir(own):
        dependencies.add_search_path(own)  # what Install Dependencies put there
    prefs = preferences.get()
    if prefs.extra_python_path:
        dependencies.use_folder(bpy.path.abspath(prefs.extra_python_path))
    state.pack_native_pose = native_splats.supported()
    handlers.register()
    splat_draw.register()
    animation.register()


def unregister() -> None:
    animation.unregister()
    splat_draw.unregister()
    handlers.unregister()
    state.pack_native_pose = False
    properties.detach()
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
    state.clear()

