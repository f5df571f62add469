"""Ground-truth scenes for `make bench-quality`, rendered by Blender (Cycles, CPU).

Run as a script in its own process (bpy loads cleanly there):

    python -m bench.quality_scenes --out DIR [--size 480x360] [--samples 16]

Each scene is one object built in code from Blender primitives with procedural or photo
textures. What varies from scene to scene is drawn from a fixed seed (`scene_specs`), to
cover the ways held-out photos differ from a turntable of round objects:
- the object: compact solids, multi-part objects with thin parts (legs, a tail, a stem, a
  handle), non-convex shapes;
- its rest pose: turned about the vertical *and* tilted towards or away from the camera;
- its texture: the kind's own, or the same at 2.5x the frequency (high-frequency detail);
- the light: a strong sun from a random side over a dim world, so shading changes visibly
  as the object turns;
- the lens: a 35 mm-equivalent focal length of 24, 28, 35 or 50 mm. The photo carries it as
  EXIF FocalLengthIn35mmFilm, where `core.photo` reads it (an integer tag, hence integer mm),
  and the render camera uses exactly that focal length;
- the background photo (`bench.quality.BACKGROUNDS`).

The scenes are split once, by `SPLIT_SEED`, into a *tuning* half and a *held-out* half,
stratified by object family so both halves hold compact, thin-part and non-convex objects.
Tune on the first; report both.

Pose B of each edit is pose A moved by the very similarity `uplift edit` applies for that
edit (`core.transforms.camera_edit`), computed about the *true* object's centre and size
(from its mesh), so ground truth and the pipeline mean the same edit.

Writes DIR/scenes.json (per-scene camera, spec and poses) and DIR/<scene>/<pose>.png
(straight-alpha RGBA; alpha is the exact object mask). Backgrounds are composited later
(`bench.quality`), so renders are independent of them.

Also DIR/<scene>/mesh.ply: the object's TRUE triangle mesh in its own frame at rest (before
pose A's matrix; Z up; vertices and faces only), what `make bench-quality --lifter mesh-true`
gives the mesh lifter. `--meshes-only` builds the objects and writes just these (a cached set of
renders stays as it is; sizes and samples do not matter to a mesh).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Edit types of the benchmark: name -> (rotate_deg (yaw, pitch, roll), translate (object sizes), scale).
EDITS = {
    "yaw15": ((15.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0),
    "yaw30": ((30.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0),
    "yaw60": ((60.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0),
    "pitch20": ((0.0, 20.0, 0.0), (0.0, 0.0, 0.0), 1.0),
    "translate": ((0.0, 0.0, 0.0), (0.45, 0.1, 0.6), 1.0),
    "scale1.3": ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.3),
}
SCENES_VERSION = 3  # bump when objects, lights, lenses or edits change, so cached renders are redone
SPLIT_SEED = 18     # fixes which scenes are tuned on and which are held out
SPEC_SEED = 2026    # fixes each scene's rest pose, light, lens, texture frequency and background
LENSES_35MM = (24, 28, 35, 50)  # integer mm: EXIF FocalLengthIn35mmFilm is an integer tag
HIGH_FREQUENCY = 2.5            # texture frequency factor of the "fine" variant
MESH_FILE = "mesh.ply"          # each scene's true mesh, in its own frame at rest

# Object kinds by family; the split takes half of each family into each half.
FAMILIES = {
    "compact": ("crate", "globe", "house", "bottle"),
    "thin_parts": ("mug", "table", "animal", "lamp"),
    "nonconvex": ("monkey", "donut", "chair", "dumbbell"),
    # Added after the first tuning runs, to match the held-out photos' shallow, side-on objects with
    # legs and thin parts; last, so every earlier scene keeps its draws and its half.
    "side_view": ("car", "horse", "signpost", "bench"),
}
OBJECT_NAMES = tuple(k for kinds in FAMILIES.values() for k in kinds)


@dataclass(frozen=True)
class SceneSpec:
    """One ground-truth scene: an object kind and how it is shown (all drawn from SPEC_SEED)."""
    name: str            # "<kind>" (one scene per kind)
    kind: str
    family: str
    half: str            # "tuning" | "heldout"
    yaw_deg: float       # rest turn about the vertical
    tilt_deg: float      # rest tilt about the camera's right axis (+: top away from the camera)
    lens_35mm: int
    frequency: float     # texture frequency factor (1 or HIGH_FREQUENCY)
    sun_energy: float
    sun_elevation_deg: float
    sun_azimuth_deg: float
    world_strength: float
    offset: tuple        # (x, z) lateral offset in object sizes
    frame_fraction: float  # object size / frame width at its depth
    background: str

    @property
    def horizontal_fov_deg(self) -> float:
        return math.degrees(2 * math.atan(18.0 / self.lens_35mm))


def scene_specs(backgrounds: tuple[str, ...]) -> list[SceneSpec]:
    """Every scene of the bench, its variations drawn from SPEC_SEED and its half from SPLIT_SEED."""
    import random

    split = random.Random(SPLIT_SEED)
    halves = {}
    for kinds in FAMILIES.values():
        order = list(kinds)
        split.shuffle(order)
        halves.update({k: ("tuning" if i < len(order) // 2 else "heldout") for i, k in enumerate(order)})
    rng = random.Random(SPEC_SEED)
    pick_background = random.Random(SPEC_SEED + 1)  # its own stream: the background list can grow
    specs = []
    for family, kinds in FAMILIES.items():
        for kind in kinds:
            specs.append(SceneSpec(
                name=kind, kind=kind, family=family, half=halves[kind],
                yaw_deg=rng.uniform(-45, 45), tilt_deg=rng.choice((-1, 1)) * rng.uniform(8, 25),
                lens_35mm=rng.choice(LENSES_35MM), frequency=rng.choice((1.0, HIGH_FREQUENCY)),
                sun_energy=rng.uniform(3.5, 5.5), sun_elevation_deg=rng.uniform(25, 60),
                sun_azimuth_deg=rng.uniform(-120, 120), world_strength=rng.uniform(0.3, 0.5),
                offset=(rng.uniform(-0.25, 0.25), rng.uniform(-0.15, 0.15)),
                frame_fraction=rng.uniform(0.35, 0.5),
                background=backgrounds[pick_background.randrange(len(backgrounds))]))
    return specs


def scene_key(size: tuple[int, int], samples: int) -> dict:
    return {"version": SCENES_VERSION, "size": list(size), "samples": samples, "edits": EDITS,
            "split_seed": SPLIT_SEED, "spec_seed": SPEC_SEED}


# -- Blender scene building ----------------------------------------------------------------

def _reset_scene(size: tuple[int, int], samples: int, spec: SceneSpec):
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    sc.cycles.device = "CPU"
    sc.cycles.samples = samples
    sc.cycles.use_denoising = True
    sc.cycles.max_bounces = 4
    sc.render.threads_mode = "FIXED"
    sc.render.threads = 2
    sc.render.resolution_x, sc.render.resolution_y = size
    sc.render.resolution_percentage = 100
    sc.render.film_transparent = True
    sc.render.image_settings.file_format = "PNG"
    sc.render.image_settings.color_mode = "RGBA"
    sc.view_settings.view_transform = "Standard"  # plain sRGB, so textures keep their colours
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.75, 0.75, 0.75, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = spec.world_strength
    sc.world = world
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", type="SUN"))
    sun.data.energy = spec.sun_energy
    # A sun points down -Z; tip it by (90 - elevation) towards the camera side, then turn it.
    sun.rotation_euler = (math.radians(90 - spec.sun_elevation_deg), 0.0, math.radians(180 + spec.sun_azimuth_deg))
    sc.collection.objects.link(sun)
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    cam.data.sensor_fit = "HORIZONTAL"
    cam.data.sensor_width = 36.0
    cam.data.lens = float(spec.lens_35mm)
    cam.rotation_euler = (math.radians(90), 0.0, 0.0)  # look along +Y with +Z up: Uplift's photo camera
    sc.collection.objects.link(cam)
    sc.camera = cam
    return sc


def _material(name: str, build):
    """A Principled BSDF whose base colour is `build(nodes, links, coords)`'s output socket;
    coords are the object's own coordinates, so the texture moves with the object."""
    import bpy

    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 0.7
    coords = nodes.new("ShaderNodeTexCoord").outputs["Object"]
    links.new(build(nodes, links, coords), bsdf.inputs["Base Color"])
    return mat


