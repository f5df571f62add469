"""Uplift: edit an object in a photo in 3D, inside Blender.

As a Blender extension this package registers the Blender layer (`blender/`).
As a Python package (`uplift`) it also holds the bpy-free core (`core/`), the
model services and their client (`services/`), the pipeline and the command line.
Importing this package never imports bpy, torch or any model library.
"""


def register() -> None:
    from . import blender

    blender.register()


def unregister() -> None:
    from . import blender

    blender.unregister()
