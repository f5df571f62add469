"""Uplift's bpy-free core: Gaussians and PLY I/O, sampling, control graph, ARAP,
skinning, camera maths, renderers and compositing.

Nothing in this package imports `bpy`; `tests/test_core_without_bpy.py` proves it.

Conventions (stated once here, tested in tests/test_conventions.py):
- Quaternions are wxyz, unit length, rotating column vectors: v' = R(q) @ v.
- Cameras use OpenCV axes: x right, y down, z forward. `world_to_camera` maps
  world points to camera points as X_cam = R @ X_world + t.
- The world is Blender's: Z up, right-handed, metres.
- Images are row-major HxWxC, origin at the top-left pixel's corner; pixel
  centres are at +0.5. RGBA from the renderer is straight (not premultiplied) alpha.
- Hot-path tensors are float32 on the device picked once by `device.pick_device`.
"""
