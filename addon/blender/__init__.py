"""Uplift's Blender layer: registers preferences, properties, the panel, operators and handlers."""
from __future__ import annotations

import bpy

from . import animation, handlers, panels, preferences, properties, state
from .operators import (
    compose_export,
    create_controls,
    fill_background,
    lift,
    load_photo,
    pin_control,
    release_control,
    select_object,
    test_connection,
)

_MODULES = (
    preferences, properties,
    load_photo, select_object, lift, create_controls, pin_control, release_control,
    fill_background, compose_export, test_connection,
    panels,
)


def _classes():
    return [cls for module in _MODULES for cls in module.CLASSES]


def register() -> None:
    for cls in _classes():
        bpy.utils.register_class(cls)
    properties.attach()
    prefs = preferences.get()
    if prefs.extra_python_path:
        from . import dependencies

        dependencies.add_search_path(bpy.path.abspath(prefs.extra_python_path))
    handlers.register()
    animation.register()


def unregister() -> None:
    animation.unregister()
    handlers.unregister()
    properties.detach()
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
    state.clear()

