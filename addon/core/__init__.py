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
- Blender 5.3's native Gaussian splats (`native_splats.py`; measured on bpy 5.3.0): a point cloud of
  type 'GAUSSIAN_SPLAT' in the lifted root's frame (the root's world matrix places it) with per-point
  'position' (the mean), 'scale' (linear standard deviations, exp of our log scales), 'rotation' (unit
  wxyz, our quaternion), 'radiance:base' (raw SH DC coefficients f_dc, then the opacity sigmoid(logit))
  and 'radiance:sh_K' (rgb of SH coefficient K + 1). EEVEE reads 0.5 + SH_C0 * f_dc (+ higher bands) as
  linear radiance, where our renderers show that value as display (sRGB) colour.
"""