def _ramp(nodes, links, fac, colors):
    ramp = nodes.new("ShaderNodeValToRGB")
    elements = ramp.color_ramp.elements
    elements[0].color, elements[1].color = colors[0] + (1.0,), colors[-1] + (1.0,)
    for i, c in enumerate(colors[1:-1], 1):
        elements.new(i / (len(colors) - 1)).color = c + (1.0,)
    links.new(fac, ramp.inputs["Fac"])
    return ramp.outputs["Color"]


def _tex(kind: str, **inputs):
    def build(nodes, links, coords):
        tex = nodes.new(kind)
        for key, value in inputs.items():
            if key.startswith("attr_"):
                setattr(tex, key[5:], value)
            else:
                tex.inputs[key].default_value = value
        links.new(coords, tex.inputs["Vector"])
        return tex.outputs["Color"]
    return build


def _image_tex(path: str, frequency: float = 1.0):
    def build(nodes, links, coords):
        import bpy

        tex = nodes.new("ShaderNodeTexImage")
        tex.image = bpy.data.images.load(path)
        tex.projection = "BOX"
        tex.projection_blend = 0.1
        mapping = nodes.new("ShaderNodeMapping")
        mapping.inputs["Location"].default_value = (0.5, 0.5, 0.5)
        mapping.inputs["Scale"].default_value = (frequency,) * 3
        links.new(coords, mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
        return tex.outputs["Color"]
    return build


def _ramped(kind: str, colors, **inputs):
    """A procedural texture's Fac through a colour ramp."""
    def build(nodes, links, coords):
        tex = nodes.new(kind)
        for key, value in inputs.items():
            tex.inputs[key].default_value = value
        links.new(coords, tex.inputs["Vector"])
        fac = tex.outputs["Fac"] if "Fac" in tex.outputs else tex.outputs["Distance"]  # Voronoi has no Fac
        return _ramp(nodes, links, fac, colors)
    return build


def _join(objects, name: str):
    import bpy

    bpy.ops.object.select_all(action="DESELECT")
    for ob in objects:
        ob.select_set(True)
    bpy.context.view_layer.objects.active = objects[0]
    bpy.ops.object.join()
    ob = bpy.context.view_layer.objects.active
    ob.name = name
    return ob


def _finish(ob, mats):
    """Apply the build transforms into the mesh and centre its origin on its bounding box."""
    import bpy

    bpy.ops.object.select_all(action="DESELECT")
    ob.select_set(True)
    bpy.context.view_layer.objects.active = ob
    bpy.ops.object.transform_apply(location=True, rotation=True, scale=True)
    bpy.ops.object.origin_set(type="ORIGIN_GEOMETRY", center="BOUNDS")
    if mats:
        ob.data.materials.clear()
        for m in mats:
            ob.data.materials.append(m)
    return ob


def _active():
    import bpy

    return bpy.context.active_object


def _parts(specs):
    """Primitives from (adder, kwargs, scale or None) triples -> the list of new objects."""
    import bpy

    made = []
    for adder, kwargs, scale in specs:
        getattr(bpy.ops.mesh, adder)(**kwargs)
        ob = _active()
        if scale is not None:
            ob.scale = scale
        made.append(ob)
    return made


def build_object(kind: str, textures: dict[str, str], frequency: float = 1.0):
    """One of OBJECT_NAMES at the origin, about 1.2 m across, origin at its bounding box's centre."""
    import bpy

    f = frequency
    add = bpy.ops.mesh
    if kind == "crate":  # a box with a photo on its sides: new faces appear as it turns
        add.primitive_cube_add(size=1.0)
        ob = _active()
        ob.scale = (1.3, 0.9, 0.9)
        return _finish(ob, [_material("crate", _image_tex(textures["astronaut"], f))])
    if kind == "mug":  # cylinder + torus handle: the handle swings round under yaw
        body, handle = _parts([("primitive_cylinder_add", dict(vertices=48, radius=0.45, depth=1.0), None),
                               ("primitive_torus_add", dict(major_radius=0.3, minor_radius=0.07, location=(0.5, 0, 0),
                                                            rotation=(math.radians(90), 0, 0)), None)])
        ob = _join([body, handle], "mug")
        return _finish(ob, [_material("mug", _ramped("ShaderNodeTexWave", [(0.1, 0.35, 0.6), (0.95, 0.9, 0.8),
                                                                          (0.8, 0.3, 0.1)], Scale=3.0 * f, Distortion=4.0))])
    if kind == "globe":  # a checker ball: only its texture shows the rotation
        add.primitive_uv_sphere_add(segments=48, ring_count=24, radius=0.6)
        ob = _active()
        bpy.ops.object.shade_smooth()
        return _finish(ob, [_material("globe", _tex("ShaderNodeTexChecker", Scale=4.0 * f,
                                                    Color1=(0.9, 0.75, 0.1, 1), Color2=(0.1, 0.2, 0.7, 1)))])
    if kind == "monkey":  # Suzanne: a strongly non-convex, asymmetric-in-depth head
        add.primitive_monkey_add(size=1.3)
        ob = _active()
        ob.rotation_euler = (0, 0, math.radians(180))  # face the camera
        bpy.ops.object.shade_smooth()
        return _finish(ob, [_material("monkey", _ramped("ShaderNodeTexNoise", [(0.55, 0.25, 0.1), (0.9, 0.6, 0.3),
                                                                              (0.3, 0.1, 0.05)], Scale=3.0 * f, Detail=4.0))])
    if kind == "house":  # cube walls + pyramid roof, two materials
        walls, roof = _parts([("primitive_cube_add", dict(size=1.0, location=(0, 0, -0.2)), (1.1, 0.8, 0.7)),
                              ("primitive_cone_add", dict(vertices=4, radius1=0.85, depth=0.6, location=(0, 0, 0.45),
                                                          rotation=(0, 0, math.radians(45))), (1.15, 0.85, 1.0))])
        walls.data.materials.append(_material("walls", _tex("ShaderNodeTexBrick", Scale=4.0 * f,
                                                            Color1=(0.7, 0.25, 0.15, 1), Color2=(0.55, 0.2, 0.1, 1))))
        roof.data.materials.append(_material("roof", _tex("ShaderNodeTexChecker", Scale=8.0 * f,
                                                          Color1=(0.15, 0.15, 0.2, 1), Color2=(0.3, 0.3, 0.35, 1))))
        return _finish(_join([walls, roof], "house"), None)
    if kind == "donut":  # a torus seen at an angle: the hole opens and closes under pitch
        add.primitive_torus_add(major_radius=0.5, minor_radius=0.2, major_segments=64, minor_segments=24,
                                rotation=(math.radians(60), 0, 0))
        ob = _active()
        bpy.ops.object.shade_smooth()
        return _finish(ob, [_material("donut", _tex("ShaderNodeTexMagic", Scale=3.0 * f, Distortion=1.5))])
    if kind == "bottle":  # a cylinder with a neck and a photo label
        body, neck = _parts([("primitive_cylinder_add", dict(vertices=48, radius=0.3, depth=0.85, location=(0, 0, -0.15)), None),
                             ("primitive_cone_add", dict(vertices=48, radius1=0.3, radius2=0.1, depth=0.4,
                                                         location=(0, 0, 0.47)), None)])
        ob = _join([body, neck], "bottle")
        bpy.ops.object.shade_smooth()
        return _finish(ob, [_material("bottle", _image_tex(textures["chelsea"], f))])
    if kind == "table":  # a thin top on four thin legs
        legs = [("primitive_cylinder_add", dict(vertices=16, radius=0.035, depth=0.7, location=(x, y, -0.05)), None)
                for x in (-0.55, 0.55) for y in (-0.3, 0.3)]
        top, *rest = _parts([("primitive_cube_add", dict(size=1.0, location=(0, 0, 0.33)), (1.3, 0.75, 0.07))] + legs)
        ob = _join([top, *rest], "table")
        return _finish(ob, [_material("table", _ramped("ShaderNodeTexWave", [(0.45, 0.28, 0.12), (0.75, 0.55, 0.3),
                                                                            (0.35, 0.2, 0.08)], Scale=6.0 * f, Distortion=6.0))])
    if kind == "animal":  # body, head, four legs and a tail
        legs = [("primitive_cylinder_add", dict(vertices=12, radius=0.05, depth=0.45, location=(x, y, -0.35)), None)
                for x in (-0.35, 0.35) for y in (-0.12, 0.12)]
        parts = _parts([("primitive_uv_sphere_add", dict(segments=32, ring_count=16, radius=1.0), (0.55, 0.22, 0.22)),
                        ("primitive_uv_sphere_add", dict(segments=24, ring_count=12, radius=0.17, location=(0.6, 0, 0.18)), None),
                        ("primitive_cylinder_add", dict(vertices=10, radius=0.025, depth=0.45, location=(-0.68, 0, 0.12),
                                                        rotation=(0, math.radians(-55), 0)), None)] + legs)
        ob = _join(parts, "animal")
        bpy.ops.object.shade_smooth()
        return _finish(ob, [_material("animal", _ramped("ShaderNodeTexVoronoi", [(0.85, 0.7, 0.45), (0.35, 0.22, 0.1)],
                                                        Scale=6.0 * f))])
    if kind == "lamp":  # a disc base, a thin stem and a cone shade
        parts = _parts([("primitive_cylinder_add", dict(vertices=32, radius=0.3, depth=0.06, location=(0, 0, -0.55)), None),
                        ("primitive_cylinder_add", dict(vertices=12, radius=0.025, depth=0.8, location=(0, 0, -0.13)), None),
                        ("primitive_cone_add", dict(vertices=32, radius1=0.4, radius2=0.18, depth=0.4,
                                                    location=(0, 0, 0.4)), None)])
        ob = _join(parts, "lamp")
        return _finish(ob, [_material("lamp", _tex("ShaderNodeTexChecker", Scale=5.0 * f,
                                                   Color1=(0.85, 0.2, 0.2, 1), Color2=(0.95, 0.9, 0.8, 1)))])
    if kind == "chair":  # seat, back and four legs: concave from the side
        legs = [("primitive_cube_add", dict(size=1.0, location=(x, y, -0.3)), (0.06, 0.06, 0.5))
                for x in (-0.25, 0.25) for y in (-0.25, 0.25)]
        parts = _parts([("primitive_cube_add", dict(size=1.0, location=(0, 0, 0.0)), (0.6, 0.6, 0.08)),
                        ("primitive_cube_add", dict(size=1.0, location=(0, 0.27, 0.35)), (0.6, 0.06, 0.65))] + legs)
        ob = _join(parts, "chair")
        return _finish(ob, [_material("chair", _tex("ShaderNodeTexBrick", Scale=5.0 * f,
                                                    Color1=(0.2, 0.45, 0.3, 1), Color2=(0.1, 0.3, 0.2, 1)))])
    if kind == "dumbbell":  # two balls on a thin bar
        parts = _parts([("primitive_uv_sphere_add", dict(segments=32, ring_count=16, radius=0.28, location=(x, 0, 0)), None)
                        for x in (-0.45, 0.45)]
                       + [("primitive_cylinder_add", dict(vertices=16, radius=0.06, depth=0.8,
                                                          rotation=(0, math.radians(90), 0)), None)])
        ob = _join(parts, "dumbbell")
        bpy.ops.object.shade_smooth()
        return _finish(ob, [_material("dumbbell", _tex("ShaderNodeTexMagic", Scale=2.0 * f, Distortion=2.5))])
    if kind == "car":  # a long low body, a cabin and four wheels, seen from the side at yaw 0
        wheels = [("primitive_cylinder_add", dict(vertices=24, radius=0.16, depth=0.12, location=(x, y, -0.22),
                                                  rotation=(math.radians(90), 0, 0)), None)
                  for x in (-0.42, 0.42) for y in (-0.24, 0.24)]
        parts = _parts([("primitive_cube_add", dict(size=1.0, location=(0, 0, -0.08)), (1.3, 0.5, 0.25)),
                        ("primitive_cube_add", dict(size=1.0, location=(-0.08, 0, 0.15)), (0.7, 0.46, 0.22))] + wheels)
        ob = _join(parts, "car")
        return _finish(ob, [_material("car", _tex("ShaderNodeTexChecker", Scale=6.0 * f,
                                                  Color1=(0.7, 0.1, 0.1, 1), Color2=(0.9, 0.85, 0.8, 1)))])
    if kind == "horse":  # a narrow body on four long thin legs, a neck, a head and a tail
        legs = [("primitive_cylinder_add", dict(vertices=12, radius=0.04, depth=0.6, location=(x, y, -0.42)), None)
                for x in (-0.38, 0.38) for y in (-0.08, 0.08)]
        parts = _parts([("primitive_uv_sphere_add", dict(segments=32, ring_count=16, radius=1.0), (0.55, 0.16, 0.2)),
                        ("primitive_cylinder_add", dict(vertices=12, radius=0.07, depth=0.45, location=(0.55, 0, 0.25),
                                                        rotation=(0, math.radians(40), 0)), None),
                        ("primitive_uv_sphere_add", dict(segments=16, ring_count=8, radius=1.0, location=(0.72, 0, 0.45)),
                         (0.16, 0.07, 0.08)),
                        ("primitive_cylinder_add", dict(vertices=8, radius=0.02, depth=0.4, location=(-0.62, 0, -0.05),
                                                        rotation=(0, math.radians(-30), 0)), None)] + legs)
        ob = _join(parts, "horse")
        bpy.ops.object.shade_smooth()
        return _finish(ob, [_material("horse", _ramped("ShaderNodeTexNoise", [(0.35, 0.2, 0.1), (0.6, 0.4, 0.22),
                                                                            (0.2, 0.1, 0.05)], Scale=8.0 * f, Detail=8.0))])
    if kind == "signpost":  # a thin flat board on a pole
        parts = _parts([("primitive_cube_add", dict(size=1.0, location=(0, 0, 0.25)), (1.0, 0.05, 0.5)),
                        ("primitive_cylinder_add", dict(vertices=12, radius=0.03, depth=0.7, location=(0, 0.05, -0.35)), None)])
        ob = _join(parts, "signpost")
        return _finish(ob, [_material("signpost", _image_tex(textures["astronaut"], f))])
    if kind == "bench":  # a long slatted seat and back on thin legs
        legs = [("primitive_cube_add", dict(size=1.0, location=(x, y, -0.25)), (0.05, 0.05, 0.4))
                for x in (-0.55, 0.55) for y in (-0.15, 0.15)]
        parts = _parts([("primitive_cube_add", dict(size=1.0, location=(0, 0, -0.03)), (1.3, 0.4, 0.05)),
                        ("primitive_cube_add", dict(size=1.0, location=(0, 0.2, 0.2)), (1.3, 0.04, 0.3))] + legs)
        ob = _join(parts, "bench")
        return _finish(ob, [_material("bench", _ramped("ShaderNodeTexWave", [(0.5, 0.3, 0.15), (0.8, 0.6, 0.35)],
                                                       Scale=8.0 * f, Distortion=2.0))])
    raise ValueError(f"unknown object {kind!r}")


def _world_vertices(ob):
    import numpy as np

    M = np.array(ob.matrix_world)
    v = np.array([vert.co[:] for vert in ob.data.vertices])
    return v @ M[:3, :3].T + M[:3, 3]


def rest_matrix(spec: SceneSpec, size_m: float) -> "np.ndarray":
    """Pose A: turned by yaw about Z, tilted about the camera's right axis (world X), at the depth
    where the object spans `frame_fraction` of the frame, offset sideways and vertically."""
    import numpy as np

    depth = size_m / (spec.frame_fraction * 36.0 / spec.lens_35mm)
    c, s = math.cos(math.radians(spec.yaw_deg)), math.sin(math.radians(spec.yaw_deg))
    yaw = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    c, s = math.cos(math.radians(spec.tilt_deg)), math.sin(math.radians(spec.tilt_deg))
    tilt = np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])
    M = np.eye(4)
    M[:3, :3] = tilt @ yaw
    half_width = depth * 18.0 / spec.lens_35mm
    M[:3, 3] = (spec.offset[0] * half_width, depth, spec.offset[1] * half_width)
    return M


def write_mesh(ob, path: Path) -> None:
    """The object's triangles in its own frame (its mesh data: pose matrices apply on top) -> a PLY
    (trimesh's writer, atomic)."""
    import numpy as np
    import trimesh

    from uplift.core.atomic import write_bytes_atomic

    data = ob.data
    data.calc_loop_triangles()
    vertices = np.array([v.co[:] for v in data.vertices], dtype=np.float64)
    faces = np.array([t.vertices[:] for t in data.loop_triangles], dtype=np.int64)
    write_bytes_atomic(path, trimesh.Trimesh(vertices, faces, process=False).export(file_type="ply"))


def export_meshes(out: Path, specs: list[SceneSpec], log=print) -> None:
    """DIR/<scene>/mesh.ply for every spec, without rendering (the objects are built as for a render)."""
    import bpy
    import skimage

    data = Path(skimage.__file__).parent / "data"
    textures = {"astronaut": str(data / "astronaut.png"), "chelsea": str(data / "chelsea.png")}
    for spec in specs:
        _reset_scene((32, 32), 1, spec)
        ob = build_object(spec.kind, textures, spec.frequency)
        bpy.context.view_layer.update()
        (out / spec.name).mkdir(parents=True, exist_ok=True)
        write_mesh(ob, out / spec.name / MESH_FILE)
        log(f"[scenes] {spec.name}/{MESH_FILE}: {len(ob.data.vertices)} vertices")


def render_scenes(out: Path, size: tuple[int, int], samples: int, specs: list[SceneSpec], log=print) -> dict:
    import dataclasses

    import bpy
    import numpy as np
    import skimage
    from mathutils import Matrix

    from uplift.core.camera import Camera
    from uplift.core.transforms import camera_edit, frame_of_points

    data = Path(skimage.__file__).parent / "data"
    textures = {"astronaut": str(data / "astronaut.png"), "chelsea": str(data / "chelsea.png")}
    meta = {"key": scene_key(size, samples), "scenes": {}}
    cached = out / "scenes.json"
    if cached.exists():  # add to a set rendered with the same settings
        previous = json.loads(cached.read_text())
        if previous.get("key") == json.loads(json.dumps(meta["key"])):
            meta["scenes"] = previous["scenes"]
    for spec in specs:
        camera = Camera.from_fov(size[0], size[1], spec.horizontal_fov_deg)
        sc = _reset_scene(size, samples, spec)
        ob = build_object(spec.kind, textures, spec.frequency)
        bpy.context.view_layer.update()
        local = _world_vertices(ob)
        size_m = float(np.max(local.max(0) - local.min(0)))
        matrix_a = rest_matrix(spec, size_m)
        ob.matrix_world = Matrix(matrix_a.tolist())
        bpy.context.view_layer.update()
        frame = frame_of_points(_world_vertices(ob), camera)
        (out / spec.name).mkdir(parents=True, exist_ok=True)
        poses = {"A": matrix_a}
        for edit, (rot, trans, scale) in EDITS.items():
            poses[edit] = camera_edit(camera, frame, rot, trans, scale).matrix @ matrix_a
        write_mesh(ob, out / spec.name / MESH_FILE)
        for pose, matrix in poses.items():
            ob.matrix_world = Matrix(matrix.tolist())
            sc.render.filepath = str(out / spec.name / f"{pose}.png")
            start = time.perf_counter()
            bpy.ops.render.render(write_still=True)
            log(f"[scenes] {spec.name}/{pose}: {time.perf_counter() - start:.1f} s")
        meta["scenes"][spec.name] = {"spec": dataclasses.asdict(spec), "camera": camera.to_dict(),
                                     "center": frame.center.tolist(), "size": frame.size,
                                     "poses": {k: v.tolist() for k, v in poses.items()}}
    (out / "scenes.json").write_text(json.dumps(meta, indent=1))
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", default="480x360")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--scenes", default="", help="comma-separated scene names (default: all)")
    ap.add_argument("--backgrounds", required=True, help="comma-separated background names the specs draw from")
    ap.add_argument("--meshes-only", action="store_true", help=f"write each scene's {MESH_FILE} only, render nothing")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    import bpy  # noqa: F401  (fail here, clearly, when bpy is missing)

    specs = scene_specs(tuple(args.backgrounds.split(",")))
    wanted = [n for n in args.scenes.split(",") if n]
    if wanted:
        specs = [s for s in specs if s.name in wanted]
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if args.meshes_only:
        export_meshes(args.out, specs, log)
    else:
        render_scenes(args.out, (w, h), args.samples, specs, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
